"""Request/response models of the voices API, field for field as voices-api.txt."""

from typing import Any

from pydantic import BaseModel, Field

from voice_onboarding.domain.voice import JobStatus


class ErrorResponse(BaseModel):
    detail: str | list[dict[str, Any]] = Field(examples=["Voice not found"])


class VoiceSummary(BaseModel):
    name: str
    has_original: bool
    sample_count: int
    splitting_status: JobStatus
    embedding_status: JobStatus
    creator_name: str | None = None
    creator_email: str | None = None


class VoiceStatus(BaseModel):
    splitting: JobStatus
    embedding: JobStatus


class StatusReasons(BaseModel):
    """Why a job failed (extra field; the seed's `status` carries only the state)."""

    splitting: str | None = None
    embedding: str | None = None


class SampleInfo(BaseModel):
    index: int
    source_timestamp: str | None = None
    duration: float
    # Extra fields: where the sample came from, and the splitter's quality report.
    origin: str | None = None
    quality: dict[str, Any] | None = None


class TestSampleInfo(BaseModel):
    sample_index: int
    sentence_index: int
    filename: str


class SampleScore(BaseModel):
    sample_index: int
    score: float
    flagged: bool | None = None
    reason: str | None = None


class EmbeddingInfo(BaseModel):
    model_config = {"extra": "allow"}

    tts_type: str
    last_update_status: str
    last_update_time: str
    test_samples: list[TestSampleInfo] = Field(default_factory=list)
    sample_scores: list[SampleScore] = Field(default_factory=list)


class VoiceDetails(BaseModel):
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
    # Extras for progress reporting.
    status_reasons: StatusReasons = Field(default_factory=StatusReasons)
    progress: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class SampleUploaded(BaseModel):
    index: int
    duration: float
    source_timestamp: str | None = None


class JobAccepted(BaseModel):
    name: str
    job: str
    status: VoiceStatus
    job_id: str


class TestSampleFile(BaseModel):
    filename: str
    tts_type: str
    sample_index: int | None = None
    sentence_index: int | None = None
    size_bytes: int | None = None


class Message(BaseModel):
    detail: str
