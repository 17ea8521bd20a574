"""RunPod conventions: the shipped test_input.json runs as-is, fitness check, refresh_worker after GPU
failures, hub/tests metadata, and image pins that agree with the test environment's."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from gpu_worker.handler import _input, fitness, handler

from gpu_worker import engines

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "gpu_worker"


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_image_pins_agree_with_the_test_environment_apart_from_torch() -> None:
    image = _pins((WORKER / "requirements.txt").read_text().splitlines())
    extra = _pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["worker"])
    makefile = _pins(re.findall(r"(?:moshi|pocket-tts)==[\w.]+", (REPO / "Makefile").read_text()))
    tested = extra | makefile
    common = (image.keys() & tested.keys()) - {"torch"}
    assert {"moshi", "pocket-tts", "runpod", "huggingface-hub", "safetensors", "sphn"} <= common
    assert {name: image[name] for name in common} == {name: tested[name] for name in common}
    assert image["torch"].startswith("2.9")  # moshi 0.2.13 needs torch<2.10 where pip resolves it (the image)
    # runpod 1.10.0 funnels all jobs to one worker; 1.10.1 fixes it.
    assert tuple(int(x) for x in image["runpod"].split(".")) >= (1, 10, 1)
    assert "peft" not in image and "transformers" not in image


def test_hub_metadata_matches_the_cuda_image() -> None:
    cuda = re.search(r"FROM nvidia/cuda:(\d+\.\d+)", (WORKER / "Dockerfile").read_text()).group(1)
    hub = json.loads((WORKER / ".runpod" / "hub.json").read_text())
    tests = json.loads((WORKER / ".runpod" / "tests.json").read_text())
    assert hub["type"] == "serverless" and hub["config"]["runsOn"] == "GPU"
    for config in (hub["config"], tests["config"]):
        assert cuda in config["allowedCudaVersions"]
        assert all(
            tuple(map(int, v.split("."))) >= tuple(map(int, cuda.split("."))) for v in config["allowedCudaVersions"]
        )
    for test in tests["tests"]:
        assert _input.validate_python(test["input"]).kind == "embed"  # each hub test is a valid job


def test_shipped_test_input_runs_as_is(tiny_engines, tmp_path) -> None:
    """The image's CMD under runpod's local mode (no --test_input: it reads ./test_input.json), on the tiny
    DSM: the bundled clip arrives as a data: URL and nothing is uploaded. From a tmp cwd, proving the script
    imports its package from anywhere."""
    import os

    (tmp_path / "test_input.json").write_text((WORKER / "test_input.json").read_text())
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}:{REPO}"}
    proc = subprocess.run(
        [sys.executable, str(WORKER / "handler.py")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs
    assert "Using test_input.json as job input" in logs and "Job local_test completed successfully" in logs
    assert "job local_test: synthesizing test_1_1.opus" in logs  # progress steps reach the log
    assert "'tts_type': 'kyutai'" in logs and "preferred_sample_index" in logs


def test_shipped_test_input_is_valid() -> None:
    job = json.loads((WORKER / "test_input.json").read_text())
    parsed = _input.validate_python(job["input"])
    assert parsed.kind == "embed" and parsed.samples[0].url.startswith("data:audio/ogg;base64,")
    assert parsed.outputs.embedding_zip is None  # nothing to upload to: the smoke test keeps no bucket


@pytest.mark.parametrize(
    ("error", "refresh"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
        (ValueError("sample 1: no speech in the sample to make a voice prompt from"), False),
    ],
)
def test_gpu_failures_recycle_the_worker(error, refresh, blob_server, monkeypatch) -> None:
    def broken():
        raise error

    monkeypatch.setitem(engines.ENGINES, "kyutai", broken)
    monkeypatch.setattr(engines, "_loaded", {})
    out = handler(
        {"input": {"kind": "clone", "tts_type": "kyutai", "reference_url": blob_server.url("r.wav"),
                   "outputs": {"voice_conditioning": blob_server.url("c")}}}
    )  # fmt: skip
    assert str(error)[:40] in out["error"]
    assert out.get("refresh_worker", False) is refresh


def test_fitness_check_loads_the_baked_engines(tiny_engines, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FITNESS_ENGINES", "kyutai,kyutai-pocket")
    fitness()  # KYUTAI_DEVICE=cpu: no CUDA needed; both tiny models load
    assert {"kyutai", "kyutai-pocket"} <= engines._loaded.keys()  # warm for the first job
    monkeypatch.setattr(engines, "_loaded", {})
    monkeypatch.setenv("KYUTAI_TTS_REPO", str(tmp_path / "not-baked"))
    with pytest.raises(engines.EngineUnavailable, match="kyutai engine unavailable"):
        fitness()
    monkeypatch.setenv("KYUTAI_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        fitness()
