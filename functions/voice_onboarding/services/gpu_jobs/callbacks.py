"""What a running GPU worker calls back, authenticated by its job's secret (the webhook's): progress,
which is also the run's heartbeat, and fresh upload URLs for the job's own outputs.

Heartbeat: each progress report records `last_beat` on the run record, shows the step on the voice or
speaker, and sends `SendTaskHeartbeat` for the wait the state machine holds on the run. A wait that
hears nothing for its `HeartbeatSeconds` ends; the poll that starts the next wait then fails a run that
RunPod still calls IN_PROGRESS but whose worker went silent (runs.liveness_failure).

Late presigning: output URLs in the worker's input were signed by the submit Lambda's role session; a
presigned URL dies with the session that signed it, whatever its X-Amz-Expires says. The worker asks
for a URL when it is ready to upload, signed then by the API Lambda's current session, and only for a
key this job's input named.
"""

from typing import Any

from aws_lambda_powertools import Logger

from voice_onboarding.domain.gpu_runs import UPLOAD_MARGIN_SECONDS, UPLOAD_URL_SECONDS, RunState
from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.services import gpu_jobs
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import runs
from voice_onboarding.storage.gpu_runs_repo import secret_matches

logger = Logger(service="voice-onboarding", child=True)
MAX_STEP_CHARS = 200


class CallbackRejected(Exception):
    """Unknown run, wrong secret, or a key this job does not write: answered 403."""


class RunOver(Exception):
    """The run was cancelled, timed out or already reported: answered 409, so the worker stops."""


def _authorized(services: Services, job_id: str, stage: str, secret: str) -> dict[str, Any]:
    record = runs.run_records(services).get(job_id, stage)
    if record is None or not secret_matches(record, secret):
        raise CallbackRejected("Not a running GPU job of this token")
    if record.get("state") == RunState.FINISHED.value:
        raise RunOver("The GPU job is over")
    deadline = record.get("deadline")
    if deadline and services.clock() > float(deadline) + UPLOAD_MARGIN_SECONDS:
        # A worker past its run's deadline (plus the upload margin its input URLs had) is told to stop;
        # its silence then ends the wait, and the poll cancels the run as TIMED_OUT.
        raise RunOver("The GPU job's deadline has passed")
    return record


def report_progress(services: Services, job_id: str, stage: str, secret: str, step: str) -> None:
    """The worker is alive at `step`: record the beat, show the step, extend the state machine's wait."""
    record = _authorized(services, job_id, stage, secret)
    records = runs.run_records(services)
    records.update(job_id, stage, {"last_beat": int(services.clock())})
    job = record.get("job")
    if isinstance(job, dict):
        progress = {"step": "IN_PROGRESS", "run_id": record.get("run_id"), "detail": step[:MAX_STEP_CHARS]}
        gpu_jobs.get_kind(stage).record_progress(services, PipelineJob.model_validate(job), progress)
    token = record.get("task_token")
    if token:
        sfn = runs.sfn_client(services)
        try:
            sfn.send_task_heartbeat(taskToken=str(token))
        except (sfn.exceptions.TaskTimedOut, sfn.exceptions.TaskDoesNotExist, sfn.exceptions.InvalidToken):
            # Between two waits (the next poll registers a new token): last_beat still tells it the
            # worker is alive.
            logger.info("heartbeat for a wait that ended", extra={"job_id": job_id, "stage": stage})


def upload_url(services: Services, job_id: str, stage: str, secret: str, output: str) -> dict[str, Any]:
    """A PUT URL for one of the job's outputs (named as in contract.gpu.output_name), signed now."""
    record = _authorized(services, job_id, stage, secret)
    outputs = record.get("outputs") or {}
    spec = outputs.get(output)
    if not isinstance(spec, dict) or not spec.get("key"):
        raise CallbackRejected("Not an output of this job")
    url = services.blobs.presigned_put(str(spec["key"]), UPLOAD_URL_SECONDS, spec.get("content_type") or None)
    return {"url": url, "expires_in": UPLOAD_URL_SECONDS}
