"""The voice as stored: one DynamoDB item per voice, samples embedded so updates are atomic."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from voice_onboarding.contract.engines import DEFAULT_TTS_TYPE
from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.model import Model


class JobStatus(StrEnum):
    IDLE = "idle"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class SampleOrigin(StrEnum):
    SPLIT = "split"
    UPLOAD = "upload"


class SampleRecord(Model):
    index: int
    source_timestamp: str | None = None
    duration: float
    origin: SampleOrigin = SampleOrigin.UPLOAD
    # Per-sample quality report from the splitter (speech ratio, SNR, clipping, loudness).
    quality: dict[str, Any] | None = None


class VoiceRecord(Model):
    partner: str
    name: str
    # Immutable id used in S3 keys, so a rename never moves audio.
    voice_id: str
    created_at: str
    updated_at: str
    # Incremented by every write; read-modify-write updates are conditional on it.
    version: int = 0
    original_filename: str | None = None
    original_uploaded_name: str | None = None
    original_duration: float | None = None
    splitting_status: JobStatus = JobStatus.IDLE
    embedding_status: JobStatus = JobStatus.IDLE
    splitting_error: str | None = None
    embedding_error: str | None = None
    # Human-readable step of the running job ("decoding", "embedding sample 3/12", ...).
    progress: dict[str, Any] | None = None
    # The Step Functions execution of the voice's latest job (services/executions.py; cancel reads it).
    execution_arn: str | None = None
    samples: list[SampleRecord] = Field(default_factory=list)
    next_sample_index: int = 1
    embedding_type: str = DEFAULT_TTS_TYPE
    embedding_info: dict[str, Any] | None = None
    embedding_zip_key: str | None = None
    preferred_sample_index: int | None = None
    preferred_sample_manual: bool = False
    creator_name: str | None = None
    creator_email: str | None = None

    @property
    def has_original(self) -> bool:
        return self.original_filename is not None

    @property
    def is_locked(self) -> bool:
        """A job runs on the voice (any of its stages is in progress)."""
        return any(self.stage_status(stage) == JobStatus.IN_PROGRESS for stage in Stage.of_owner(OwnerType.VOICE))

    def sample(self, index: int) -> SampleRecord | None:
        return next((s for s in self.samples if s.index == index), None)

    def stage_status(self, stage: Stage) -> JobStatus:
        return JobStatus(getattr(self, stage.status_field))


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_timestamp(seconds: float) -> str:
    """MM:SS below an hour, HH:MM:SS from an hour on (as the seed's `source_timestamp`)."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
