"""Domain errors carry the HTTP status and the seed's `detail` text, so every layer speaks one language."""

from typing import ClassVar


class DomainError(Exception):
    status_code: ClassVar[int] = 400
    default_detail: ClassVar[str] = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.headers = headers
        super().__init__(self.detail)


class InvalidApiKey(DomainError):
    status_code = 401
    default_detail = "Invalid API key"


class AccessDenied(DomainError):
    status_code = 403
    default_detail = "Access denied"


class VoiceNotFound(DomainError):
    status_code = 404
    default_detail = "Voice not found"


class SampleNotFound(DomainError):
    status_code = 404
    default_detail = "Sample not found"


class FileNotFound(DomainError):
    status_code = 404
    default_detail = "File not found"


class VoiceLocked(DomainError):
    status_code = 409
    default_detail = "Voice is currently being processed"


class VoiceAlreadyExists(DomainError):
    status_code = 409
    default_detail = "A voice with this name already exists"


class PayloadTooLarge(DomainError):
    status_code = 413
    default_detail = "File too large"


class InvalidAudio(DomainError):
    status_code = 422
    default_detail = "File is not a supported audio file"


class InvalidRequest(DomainError):
    status_code = 422
    default_detail = "Invalid request"


class RateLimited(DomainError):
    status_code = 429
    default_detail = "Rate limit exceeded"


class ServiceUnavailable(DomainError):
    status_code = 503
    default_detail = "Service temporarily unavailable, retry later"


class ConcurrentUpdate(ServiceUnavailable):
    """Retries of a lost optimistic-write race ran out: transient contention, not a lock (never 409)."""

    default_detail = "Too many concurrent changes to this resource, retry shortly"
    retry_after_seconds: ClassVar[str] = "1"

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, headers or {"Retry-After": self.retry_after_seconds})


class SpeakerNotFound(DomainError):
    status_code = 404
    default_detail = "Speaker not found"


class SpeakerAlreadyExists(DomainError):
    status_code = 409
    default_detail = "A speaker with this name already exists"


class SpeakerBusy(DomainError):
    status_code = 409
    default_detail = "Speaker is currently being processed"


class SpeakerNotReady(DomainError):
    status_code = 409
    default_detail = "Speaker is not ready: voice cloning has not completed"


class NothingToCancel(DomainError):
    status_code = 409
    default_detail = "No job is running"
