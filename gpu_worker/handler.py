"""RunPod entry point. `handler(job)` is also called in-process by the local mode.

Contract: docs/pipeline-contract.md ("GPU worker"). Errors are returned as {"error": reason},
which RunPod records as a FAILED job; nothing is faked when a model cannot be loaded.
"""

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

if not __package__:
    # Run as a script (`python gpu_worker/handler.py`, the image's CMD): import the package from its
    # parent, and drop the script's own dir so its modules (audio, lora...) cannot shadow others.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import httpx
from pydantic import TypeAdapter, ValidationError

from gpu_worker import transfer
from gpu_worker.callback import Callback, JobCancelled
from gpu_worker.engines import EngineUnavailable
from gpu_worker.progress import Progress
from voice_onboarding.contract.gpu import KINDS, JobInput

log = logging.getLogger("gpu_worker")
_input = TypeAdapter(JobInput)
# Each kind of the contract (contract/gpu.py KINDS) runs `run(input, progress)` of its task module, named
# after the kind: gpu_worker/tasks/<kind>.py.
TASKS = {kind: f"gpu_worker.tasks.{kind}" for kind in KINDS}


def _validation_message(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()[:5]]
    return "invalid input: " + "; ".join(parts)


def handler(job: dict[str, Any]) -> dict[str, Any]:
    try:
        inp = _input.validate_python(job.get("input") or {})
    except ValidationError as exc:
        return {"error": _validation_message(exc)}
    # The job's callback (progress = heartbeat, late-signed upload URLs) runs for the whole task: its
    # keep-alive thread beats while a model loads or a long step runs.
    with Callback(inp.callback) as callback, transfer.job_callback(callback):
        return _run(job, inp, Progress(job, callback))


def _run(job: dict[str, Any], inp: Any, progress: Progress) -> dict[str, Any]:
    try:
        # Imported on first use: a task pulls in torch and its engine's packages.
        result = importlib.import_module(TASKS[inp.kind]).run(inp, progress)
    except JobCancelled:
        return {"error": "cancelled"}
    except EngineUnavailable as exc:
        return {"error": str(exc), **_refresh(exc)}
    except httpx.HTTPStatusError as exc:
        # Never echo the URL: its query string is a credential (the presigned signature).
        req = exc.request
        return {"error": f"transfer failed: {req.method} {req.url.host}{req.url.path} -> {exc.response.status_code}"}
    except httpx.HTTPError as exc:
        return {"error": f"transfer failed: {type(exc).__name__}"}
    except ValueError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a job must end with a one-line reason, not a traceback
        log.exception("job %s failed", job.get("id", "local"))
        return {"error": f"{type(exc).__name__}: {exc}"[:300], **_refresh(exc)}
    progress("done")
    return result


def _refresh(exc: BaseException) -> dict[str, bool]:
    """`refresh_worker: True` after a CUDA or out-of-memory error: RunPod recycles the worker, whose GPU
    state (fragmented memory, a failed context) would fail the next jobs too."""
    text = f"{type(exc).__name__}: {exc}".lower()
    gpu_failure = isinstance(exc, MemoryError) or "out of memory" in text or "cuda" in text or "cudnn" in text
    return {"refresh_worker": True} if gpu_failure else {}


def fitness() -> None:
    """Worker start-up check (RunPod kills an unfit worker): CUDA initialises, and every engine named in
    FITNESS_ENGINES (default: the contract's default tts_type) loads from the baked weights, offline."""
    import os

    from gpu_worker.engines import get_engine
    from voice_onboarding.contract.engines import DEFAULT_TTS_TYPE

    if os.environ.get("KYUTAI_DEVICE", "cuda").startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available")
        torch.zeros(1, device="cuda").add_(1)  # initialises the context: a broken driver fails here
    for name in filter(None, os.environ.get("FITNESS_ENGINES", DEFAULT_TTS_TYPE).split(",")):
        get_engine(name.strip())  # raises EngineUnavailable naming what is missing; cached for the first job


def main() -> None:
    import runpod

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    runpod.serverless.register_fitness_check(fitness)  # runs on RunPod only, not in local test mode
    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
