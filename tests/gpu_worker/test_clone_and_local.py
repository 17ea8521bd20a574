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


def test_runpod_local_test_input_json(blob_server, voices, tmp_path) -> None:
    """The image's CMD (`python gpu_worker/handler.py`) under runpod's local mode: no --test_input, so
    runpod reads ./test_input.json (here: a tmp cwd, proving the script imports its package from anywhere)."""
    samples = [{"index": i, "url": blob_server.put(f"s{i}.wav", voices[f"same_{i}"])} for i in range(3)]
    job = {"input": {"kind": "embed", "tts_type": "resemblyzer", "samples": samples,
                     "outputs": {"embedding_zip": blob_server.url("e.zip")}}}  # fmt: skip
    (tmp_path / "test_input.json").write_text(json.dumps(job))
    proc = subprocess.run(
        [sys.executable, str(REPO / "gpu_worker" / "handler.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs
    assert "Using test_input.json as job input" in logs and "Job local_test completed successfully" in logs
    assert "job local_test: embedding sample 3/3" in logs  # progress steps reach the log
    assert "preferred_sample_index" in logs
    assert blob_server.get("e.zip")[:2] == b"PK"


def test_shipped_test_input_is_valid() -> None:
    from gpu_worker.handler import _input

    job = json.loads((REPO / "gpu_worker" / "test_input.json").read_text())
    assert _input.validate_python(job["input"]).kind == "embed"
