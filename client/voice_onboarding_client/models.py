"""Response and request models of the voices and speakers APIs, as the client sees them.

Field for field as the API's OpenAPI document (`docs/openapi.json`; a test keeps them in step). Unknown
fields are kept (`extra="allow"`), so a newer server never breaks an older client."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["idle", "in_progress", "completed", "failed"]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- voices -------------------------------------------------------------------------------------
class VoiceSummary(ApiModel):
    name: str
    has_original: bool
    sample_count: int
    splitting_status: JobStatus
    embedding_status: JobStatus
    creator_name: str | None = None
    creator_email: str | None = None


class VoiceStatus(ApiModel):
    splitting: JobStatus
    embedding: JobStatus


class StatusReasons(ApiModel):
    splitting: str | None = None
    embedding: str | None = None


class SampleInfo(ApiModel):
    index: int
    source_timestamp: str | None = None
    duration: float
    origin: str | None = None
    quality: dict[str, Any] | None = None


class TestSampleInfo(ApiModel):
    __test__ = False  # not a pytest class
    sample_index: int
    sentence_index: int
    filename: str


class SampleScore(ApiModel):
    sample_index: int
    score: float
    flagged: bool | None = None
    reason: str | None = None


class EmbeddingInfo(ApiModel):
    tts_type: str
    last_update_status: str
    last_update_time: str
    test_samples: list[TestSampleInfo] = Field(default_factory=list)
    sample_scores: list[SampleScore] = Field(default_factory=list)


class VoiceDetails(ApiModel):
    name: str
    original_filename: str | None = None
    original_uploaded_name: str | None = None
    original_duration: float | None = None
    status: VoiceStatus
    samples: list[SampleInfo]
    embedding_info: EmbeddingInfo | None = None
    embedding_type: str
    embedding_zip_url: str | None = None
    preferred_sample_index: int | None = None
    creator_name: str | None = None
    creator_email: str | None = None
    status_reasons: StatusReasons = Field(default_factory=StatusReasons)
    progress: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class SampleUploaded(ApiModel):
    index: int
    duration: float
    source_timestamp: str | None = None


class JobAccepted(ApiModel):
    name: str
    job: str
    status: VoiceStatus
    job_id: str


class TestSampleFile(ApiModel):
    __test__ = False
    filename: str
    tts_type: str
    sample_index: int | None = None
    sentence_index: int | None = None
    size_bytes: int | None = None


class Message(ApiModel):
    detail: str


# --- presigned uploads --------------------------------------------------------------------------
class UploadRequest(ApiModel):
    filename: str
    content_type: str | None = None
    size_bytes: int


class UploadTicket(ApiModel):
    upload_id: str
    url: str
    fields: dict[str, Any]
    expires_in: int
    expires_at: int
    max_bytes: int


# --- speakers -----------------------------------------------------------------------------------
class SpeakerSummary(ApiModel):
    name: str
    language: str
    description: str | None = None
    deployed: bool
    voice_sample_uuid: str | None = None
    created_at: str


class SpeakerCreated(ApiModel):
    name: str
    language: str
    status: str
    message: str


class AdapterInfo(ApiModel):
    version: int
    status: str
    tts_type: str
    hyperparameters: dict[str, Any]
    created_at: str
    updated_at: str | None = None
    dataset_sample_count: int
    dataset_duration_seconds: float
    final_loss: float | None = None
    loss_history: list[float] | None = None
    evaluation: dict[str, Any] | None = None
    error: str | None = None


class SpeakerDetails(SpeakerSummary):
    status: str  # created | cloning | ready | failed
    status_reason: str | None = None
    reference_duration_seconds: float
    tts_type: str
    training_status: str  # idle | in_progress | completed | failed
    training_reason: str | None = None
    progress: dict[str, Any] | None = None
    adapters: list[AdapterInfo] = Field(default_factory=list)


class DatasetInfo(ApiModel):
    name: str
    sample_count: int
    total_duration_seconds: float
    status: str


class DatasetSampleCreated(ApiModel):
    sample_id: str
    duration_seconds: float
    transcript: str


class DeployResult(ApiModel):
    name: str
    deployed: bool
    voice_sample_uuid: str | None = None


class TrainRequest(ApiModel):
    """LoRA hyperparameters; None leaves the server's default."""

    rank: int | None = None
    alpha: int | None = None
    learning_rate: float | None = None
    steps: int | None = None
    dropout: float | None = None
    seed: int | None = None


class TrainAccepted(ApiModel):
    name: str
    adapter_version: int
    status: str
    hyperparameters: dict[str, Any]


class CatalogVoice(ApiModel):
    voice_sample_uuid: str
    name: str
    language: str
    description: str | None = None
    deployed_at: str
    tts_type: str | None = None
    adapter_version: int | None = None
