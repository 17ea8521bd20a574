"""Shared fixtures: moto-backed AWS, the table/bucket from template.yaml, the app, keys and audio."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# Credentials and region for moto before any boto3 client exists; never real AWS in tests.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="VoiceOnboardingTests",
    POWERTOOLS_LOG_LEVEL="WARNING",
    STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:voice-pipeline",
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from fastapi.testclient import TestClient
from infra.local import gpu as local_gpu
from infra.local.gpu import InProcessGpuClient
from infra.local.lambdas import InProcessLambda
from infra.local.pipeline import create_state_machine, lambda_client
from infra.moto_atomic import make_moto_dynamodb_atomic
from infra.provisioning import provision
from moto import mock_aws

from gpu_worker import callback as gpu_worker_callback
from tests import audio_factory
from tests.pipeline.engine import Engine, record_retry_sleeps
from voice_onboarding.api.app import create_app
from voice_onboarding.aws_clients import make_client
from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.handlers.composition import override
from voice_onboarding.services.container import Services, build_dispatcher, build_services
from voice_onboarding.settings import Settings

PARTNER = "my-partner"
OTHER_PARTNER = "other-partner"


class RecordingDispatcher:
    """Captures the jobs the API starts, for tests of the API's side of the hand-off."""

    def __init__(self) -> None:
        self.jobs: list[PipelineJob] = []
        self.fail_with: Exception | None = None

    def start(self, job: PipelineJob) -> str:
        if self.fail_with:
            raise self.fail_with
        self.jobs.append(job)
        return f"recorded:{job.job_id}"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        TABLE_NAME="voice-onboarding-test",
        BUCKET_NAME="voice-onboarding-test",
        DEFAULT_TTS_TYPE="kyutai",
    )


@pytest.fixture
def aws() -> Iterator[None]:
    make_moto_dynamodb_atomic()
    # Step Functions executions run for real on moto's engine (the `engine` fixture creates the machine).
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def services(aws: None, settings: Settings, dispatcher: RecordingDispatcher) -> Services:
    dynamodb = make_client("dynamodb", settings)
    s3 = make_client("s3", settings)
    provision(dynamodb, s3, settings.table_name, settings.bucket_name)
    return build_services(settings, dynamodb=dynamodb, s3=s3, dispatcher=dispatcher)


@pytest.fixture
def engine(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The deployed state machine on moto's engine; the API's jobs start executions of it. The CPU
    engine by default (as in local mode), GPU runs end through the webhook route (1 s fallback polls),
    Retry intervals recorded not slept."""
    sfn = make_client("stepfunctions", services.settings)
    arn = create_state_machine(sfn, {"GpuFallbackPollSeconds": 1})
    services.settings = services.settings.model_copy(
        update={"default_tts_type": "resemblyzer", "state_machine_arn": arn, "public_api_url": "http://testserver"}
    )
    services.dispatcher = build_dispatcher(services.settings)
    engine = Engine(services, sfn, arn, InProcessLambda())
    record_retry_sleeps(monkeypatch, engine.retry_sleeps)
    # The in-process GPU worker reports a run's end to the API's webhook route, as RunPod would.
    webhook_app = TestClient(create_app(services), raise_server_exceptions=False)

    def post_webhook(url: str, body: dict[str, Any]) -> int:
        engine.webhooks.append(url)
        target = httpx.URL(url)
        return webhook_app.post(target.raw_path.decode(), json=body).status_code

    monkeypatch.setattr(local_gpu, "post_webhook", post_webhook)

    def worker_callback(method: str, url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        # The worker's progress/heartbeat and upload-URL calls reach the same API.
        engine.callbacks.append(httpx.URL(url).path)
        headers = {"Authorization": f"Bearer {token}"}
        response = webhook_app.request(method, httpx.URL(url).raw_path.decode(), json=body, headers=headers)
        if response.status_code == 200 and "url" in response.json():
            engine.signed_urls.append(response.json()["url"])
        return response.status_code, response.json()

    monkeypatch.setattr(gpu_worker_callback, "send", worker_callback)
    # The GPU steps run the real worker in-process on CPU, as in the local stack.
    with override(services=services, gpu_client=InProcessGpuClient()), lambda_client(engine.lambdas):
        yield engine
        engine.wait_idle()  # before moto goes away under a running execution


@pytest.fixture
def pipeline(engine: Engine) -> Services:
    return engine.services


@pytest.fixture
def api_key(services: Services) -> str:
    key, _ = services.api_keys.create("tests", [PARTNER])
    return key


@pytest.fixture
def other_api_key(services: Services) -> str:
    key, _ = services.api_keys.create("other", [OTHER_PARTNER])
    return key


@pytest.fixture
def app(services: Services) -> Any:
    return create_app(services)


@pytest.fixture
def client(app: Any, api_key: str) -> TestClient:
    # raise_server_exceptions=False: a 500 must surface as a response, as a user would see it.
    return TestClient(app, headers={"X-Api-Key": api_key}, raise_server_exceptions=False)


@pytest.fixture
def anon_client(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def wav_tone(tmp_path: Path) -> Path:
    return audio_factory.tone(tmp_path / "tone.wav", 3.0)


@pytest.fixture
def all_bucket_keys(services: Services) -> Any:
    def _keys() -> list[str]:
        return sorted(services.blobs.list_keys(""))

    return _keys


@pytest.fixture
def all_voice_items(services: Services) -> Any:
    def _items() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in services.dynamodb.get_paginator("scan").paginate(TableName=services.settings.table_name):
            items.extend(i for i in page.get("Items", []) if i.get("entity", {}).get("S") == "voice")
        return items

    return _items


@pytest.fixture(scope="session")
def espeak_ng() -> None:
    """Request this in every test or fixture that synthesizes speech: without espeak-ng they skip, all
    with the same reason, instead of erroring."""
    audio_factory.require_espeak()


@pytest.fixture(scope="session")
def speech_recording(espeak_ng: None, tmp_path_factory: pytest.TempPathFactory) -> audio_factory.KnownRecording:
    """~55 s of espeak-ng speech: 12 sentences separated by known pauses of 0.5 s and 1.0 s."""
    return audio_factory.build_recording(tmp_path_factory.mktemp("speech"), 12, lambda i: 1.0 if i % 3 == 2 else 0.5)
