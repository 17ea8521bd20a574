"""Worker handler: input validation, embed end to end over presigned-style HTTP, engine failures."""

import io
import json
import zipfile

import numpy as np
from gpu_worker.handler import handler


def test_rejects_unknown_kind() -> None:
    out = handler({"id": "j1", "input": {"kind": "transcode"}})
    assert out["error"].startswith("invalid input")


def test_rejects_missing_outputs_and_bad_url() -> None:
    out = handler({"input": {"kind": "embed", "tts_type": "resemblyzer", "samples": [{"index": 1, "url": "nope"}]}})
    assert "invalid input" in out["error"]
    assert "samples.0.url" in out["error"] and "outputs" in out["error"]


def test_rejects_empty_samples() -> None:
    out = handler({"input": {"kind": "embed", "samples": [], "outputs": {"embedding_zip": "http://h/x"}}})
    assert "samples" in out["error"]


def test_unknown_tts_type_is_a_clear_error(blob_server) -> None:
    out = handler(
        {"input": {"kind": "clone", "tts_type": "nope", "reference_url": blob_server.url("r"),
                   "outputs": {"voice_conditioning": blob_server.url("c")}}}
    )  # fmt: skip
    assert out == {"error": "unknown tts_type 'nope'; known: kyutai, kyutai-pocket, resemblyzer"}


def test_missing_sample_reports_transfer_error_without_signature(blob_server, encoder) -> None:
    out = handler(
        {"input": {"kind": "embed", "tts_type": "resemblyzer",
                   "samples": [{"index": 1, "url": blob_server.url("gone")}],
                   "outputs": {"embedding_zip": blob_server.url("e.zip")}}}
    )  # fmt: skip
    assert out["error"].startswith("transfer failed: GET 127.0.0.1/gone -> 404")
    assert "Signature" not in out["error"]


def test_embed_end_to_end_flags_other_voice(blob_server, voices, encoder) -> None:
    names = ["same_0", "other", "same_1", "same_2"]
    samples = [
        {"index": i, "url": blob_server.put(f"samples/{i}.wav", voices[n]),
         "quality": {"speech_ratio": 0.9, "snr_db": 35.0, "clipping_ratio": 0.0}}
        for i, n in enumerate(names, 1)
    ]  # fmt: skip
    job = {
        "id": "job-1",
        "input": {
            "kind": "embed",
            "tts_type": "resemblyzer",
            "samples": samples,
            "sentences": ["The quick brown fox."],
            "outputs": {"test_samples": {"test_1_1.opus": blob_server.url("t/test_1_1.opus")},
                        "embedding_zip": blob_server.url("out/embeddings.zip")},
        },
    }  # fmt: skip
    out = handler(job)
    assert "error" not in out, out
    scores = out["sample_scores"]
    assert [s["score"] for s in scores] == sorted((s["score"] for s in scores), reverse=True)
    assert scores[-1]["sample_index"] == 2 and scores[-1]["flagged"]
    assert "speaker mismatch" in scores[-1]["reason"]
    assert not any(s["flagged"] for s in scores[:-1])
    assert out["preferred_sample_index"] == scores[0]["sample_index"] != 2
    assert out["embedding_dim"] == 256 and out["test_samples"] == [] and "cannot synthesize" in out["note"]
    assert {"load_model", "download", "embed", "upload"} <= out["timings"].keys()

    assert blob_server.content_types["/out/embeddings.zip"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(blob_server.get("out/embeddings.zip"))) as zf:
        expected = [f"similarity/sample_{i}.npy" for i in range(1, 5)] + ["similarity/centroid.npy", "manifest.json"]
        assert sorted(zf.namelist()) == sorted(expected)
        centroid = np.load(io.BytesIO(zf.read("similarity/centroid.npy")))
        manifest = json.loads(zf.read("manifest.json"))
    assert centroid.shape == (256,) and abs(float(np.linalg.norm(centroid)) - 1) < 1e-3
    assert manifest["samples"][-1]["sample_index"] == 2 and manifest["samples"][-1]["flagged"]


def test_null_hyperparameters_take_defaults() -> None:
    from gpu_worker.handler import _input

    inp = _input.validate_python(
        {"kind": "train_lora", "dataset": [{"url": "http://h/a.wav", "transcript": "hi"}],
         "hyperparameters": None, "outputs": {"adapter": "http://h/a.zip"}}
    )  # fmt: skip
    assert inp.hyperparameters.rank == 8 and inp.hyperparameters.steps == 100
