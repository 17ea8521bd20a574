"""GPU job `clone`: a speaker's reference clip -> voice conditioning for its engine (zero-shot).

Outcomes are written only while the speaker the job ran for (same speaker_id) is still `cloning`, so
a late result never revives a speaker the sweeper failed, nor touches a re-created namesake.
"""

from typing import Any, ClassVar

from pydantic import BaseModel

from voice_onboarding.contract.gpu import CloneInput, CloneOutputs, CloneResult
from voice_onboarding.domain.jobs import PipelineJob, Stage
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs.base import GpuJobKind, job_speaker, running_speaker
from voice_onboarding.storage import keys

MAX_REASON_CHARS = 300


class CloneParams(BaseModel):
    """A clone job's `params`."""

    tts_type: str | None = None  # None: the speaker's tts_type


def _tts_type(job: PipelineJob, speaker: SpeakerRecord) -> str:
    return CloneParams.model_validate(job.params).tts_type or speaker.tts_type


class CloneJob(GpuJobKind):
    stage: ClassVar[Stage] = Stage.CLONE

    @classmethod
    def build_input(cls, services: Services, job: PipelineJob) -> dict[str, Any]:
        speaker = running_speaker(services, job)
        life = cls.lifetimes()
        read_ttl, write_ttl = life.input_url_seconds, life.output_url_seconds
        conditioning_key = keys.speaker_conditioning_key(job.partner, speaker.speaker_id, _tts_type(job, speaker))
        return CloneInput(
            kind="clone",
            tts_type=_tts_type(job, speaker),
            language=speaker.language,
            reference_url=services.blobs.presigned_get(speaker.reference_key, read_ttl),
            outputs=CloneOutputs(voice_conditioning=services.blobs.presigned_put(conditioning_key, write_ttl)),
        ).model_dump(mode="json")

    @classmethod
    def apply_result(cls, services: Services, job: PipelineJob, output: dict[str, Any]) -> None:
        result: CloneResult = cls.parse_result(output)
        conditioning_key = keys.speaker_conditioning_key(job.partner, job.owner_id, result.tts_type)
        recorded = services.speakers.update_stage(
            job.partner,
            job.name,
            job.owner_id,
            cls.stage,
            {
                cls.stage.status_field: JobStatus.COMPLETED.value,
                cls.stage.error_field: None,
                "progress": None,
                "conditioning_key": conditioning_key,
                "conditioning_info": result.model_dump(exclude_none=True),
            },
        )
        if not recorded and job_speaker(services, job) is None:
            # Deleted while the job ran: the worker's upload landed after the delete swept the prefix.
            services.blobs.delete(conditioning_key)

    @classmethod
    def apply_failure(cls, services: Services, job: PipelineJob, reason: str) -> None:
        services.speakers.update_stage(
            job.partner,
            job.name,
            job.owner_id,
            cls.stage,
            {
                cls.stage.status_field: JobStatus.FAILED.value,
                cls.stage.error_field: reason[:MAX_REASON_CHARS],
                "progress": None,
            },
        )

    @classmethod
    def record_progress(cls, services: Services, job: PipelineJob, progress: dict[str, Any]) -> None:
        services.speakers.update_stage(
            job.partner,
            job.name,
            job.owner_id,
            cls.stage,
            {"progress": {"job": cls.stage.value, **progress, "updated_at": utc_now_iso()}},
        )
