"""What a GPU job kind's class provides; the registry of classes is `services.gpu_jobs.KINDS`."""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from voice_onboarding.contract.gpu import KINDS as GPU_KINDS
from voice_onboarding.domain.gpu_runs import RunLifetimes
from voice_onboarding.domain.jobs import PipelineJob, Stage
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.services.container import Services

logger = Logger(service="voice-onboarding", child=True)


class GpuJobError(Exception):
    """A GPU job cannot be submitted or its result cannot be recorded; the message is user-facing."""


class GpuJobKind(ABC):
    """One GPU job kind: builds the worker's input (contract/gpu.py), records its outcome on the job's
    owner (voice or speaker). Every write is conditional on the stage still running for the owner the
    job was started for, so a late result never revives a job the sweeper failed, nor touches a
    re-created namesake. Stateless: the methods are classmethods."""

    stage: ClassVar[Stage]

    @classmethod
    @abstractmethod
    def build_input(cls, services: Services, job: PipelineJob) -> dict[str, Any]:
        """The worker's `input` as JSON (presigned URLs, no credentials), built from the contract's model."""

    @classmethod
    @abstractmethod
    def apply_result(cls, services: Services, job: PipelineJob, output: dict[str, Any]) -> None:
        """Record a COMPLETED run's output and mark the stage completed."""

    @classmethod
    @abstractmethod
    def apply_failure(cls, services: Services, job: PipelineJob, reason: str) -> None:
        """Mark the stage failed with `reason`."""

    @classmethod
    @abstractmethod
    def record_progress(cls, services: Services, job: PipelineJob, progress: dict[str, Any]) -> None:
        """Progress of a running job (RunPod status, run id, the worker's step)."""

    @classmethod
    def timeout_seconds(cls) -> int:
        return int(cls.stage.timeout_seconds or 0)

    @classmethod
    def lifetimes(cls) -> RunLifetimes:
        """URL expiries and RunPod's policy for one run of this kind, all from its deadline: inputs are
        read when a worker starts, outputs written before it returns (domain/gpu_runs.py)."""
        return RunLifetimes(cls.timeout_seconds())

    @classmethod
    def parse_result(cls, output: dict[str, Any]) -> Any:
        """The worker's output as the contract's result model of this kind."""
        kind = str(cls.stage.gpu_kind)
        try:
            return GPU_KINDS[kind].result.model_validate(output)
        except ValidationError as error:
            raise GpuJobError(f"GPU worker returned an invalid {kind} result: {error.errors()[0]['msg']}") from error


def job_speaker(services: Services, job: PipelineJob) -> SpeakerRecord | None:
    """The speaker a speaker job ran for; None if it is gone or a re-created namesake holds the name."""
    speaker = services.speakers.get(job.partner, job.name)
    return speaker if speaker is not None and speaker.speaker_id == job.owner_id else None


def running_speaker(services: Services, job: PipelineJob) -> SpeakerRecord:
    """`job_speaker` for building a job's input: a speaker that is gone fails the job."""
    speaker = job_speaker(services, job)
    if speaker is None:
        raise GpuJobError("Speaker no longer exists")
    return speaker


def update_voice_stage(services: Services, job: PipelineJob, stage: Stage, fields: dict[str, Any]) -> bool:
    """Conditional update of a running stage of the voice the job ran for; False (logged) if the voice
    is gone or the stage no longer runs (deleted, or failed by the sweeper)."""
    if services.voices.update_stage(job.partner, job.name, job.owner_id, stage, fields):
        return True
    logger.warning("voice stage not updated", extra={"job_id": job.job_id, "stage": stage.value})
    return False
