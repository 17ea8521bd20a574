"""Which Step Functions execution runs an owner's job: recorded on the voice or speaker when the job
starts (`execution_arn`), read by cancel instead of listing every running execution."""

from aws_lambda_powertools import Logger

from voice_onboarding.domain.jobs import OwnerType, PipelineJob
from voice_onboarding.services.container import Services

logger = Logger(service="voice-onboarding", child=True)


def record_started(services: Services, job: PipelineJob, execution_arn: str) -> None:
    """Write the execution ARN on the owner while the job's first stage runs (a conditional write:
    never on a re-created namesake, nor after a job that already ended). Never fails the start: without
    it a cancel falls back to listing the running executions."""
    stage = job.kind.stages[0]
    fields = {"execution_arn": execution_arn}
    try:
        if job.owner == OwnerType.SPEAKER:
            written = services.speakers.update_stage(job.partner, job.name, job.owner_id, stage, fields)
        else:
            written = services.voices.update_stage(job.partner, job.name, job.owner_id, stage, fields)
    except Exception:  # the job runs either way
        logger.warning("execution not recorded", extra={"job_id": job.job_id}, exc_info=True)
        return
    if not written:
        logger.info("execution not recorded: the job ended already", extra={"job_id": job.job_id})
