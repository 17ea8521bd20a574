"""Request/response models of the voices API, field for field as voices-api.txt."""

from typing import Any

from pydantic import BaseModel, Field

from voice_onboarding.domain.model import Model
from voice_onboarding.domain.voice import JobStatus


class ErrorResponse(Model):
    detail: str | list[dict[str, Any]] = Field(examples=["Voice not found"])


class VoiceSummary(Model):
    name: str
    has_original: bool
    sample_count: int
    splitting_status: JobStatus
    embedding_status: JobStatus
    creator_name: str | None = None
    creator_email: str | None = None


class VoiceStatus(Model):
    splitting: JobStatus
    embedding: JobStatus


class StatusReasons(Model):
    """Why a job failed (extra field; the seed's `status` carries only the state)."""

    splitting: str | None = None
    embedding: str | None = None


class SampleInfo(Model):
    index: int
    source_timestamp: str | None = None
    duration: float
    # Extra fields: where the sample came from, and the splitter's quality report.
    origin: str | None = None
    quality: dict[str, Any] | None = None


class TestSampleInfo(Model):
    sample_index: int
    sentence_index: int
    filename: str


class SampleScore(Model):
    sample_index: int
    score: float
    flagged: bool | None = None
    reason: str | None = None


class EmbeddingInfo(Model):
    model_config = {"extra": "allow"}

    tts_type: str
    last_update_status: str
    last_update_time: str
    test_samples: list[TestSampleInfo] = Field(default_factory=list)
    sample_scores: list[SampleScore] = Field(default_factory=list)


class VoiceDetails(Model):
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


class SampleUploaded(Model):
    index: int
    duration: float
    source_timestamp: str | None = None


class JobAccepted(Model):
    name: str
    job: str
    status: VoiceStatus
    job_id: str


class TestSampleFile(Model):
    filename: str
    tts_type: str
    sample_index: int | None = None
    sentence_index: int | None = None
    size_bytes: int | None = None


class Message(Model):
    detail: str


# The presigned upload flow (voices: /api/uploads/{partner}; speakers: /api/voice/uploads). Built at import
# (not a deferred Model): a deferred model as a request body makes FastAPI warn when it builds its field.
class UploadRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$", max_length=127, examples=["audio/wav"]
    )
    size_bytes: int = Field(gt=0, description="Exact size of the file to upload (at most `max_bytes`)")


class UploadTicket(BaseModel):
    upload_id: str
    url: str = Field(description="POST the file here as multipart/form-data with `fields` first, then `file`")
    fields: dict[str, Any]
    expires_in: int = Field(description="Seconds the presigned POST stays valid")
    expires_at: int = Field(description="Unix time the presigned POST expires")
    max_bytes: int = Field(description="S3 refuses bodies above this size")
