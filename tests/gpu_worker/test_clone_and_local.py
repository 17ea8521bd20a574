"""clone job, and RunPod's local test path (`--test_input`) in a subprocess."""

import io
import json
import subprocess
import sys
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


def test_runpod_local_test_input(blob_server, voices) -> None:
    samples = [{"index": i, "url": blob_server.put(f"s{i}.wav", voices[f"same_{i}"])} for i in range(3)]
    job = {"input": {"kind": "embed", "tts_type": "resemblyzer", "samples": samples,
                     "outputs": {"embedding_zip": blob_server.url("e.zip")}}}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "gpu_worker.handler", "--test_input", json.dumps(job)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs
    assert "preferred_sample_index" in logs and "Job local_test completed successfully" in logs
    assert blob_server.get("e.zip")[:2] == b"PK"
