"""Runtime configuration, read once from the environment (Lambda env vars, or the local stack)."""

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_onboarding.contract.engines import DEFAULT_TTS_TYPE, capabilities


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    table_name: str = Field(default="voice-onboarding", validation_alias="TABLE_NAME")
    bucket_name: str = Field(default="voice-onboarding-audio", validation_alias="BUCKET_NAME")
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    # Points every boto3 client at a local endpoint (the embedded moto server in local mode).
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")

    # The pipeline's state machine (on moto's Step Functions engine in the local stack).
    state_machine_arn: str | None = Field(default=None, validation_alias="STATE_MACHINE_ARN")

    runpod_endpoint_id: str | None = Field(default=None, validation_alias="RUNPOD_ENDPOINT_ID")
    # Name/ARN of the secret holding the RunPod API key; the key itself is never in the env when deployed.
    runpod_api_key_secret: str | None = Field(default=None, validation_alias="RUNPOD_API_KEY_SECRET")
    runpod_api_key: str | None = Field(default=None, validation_alias="RUNPOD_API_KEY")
    runpod_base_url: str = Field(default="https://api.runpod.ai/v2", validation_alias="RUNPOD_BASE_URL")
    # The API's public base URL: RunPod's webhook reports a run's end to it (unset: status polls alone).
    public_api_url: str | None = Field(default=None, validation_alias="PUBLIC_API_URL")

    default_tts_type: str = Field(default=DEFAULT_TTS_TYPE, validation_alias="DEFAULT_TTS_TYPE")
    # Lambda's synchronous payload limit is 6 MB; multipart bodies above this are refused with 413.
    max_direct_upload_bytes: int = Field(default=5_500_000, validation_alias="MAX_DIRECT_UPLOAD_BYTES")
    # Presigned S3 uploads (beyond the direct limit) are capped here; S3 enforces it in the POST policy.
    max_presigned_upload_bytes: int = Field(default=500_000_000, validation_alias="MAX_PRESIGNED_UPLOAD_BYTES")
    # Downloads above this are answered with a redirect to a presigned S3 URL (API Gateway caps at 6 MB).
    max_inline_download_bytes: int = Field(default=5_000_000, validation_alias="MAX_INLINE_DOWNLOAD_BYTES")
    presigned_url_ttl_seconds: int = Field(default=3600, validation_alias="PRESIGNED_URL_TTL_SECONDS")
    # Sweeper: a job in_progress with no write to its voice/speaker (progress included) for this long is
    # failed. GPU polls write progress every poll, so this only needs to outlast the longest silent step
    # (a 15-minute split Lambda) plus the state machine's own task timeouts.
    sweeper_stale_after_seconds: int = Field(default=3600, ge=60, validation_alias="SWEEPER_STALE_AFTER_SECONDS")

    @field_validator("aws_endpoint_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None  # the template declares it empty on AWS (for sam local's --env-vars)

    @field_validator("default_tts_type")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        capabilities(value)  # a misconfigured engine fails at start-up, naming the supported ones
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
