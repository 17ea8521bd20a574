"""The set of collaborators a request needs, built once per process (or injected by tests)."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voice_onboarding.aws_clients import make_client
from voice_onboarding.domain.jobs import JobDispatcher
from voice_onboarding.settings import Settings, get_settings
from voice_onboarding.storage.api_keys_repo import ApiKeyRepository
from voice_onboarding.storage.blobs import BlobStore
from voice_onboarding.storage.catalog_repo import CatalogRepository
from voice_onboarding.storage.cleanup_repo import CleanupRepository
from voice_onboarding.storage.idempotency_repo import IdempotencyStore
from voice_onboarding.storage.rate_limits_repo import RateLimitRepository
from voice_onboarding.storage.speakers_repo import SpeakerRepository
from voice_onboarding.storage.stages_repo import StageRepository
from voice_onboarding.storage.voices_repo import VoiceRepository


@dataclass
class Services:
    settings: Settings
    dynamodb: Any
    s3: Any
    voices: VoiceRepository
    api_keys: ApiKeyRepository
    blobs: BlobStore
    dispatcher: JobDispatcher
    speakers: SpeakerRepository
    # The shared voice catalog (deploy/undeploy write it in the speakers' transactions).
    catalog: CatalogRepository
    cleanup: CleanupRepository
    idempotency: IdempotencyStore
    rate_limits: RateLimitRepository
    stages: StageRepository
    # Injectable so tests can cross rate-limit windows and timeouts without sleeping.
    clock: Callable[[], float] = field(default=time.time)


def build_dispatcher(settings: Settings) -> JobDispatcher:
    """Jobs start Step Functions executions, deployed or local (moto's engine in the local stack)."""
    from voice_onboarding.adapters.stepfunctions import StepFunctionsDispatcher

    if not settings.state_machine_arn:
        raise RuntimeError("STATE_MACHINE_ARN must be set")
    return StepFunctionsDispatcher(make_client("stepfunctions", settings), settings.state_machine_arn)


def build_services(
    settings: Settings | None = None,
    dynamodb: Any = None,
    s3: Any = None,
    dispatcher: JobDispatcher | None = None,
) -> Services:
    settings = settings or get_settings()
    dynamodb = dynamodb or make_client("dynamodb", settings)
    s3 = s3 or make_client("s3", settings)
    return Services(
        settings=settings,
        dynamodb=dynamodb,
        s3=s3,
        voices=VoiceRepository(dynamodb, settings.table_name),
        api_keys=ApiKeyRepository(dynamodb, settings.table_name),
        blobs=BlobStore(s3, settings.bucket_name),
        dispatcher=dispatcher or build_dispatcher(settings),
        speakers=(speakers := SpeakerRepository(dynamodb, settings.table_name)),
        catalog=CatalogRepository(dynamodb, settings.table_name, speakers),
        cleanup=CleanupRepository(dynamodb, settings.table_name),
        idempotency=IdempotencyStore(dynamodb, settings.table_name),
        rate_limits=RateLimitRepository(dynamodb, settings.table_name),
        stages=StageRepository(dynamodb, settings.table_name),
    )
