"""Submit, poll and finalize one GPU run of a pipeline job (the state machine's GPU loop).

`gpu_kind` is the worker's job kind (`Stage.gpu_kind`: embed, clone, train_lora), which the state machine
carries as `$.stage`.
"""

import json
from typing import Any

from aws_lambda_powertools import Logger

from voice_onboarding.adapters.runpod import TERMINAL, GpuClient, RunStatus
from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.services import gpu_jobs
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import GpuJobError

logger = Logger(service="voice-onboarding", child=True)

MAX_ERROR_CHARS = 300
_FAILURE_REASONS = {"CANCELLED": "GPU job cancelled", "TIMED_OUT": "GPU job timed out"}
FAILED_STATUSES = frozenset({"FAILED", "CANCELLED", "TIMED_OUT"})


def submit(services: Services, client: GpuClient, job: PipelineJob, gpu_kind: str) -> dict[str, Any]:
    kind = gpu_jobs.get_kind(gpu_kind)
    job_input = kind.build_input(services, job)
    run = client.run(job_input)
    deadline = int(services.clock()) + kind.timeout_seconds()
    logger.info("GPU job submitted", extra={"job_id": job.job_id, "stage": gpu_kind, "run_id": run.id})
    kind.record_progress(services, job, {"step": run.status, "run_id": run.id})
    return {"run_id": run.id, "status": run.status, "deadline": deadline}


def worker_error(run: RunStatus) -> str:
    """The worker's reason for a FAILED run. RunPod passes `{"error": ...}` returns through as a
    string; a raising handler becomes a JSON string with error_message and a traceback (dropped)."""
    error = run.error
    if run.status in _FAILURE_REASONS and not error:
        return _FAILURE_REASONS[run.status]
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            error = parsed
    if isinstance(error, dict):
        error = error.get("error_message") or error.get("error") or error.get("message")
    text = " ".join(str(error or "GPU job failed").split())
    return text[:MAX_ERROR_CHARS]


def poll(services: Services, client: GpuClient, job: PipelineJob, gpu_kind: str, gpu: dict[str, Any]) -> dict[str, Any]:
    """Current status of the run, always as {run_id, status, deadline, output, error}. A run still
    queued or running past its deadline is cancelled and reported TIMED_OUT."""
    run_id, deadline = str(gpu["run_id"]), gpu.get("deadline")
    run = client.status(run_id)
    if run.status not in TERMINAL and deadline is not None and services.clock() > float(deadline):
        try:
            client.cancel(run_id)
        except Exception:
            logger.warning("could not cancel a timed-out GPU run", extra={"run_id": run_id}, exc_info=True)
        run = RunStatus(id=run_id, status="TIMED_OUT", error="GPU job timed out")
    result: dict[str, Any] = {
        "run_id": run_id,
        "status": run.status,
        "deadline": deadline,
        "output": None,
        "error": None,
    }
    if run.status == "COMPLETED":
        if not isinstance(run.output, dict) or run.output.get("error"):
            # The worker returned an error object RunPod still called COMPLETED: it is a failure.
            result.update(status="FAILED", error=worker_error(RunStatus(id=run_id, status="FAILED", error=_err(run))))
        else:
            result["output"] = run.output
    elif run.status in TERMINAL:
        result["error"] = worker_error(run)
    else:
        progress: dict[str, Any] = {"step": run.status, "run_id": run_id}
        if isinstance(run.output, str):
            progress["detail"] = run.output[:200]  # the worker's progress_update text
        gpu_jobs.get_kind(gpu_kind).record_progress(services, job, progress)
    logger.info("GPU job polled", extra={"job_id": job.job_id, "run_id": run_id, "status": result["status"]})
    return result


def _err(run: RunStatus) -> Any:
    if isinstance(run.output, dict):
        return run.output.get("error")
    return f"GPU worker returned no result object ({type(run.output).__name__})"


def finalize(services: Services, job: PipelineJob, gpu_kind: str, gpu: dict[str, Any]) -> dict[str, Any]:
    output = gpu.get("output")
    if gpu.get("status") != "COMPLETED" or not isinstance(output, dict):
        raise GpuJobError("finalize called without a completed GPU result")
    gpu_jobs.get_kind(gpu_kind).apply_result(services, job, output)
    logger.info("GPU job finalized", extra={"job_id": job.job_id, "stage": gpu_kind, "run_id": gpu.get("run_id")})
    return {"ok": True}


def elapsed_seconds(services: Services, gpu_kind: str, gpu: dict[str, Any]) -> float | None:
    """Seconds since submission. The state carries only the deadline, which submit set to
    submission time + the kind's timeout, so no extra field has to travel through the ASL."""
    deadline = gpu.get("deadline")
    if deadline is None:
        return None
    submitted = float(deadline) - gpu_jobs.get_kind(gpu_kind).timeout_seconds()
    return max(0.0, services.clock() - submitted)
