"""Request/response models of speakers-api.txt (plus the train/adapters/catalog extras)."""

from typing import Any

from pydantic import BaseModel, Field


class SpeakerSummary(BaseModel):
    name: str
    language: str
    description: str | None = None
    deployed: bool
    voice_sample_uuid: str | None = None
    created_at: str


class SpeakerCreated(BaseModel):
    name: str
    language: str
    status: str = Field(examples=["created"])
    message: str


class AdapterInfo(BaseModel):
    version: int
    status: str
    tts_type: str
    hyperparameters: dict[str, Any]
    created_at: str
    final_loss: float | None = None
    evaluation: dict[str, Any] | None = None
    error: str | None = None


class SpeakerDetails(SpeakerSummary):
    status: str = Field(description="created | cloning | ready | failed")
    status_reason: str | None = None
    reference_duration_seconds: float
    tts_type: str
    training_status: str
    training_reason: str | None = None
    adapters: list[AdapterInfo] = Field(default_factory=list)


class DatasetInfo(BaseModel):
    name: str
    sample_count: int
    total_duration_seconds: float
    status: str = Field(description="empty | collecting | ready | training | trained")


class DatasetSampleCreated(BaseModel):
    sample_id: str
    duration_seconds: float
    transcript: str


class DeployResult(BaseModel):
    name: str
    deployed: bool
    voice_sample_uuid: str | None = None


class TrainRequest(BaseModel):
    rank: int = Field(default=8, ge=1, le=128)
    alpha: int = Field(default=16, ge=1, le=512)
    learning_rate: float = Field(default=1e-3, gt=0, le=1.0)
    steps: int = Field(default=200, ge=1, le=20_000)


class TrainAccepted(BaseModel):
    name: str
    adapter_version: int
    status: str
    hyperparameters: dict[str, Any]


class CatalogVoice(BaseModel):
    voice_sample_uuid: str
    name: str
    language: str
    description: str | None = None
    deployed_at: str
