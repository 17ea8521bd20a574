"""Status transitions made by the state machine itself: start embedding after a split, mark a job failed."""

import json
from typing import Any

from aws_lambda_powertools import Logger

from voice_onboarding.domain.errors import DomainError
from voice_onboarding.domain.jobs import OwnerType, PipelineJob, Stage
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.services import gpu_jobs
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs.base import update_voice_stage

logger = Logger(service="voice-onboarding", child=True)

MAX_REASON_CHARS = 300
# Errors whose message is written for users; anything else is prefixed with its type so an operator
# can tell an unexpected crash (KeyError: 'x') from a domain failure.
_USER_FACING_ERRORS = {
    "SplitError",
    "GpuJobFailed",
    "GpuJobError",
    "GpuServiceError",
    "GpuRunNotStarted",
    "GpuSubmitUnconfirmed",
    "InvalidAudio",
    "Cancelled",
}


def failure_reason(error: dict[str, Any] | None) -> str:
    """A one-line reason from a Catch's {"Error", "Cause"}: the Lambda error JSON's message, or the
    plain cause; never a stack trace; at most MAX_REASON_CHARS."""
    error = error or {}
    name = str(error.get("Error") or "")
    cause = error.get("Cause")
    message = ""
    if isinstance(cause, str) and cause.strip():
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            message = str(parsed.get("errorMessage") or parsed.get("error_message") or "")
            name = str(parsed.get("errorType") or name)
        else:
            message = cause
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback (most recent call last)"):
        message = lines[-1]  # a raw traceback: its last line is the exception itself
    if name == "States.Timeout":
        message = message or "a pipeline step timed out"
        message = f"Timed out: {message}"
    elif name and name not in _USER_FACING_ERRORS and not name.startswith("States.") and message:
        message = f"{name}: {message}"
    message = message or (f"Pipeline failed ({name})" if name else "Pipeline failed")
    # First line only: tracebacks and multi-line dumps stay in the logs.
    first_line = " ".join(message.strip().splitlines()[0].split()) if message.strip() else "Pipeline failed"
    return first_line if len(first_line) <= MAX_REASON_CHARS else first_line[: MAX_REASON_CHARS - 1] + "…"


def start_embedding(services: Services, job: PipelineJob) -> dict[str, Any]:
    """After a split: embedding -> in_progress with a conditional write. Not started (and no error) if
    the voice is gone or busy; failed with a reason if the split left no samples."""
    voice = services.voices.get(job.partner, job.name)
    if voice is None or voice.voice_id != job.owner_id:
        return {"started": False, "reason": "voice no longer exists"}
    stage = Stage.EMBEDDING
    if not voice.samples:
        try:
            services.voices.update_unlocked(
                job.partner,
                job.name,
                {stage.status_field: JobStatus.FAILED.value, stage.error_field: "Splitting produced no samples"},
            )
        except DomainError:
            pass  # busy or gone: another job owns the voice now
        return {"started": False, "reason": "no samples"}
    progress = {"job": stage.value, "step": "queued", "job_id": job.job_id, "updated_at": utc_now_iso()}
    try:
        services.voices.start_job(job.partner, job.name, stage, extra={"progress": progress})
    except DomainError as error:
        # Someone started another job on the voice between the split and now: theirs wins.
        logger.info("embedding not started", extra={"job_id": job.job_id, "reason": error.detail})
        return {"started": False, "reason": error.detail}
    return {"started": True}


def running_stage(services: Services, job: PipelineJob) -> Stage | None:
    """Which stage a failed job was running. A speaker job has one stage (its writes are conditional
    on it); for a voice job, the one of its stages still in_progress on the voice (None if the voice
    is gone or none runs any more, e.g. failed already)."""
    if job.owner == OwnerType.SPEAKER:
        return job.kind.stages[0]
    voice = services.voices.get(job.partner, job.name)
    if voice is None or voice.voice_id != job.owner_id:
        return None
    running = [s for s in job.kind.stages if voice.stage_status(s) == JobStatus.IN_PROGRESS]
    return running[0] if running else None


def fail_job(services: Services, job: PipelineJob, error: dict[str, Any] | None) -> str:
    """Mark the job's running stage failed with a clear reason; returns the reason. Conditional on the
    stage still being in_progress, so it never clobbers a finished or newer job, and never raises
    for a voice/speaker that no longer exists."""
    reason = failure_reason(error)
    stage = running_stage(services, job)
    if stage is None:
        return reason
    kind = gpu_jobs.of_stage(stage)
    if kind is not None:
        try:
            kind.apply_failure(services, job, reason)
        except DomainError as gone:
            # Deleted between the kind's read and its write (VoiceNotFound / SpeakerNotFound).
            logger.warning("failed job's owner is gone", extra={"job_id": job.job_id, "reason": gone.detail})
    else:
        fields = {stage.status_field: JobStatus.FAILED.value, stage.error_field: reason, "progress": None}
        update_voice_stage(services, job, stage, fields)
    return reason
