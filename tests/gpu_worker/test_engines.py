"""Both Kyutai families on tiny random-weight models: the worker's real engine code, load -> artifact ->
reload -> synthesize -> score, the embed job end to end, and its embedding zip reloaded as a runtime would."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gpu_worker.engines import get_engine
from gpu_worker.handler import handler

from gpu_worker import voices
from voice_onboarding.contract.engines import KYUTAI, KYUTAI_POCKET, capabilities


@pytest.mark.parametrize("tts_type", [KYUTAI, KYUTAI_POCKET])
def test_voice_artifact_reloads_from_its_file_and_speaks(tts_type, tiny_engines, voices_audio, tmp_path) -> None:
    engine = voices.engine_for(tts_type)
    files = voices.make_voice_files(engine, voices_audio["same_0"], tmp_path / "v")
    assert files.artifact_path.stat().st_size > 0 and files.prompt.seconds <= engine.prompt_seconds
    prompt, sr = sf.read(files.prompt_path)
    assert sr == engine.sample_rate == capabilities(tts_type).sample_rate
    voice = voices.reload_voice(engine, files.artifact_path)
    wav, out_sr = engine.synthesize("Hello there.", voice)
    assert out_sr == engine.sample_rate and wav.ndim == 1 and len(wav) > out_sr // 10
    assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0
    info = engine.model_info()
    assert info["family"] in ("kyutai-dsm", "kyutai-pocket") and info["model_id"]


def test_dsm_prefix_artifact_is_the_mimi_codes_of_the_prompt(tiny_engines, voices_audio, tmp_path) -> None:
    from safetensors.torch import load_file

    engine = get_engine(KYUTAI)
    files = voices.make_voice_files(engine, voices_audio["same_1"], tmp_path / "v")
    prefix = load_file(str(files.artifact_path))["prefix"]
    # Row 0 the null text stream, then one row per codebook; 12.5 frames per second of prompt.
    assert prefix.shape[0] == 1 + 16 and (prefix[0] == -1).all()
    assert abs(prefix.shape[1] - files.prompt.seconds * 12.5) <= 3
    assert (prefix[1:] >= 0).all() and (prefix[1:] < 64).all()


def test_dsm_refuses_a_voice_with_the_wrong_number_of_codebooks(tiny_engines, tmp_path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"prefix": torch.zeros(9, 5, dtype=torch.long)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="9 rows, the model takes 17"):
        get_engine(KYUTAI).load_voice(tmp_path / "bad.safetensors")


def test_pocket_refuses_a_language_it_does_not_speak(tiny_engines) -> None:
    with pytest.raises(ValueError, match="does not speak 'hi-IN'"):
        voices.engine_for(KYUTAI_POCKET, "hi-IN")


def test_missing_weights_fail_the_job_with_a_reason(tiny_engines, blob_server, voices_audio, monkeypatch, tmp_path):
    monkeypatch.setenv("KYUTAI_TTS_REPO", str(tmp_path / "not-baked"))  # HF_HUB_OFFLINE=1: no download
    url = blob_server.put("s/1.wav", voices_audio["same_0"])
    out = handler(
        {"input": {"kind": "embed", "tts_type": "kyutai", "samples": [{"index": 1, "url": url}],
                   "sentences": ["Hello."], "outputs": {"embedding_zip": blob_server.url("e.zip")}}}
    )  # fmt: skip
    assert out["error"].startswith("kyutai engine unavailable: cannot load ")
    assert "/e.zip" not in blob_server.blobs  # nothing uploaded, nothing faked


@pytest.mark.parametrize("tts_type", [KYUTAI, KYUTAI_POCKET])
def test_embed_job_zip_holds_artifacts_a_runtime_reloads(tts_type, tiny_engines, blob_server, voices_audio, tmp_path):
    """The embed job on the handler, then its zip opened: every artifact reloads and speaks."""
    names = ["same_0", "same_1"]
    samples = [{"index": i, "url": blob_server.put(f"s/{i}.wav", voices_audio[n])} for i, n in enumerate(names, 1)]
    wanted = {"test_1_1.opus": blob_server.url("t/test_1_1.opus"), "test_2_1.opus": blob_server.url("t/test_2_1.opus")}
    out = handler(
        {"id": "j", "input": {"kind": "embed", "tts_type": tts_type, "language": "en-US", "samples": samples,
                              "sentences": ["Hello there."],
                              "outputs": {"test_samples": wanted, "embedding_zip": blob_server.url("e.zip")}}}
    )  # fmt: skip
    assert "error" not in out, out
    assert sorted(t["filename"] for t in out["test_samples"]) == sorted(wanted)
    for name in wanted:
        assert blob_server.get(f"t/{name}")[:4] == b"OggS"
    assert {"load_model", "embed", "artifact", "synthesize"} <= out["timings"].keys()
    assert all(s["synthesis_similarity"] is not None for s in out["sample_scores"])

    engine = voices.engine_for(tts_type, "en")
    with zipfile.ZipFile(io.BytesIO(blob_server.get("e.zip"))) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["engine"] == tts_type and manifest["sample_rate"] == 24_000
        assert manifest["artifact_format"] == capabilities(tts_type).artifact_format
        assert manifest["model"]["model_id"] and "revision" in manifest["model"]
        assert {"similarity/centroid.npy", "similarity/sample_1.npy", "similarity/sample_2.npy"} <= set(zf.namelist())
        for entry in manifest["samples"]:
            assert entry["prompt_info"]["seconds"] <= engine.prompt_seconds
            artifact = Path(zf.extract(entry["artifact"], path=tmp_path))
            prompt, sr = sf.read(io.BytesIO(zf.read(entry["prompt"])))
            assert sr == 24_000 and len(prompt) / sr == pytest.approx(entry["prompt_info"]["seconds"], abs=0.01)
            wav, out_sr = engine.synthesize("Hi.", engine.load_voice(artifact))
            assert out_sr == 24_000 and len(wav) > 0 and np.isfinite(wav).all()


def test_local_stack_uses_pocket_tts_only_where_its_cloning_weights_are(tmp_path, monkeypatch) -> None:
    """Locally, Pocket TTS speaks real test samples when its gated weights are cached (or a token can fetch
    them); otherwise the stack keeps resemblyzer, whose weights ship in its wheel."""
    import huggingface_hub.constants
    import pocket_tts
    import yaml
    from gpu_worker.engines.pocket import cloning_weights_present
    from infra.local_stack import local_tts_type

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert not cloning_weights_present() and local_tts_type() == "resemblyzer"

    config = yaml.safe_load((Path(pocket_tts.__file__).parent / "config" / "english.yaml").read_text())
    for source in (config["weights_path"], config["flow_lm"]["lookup_table"]["tokenizer_path"]):
        path, _, revision = source.removeprefix("hf://").partition("@")
        org, name, filename = path.split("/", 2)
        cached = tmp_path / f"models--{org}--{name}" / "snapshots" / revision / filename
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(b"weights")
        if "without-voice-cloning" not in name:
            assert not cloning_weights_present()  # the tokenizer is still missing
    assert cloning_weights_present() and local_tts_type() == KYUTAI_POCKET

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_TOKEN", "hf_test")  # pocket-tts downloads on first use
    assert local_tts_type() == KYUTAI_POCKET
