"""The one place that builds boto3 clients, so AWS_ENDPOINT_URL redirects all of them at once."""

from functools import cache
from typing import Any

from voice_onboarding.settings import Settings, get_settings


@cache
def _boto_config() -> Any:
    # boto3 is imported on the first client, not with this module: ~0.15 s off every cold start's import.
    from botocore.config import Config

    # Standard retry mode backs off on throttling; adaptive would add client-side rate limiting per
    # process, which does not help across concurrent Lambdas.
    return Config(retries={"max_attempts": 4, "mode": "standard"}, signature_version="s3v4")


def make_client(service: str, settings: Settings | None = None) -> Any:
    import boto3

    settings = settings or get_settings()
    return boto3.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=_boto_config(),
    )
