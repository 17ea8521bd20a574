"""Speakers (zero-shot clones + LoRA datasets), their dataset samples, adapter versions and catalog entries."""

import time
from typing import Any

from pydantic import Field

from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.model import Model
from voice_onboarding.domain.voice import JobStatus


class AdapterVersion(Model):
    """One LoRA training run; its own table item (loss histories would bloat the speaker item)."""

    version: int
    status: JobStatus
    tts_type: str
    hyperparameters: dict[str, Any]
    created_at: str
    updated_at: str | None = None
    # The dataset snapshot the run trains on: later uploads do not change what was trained.
    dataset_sample_ids: list[str] = Field(default_factory=list)
    dataset_duration_seconds: float = 0.0
    adapter_key: str | None = None
    metadata_key: str | None = None
    final_loss: float | None = None
    loss_history: list[float] | None = None
    evaluation: dict[str, Any] | None = None
    error: str | None = None


class SpeakerRecord(Model):
    owner: str
    name: str
    speaker_id: str  # immutable, addresses S3
    language: str
    description: str | None = None
    created_at: str
    updated_at: str
    version: int = 0
    reference_key: str
    reference_content_type: str
    reference_duration: float
    tts_type: str
    clone_status: JobStatus = JobStatus.IDLE
    clone_error: str | None = None
    conditioning_key: str | None = None
    conditioning_info: dict[str, Any] | None = None  # what the clone run reported (embedding_dim, ...)
    training_status: JobStatus = JobStatus.IDLE
    training_error: str | None = None
    # Highest adapter version ever assigned (versions are never reused, even after a failed run).
    adapter_count: int = 0
    # The running GPU job's last RunPod status / worker step; its updated_at keeps the sweeper away.
    progress: dict[str, Any] | None = None
    # The Step Functions execution of the speaker's latest job (services/executions.py; cancel reads it).
    execution_arn: str | None = None
    deployed: bool = False
    # Assigned at first deploy and kept forever, so campaigns referencing it keep working.
    voice_sample_uuid: str | None = None

    @property
    def is_busy(self) -> bool:
        """A job runs on the speaker (any of its stages is in progress)."""
        return any(self.stage_status(stage) == JobStatus.IN_PROGRESS for stage in Stage.of_owner(OwnerType.SPEAKER))

    def stage_status(self, stage: Stage) -> JobStatus:
        return JobStatus(getattr(self, stage.status_field))


class DatasetSample(Model):
    sample_id: str
    duration_seconds: float
    transcript: str
    object_key: str
    created_at: str
    # Upload order (created_at has 1 s resolution): listings and training snapshots keep it.
    uploaded_ns: int = Field(default_factory=time.time_ns)


class CatalogEntry(Model):
    voice_sample_uuid: str
    name: str
    language: str
    description: str | None = None
    owner: str
    speaker_id: str | None = None
    deployed_at: str
    # What synthesis for this voice loads: the engine, and the speaker's latest completed LoRA adapter
    # (None: the zero-shot clone alone) as of the deploy; redeploy to publish a newer version.
    tts_type: str | None = None
    adapter_version: int | None = None
