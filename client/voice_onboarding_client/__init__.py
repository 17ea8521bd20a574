"""Python client and CLI for the voice onboarding API."""

from voice_onboarding_client import models
from voice_onboarding_client.client import ENDPOINTS, VoiceOnboardingClient
from voice_onboarding_client.errors import (
    AccessDenied,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    JobFailed,
    NotFound,
    NothingToWaitFor,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    VoiceOnboardingError,
    WaitTimeout,
)

Client = VoiceOnboardingClient

__all__ = [
    "ENDPOINTS",
    "AccessDenied",
    "ApiError",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "Conflict",
    "InvalidRequest",
    "JobFailed",
    "NotFound",
    "NothingToWaitFor",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "VoiceOnboardingClient",
    "VoiceOnboardingError",
    "WaitTimeout",
    "models",
]
