"""Exceptions of the client. Every API error carries the response's `detail` and HTTP status."""

from typing import Any


class VoiceOnboardingError(Exception):
    """Base class of everything this client raises."""


class ConfigurationError(VoiceOnboardingError):
    """No API URL or key: pass them as arguments or set VOICE_API_URL / VOICE_API_KEY."""


class ApiError(VoiceOnboardingError):
    """The API answered with an error status; `detail` is its `{"detail": ...}` body."""

    def __init__(
        self, status_code: int, detail: Any, *, method: str = "", url: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        self.headers = headers or {}
        super().__init__(f"{status_code}: {format_detail(detail)}")

    @property
    def message(self) -> str:
        return format_detail(self.detail)


class AuthenticationError(ApiError):
    """401: the API key is missing or unknown."""


class AccessDenied(ApiError):
    """403: the API key may not access this partner."""


class NotFound(ApiError):
    """404: no such voice, sample, speaker or upload."""


class Conflict(ApiError):
    """409: the voice/speaker is busy (a job runs), or the name is taken."""


class PayloadTooLarge(ApiError):
    """413: above even the presigned upload limit."""


class InvalidRequest(ApiError):
    """400/422: invalid audio or parameters; `detail` says which and why."""


class RateLimited(ApiError):
    """429 after every retry was spent."""


class ServiceUnavailable(ApiError):
    """503 (or 502/504) after every retry was spent."""


class ServerError(ApiError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: AccessDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}


def error_class(status_code: int) -> type[ApiError]:
    return _BY_STATUS.get(status_code, ServerError if status_code >= 500 else ApiError)


class TransportError(VoiceOnboardingError):
    """The API could not be reached (connection refused, reset, timed out) after every retry."""


class JobFailed(VoiceOnboardingError):
    """A waited-for job ended `failed`; `reason` is the API's explanation, `resource` the final state."""

    def __init__(self, stage: str, reason: str | None, resource: Any = None) -> None:
        self.stage = stage
        self.reason = reason or "no reason given"
        self.resource = resource
        super().__init__(f"{stage} failed: {self.reason}")


class WaitTimeout(VoiceOnboardingError, TimeoutError):
    """The job did not end within the timeout; `resource` is the last state seen."""

    def __init__(self, message: str, resource: Any = None) -> None:
        self.resource = resource
        super().__init__(message)


class NothingToWaitFor(VoiceOnboardingError):
    """No job runs (nor was started) on the voice/speaker, so waiting could never end."""

    def __init__(self, message: str, resource: Any = None) -> None:
        self.resource = resource
        super().__init__(message)


def format_detail(detail: Any) -> str:
    """FastAPI's validation errors are a list of {loc, msg}; ours are a string."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)
