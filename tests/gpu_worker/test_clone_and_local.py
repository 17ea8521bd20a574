"""clone job: the speaker-encoder conditioning, and a Kyutai voice artifact that reloads."""

import io
from pathlib import Path

import numpy as np
from gpu_worker.handler import handler

REPO = Path(__file__).resolve().parents[2]


def test_clone_uploads_conditioning(blob_server, voices, encoder) -> None:
    out = handler(
        {"input": {"kind": "clone", "tts_type": "resemblyzer",
                   "reference_url": blob_server.put("r.wav", voices["same_0"]),
                   "outputs": {"voice_conditioning": blob_server.url("c.npy")}}}
    )  # fmt: skip
    assert out["tts_type"] == "resemblyzer" and out["embedding_dim"] == 256
    assert 2.0 < out["reference_duration"] < 10.0
    emb = np.load(io.BytesIO(blob_server.get("c.npy")))
    assert emb.shape == (256,) and abs(float(np.linalg.norm(emb)) - 1) < 1e-3


def test_clone_with_kyutai_uploads_a_voice_artifact_that_reloads(blob_server, voices, tiny_engines, tmp_path) -> None:
    from gpu_worker.engines import get_engine

    out = handler(
        {"input": {"kind": "clone", "tts_type": "kyutai-pocket", "language": "fr-FR",
                   "reference_url": blob_server.put("r.wav", voices["same_1"]),
                   "outputs": {"voice_conditioning": blob_server.url("c.safetensors")}}}
    )  # fmt: skip
    assert "error" not in out, out
    artifact = tmp_path / "voice.safetensors"
    artifact.write_bytes(blob_server.get("c.safetensors"))
    engine = get_engine("kyutai-pocket").with_language("fr")
    wav, sr = engine.synthesize("Bonjour.", engine.load_voice(artifact))
    assert sr == 24_000 and len(wav) > 0
