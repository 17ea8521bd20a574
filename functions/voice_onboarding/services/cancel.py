"""Cancel the job running for a voice or a speaker: stop its Step Functions execution, cancel its RunPod
run, and fail its stage with the reason "cancelled", which releases the lock.

Nothing is rolled back because nothing was committed: a split commits its samples only while its job holds
the lock, and a GPU result is applied only while its stage is in progress, so a step still running when
the execution stops writes nothing. Earlier samples, artifacts and adapters stay as they were. The run
record is closed first, so the still-running worker's next callback is answered 409: it uploads nothing
and stops at its next step, and RunPod's late webhook changes nothing.
"""

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from voice_onboarding.adapters.runpod import GpuClient
from voice_onboarding.domain.errors import NothingToCancel, SpeakerNotFound, VoiceNotFound
from voice_onboarding.domain.gpu_runs import RunState
from voice_onboarding.domain.jobs import JobKind, OwnerType, PipelineJob, Stage
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services import job_status as status
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import runs

logger = Logger(service="voice-onboarding", child=True)

CANCELLED = "cancelled"
VOICE_KINDS = frozenset(kind for kind in JobKind if kind.owner == OwnerType.VOICE)
SPEAKER_KINDS = frozenset(kind for kind in JobKind if kind.owner == OwnerType.SPEAKER)
# The GPU stage a job kind may be running (GPU run records are keyed by it); none for a split-only job.
_GPU_STAGE = {kind: stage.gpu_kind for kind in JobKind for stage in kind.stages if stage.gpu_kind}


def running_job(services: Services, partner: str, name: str, kinds: frozenset[JobKind]) -> tuple[str, PipelineJob]:
    """The RUNNING execution started for this voice or speaker (its input is the PipelineJob): the one
    its job recorded on it when it started (`execution_arn`); for a job started before that was
    recorded, found by listing the machine's running executions."""
    owner = _owner(services, partner, name, kinds)
    if owner is None:
        raise SpeakerNotFound() if kinds <= SPEAKER_KINDS else VoiceNotFound()
    if not services.settings.state_machine_arn:
        raise NothingToCancel()
    if not any(owner.stage_status(stage) == JobStatus.IN_PROGRESS for stage in _stages(kinds)):
        raise NothingToCancel()  # no stage runs: no execution to look for
    sfn = runs.sfn_client(services)
    if owner.execution_arn:
        found = _described(sfn, owner.execution_arn, partner, name, kinds)
        if found is not None:
            return found
    return _listed(services, sfn, partner, name, kinds)


def _stages(kinds: frozenset[JobKind]) -> set[Stage]:
    return {stage for kind in kinds for stage in kind.stages}


def _owner(services: Services, partner: str, name: str, kinds: frozenset[JobKind]) -> Any:
    if kinds <= SPEAKER_KINDS:
        return services.speakers.get(partner, name)
    return services.voices.get(partner, name)


def _described(
    sfn: Any, execution_arn: str, partner: str, name: str, kinds: frozenset[JobKind]
) -> tuple[str, PipelineJob] | None:
    """The execution's job if it is RUNNING and was started for this owner and one of `kinds`."""
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except ClientError:  # gone (ExecutionDoesNotExist), or not an execution ARN: list instead
        return None
    if described.get("status") != "RUNNING":
        return None
    job = PipelineJob.model_validate(json.loads(described.get("input") or "{}"))
    if job.partner == partner and job.name == name and job.kind in kinds:
        return execution_arn, job
    return None


def _listed(
    services: Services, sfn: Any, partner: str, name: str, kinds: frozenset[JobKind]
) -> tuple[str, PipelineJob]:
    """Fallback for owners with no recorded execution: list and describe the running executions."""
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=services.settings.state_machine_arn, statusFilter="RUNNING"
    )
    try:
        for page in pages:
            for execution in page["executions"]:
                found = _described(sfn, execution["executionArn"], partner, name, kinds)
                if found is not None:
                    return found
    except sfn.exceptions.StateMachineDoesNotExist:
        pass  # no machine, no execution (a stack without a pipeline)
    raise NothingToCancel()


def cancel(
    services: Services, client: GpuClient | None, partner: str, name: str, kinds: frozenset[JobKind]
) -> PipelineJob:
    execution_arn, job = running_job(services, partner, name, kinds)
    sfn = runs.sfn_client(services)
    # Stopped first: a stopped execution takes no further step (no submit, no finalize, no failure handler).
    sfn.stop_execution(executionArn=execution_arn, error="Cancelled", cause="Cancelled by the user")
    token = _cancel_gpu_run(services, client, job)
    status.fail_job(services, job, {"Error": "Cancelled", "Cause": CANCELLED})
    if token:
        # On AWS the stop already ended the wait and this token is void. moto 5.2.5's engine lets a stopped
        # execution finish the state it is in, so end the wait: the failure handler then finds the stage
        # failed already and changes nothing.
        try:
            sfn.send_task_failure(taskToken=token, error="Cancelled", cause=CANCELLED)
        except Exception:  # noqa: BLE001 - void token (AWS): nothing waits any more
            pass
    logger.info("job cancelled", extra={"job_id": job.job_id, "kind": job.kind.value})
    return job


def _cancel_gpu_run(services: Services, client: GpuClient | None, job: PipelineJob) -> str | None:
    """Cancel the job's RunPod run, if it has one still running; returns the wait's task token."""
    stage = _GPU_STAGE.get(job.kind)
    if stage is None:
        return None
    records = runs.run_records(services)
    record: dict[str, Any] = records.get(job.job_id, stage) or {}
    run_id = record.get("run_id")
    if not run_id or record.get("state") == RunState.FINISHED.value:
        return None
    records.update(job.job_id, stage, {"state": RunState.FINISHED.value})  # a late webhook is then a no-op
    if client is not None:
        try:
            client.cancel(str(run_id))
        except Exception:
            logger.warning(
                "could not cancel the GPU run", extra={"job_id": job.job_id, "run_id": run_id}, exc_info=True
            )
    token = record.get("task_token")
    return str(token) if token else None
