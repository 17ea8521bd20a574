"""The client against the real app in-process (moto): a throttled write's 503 is retried after its
Retry-After with the same Idempotency-Key; a create whose response was lost is replayed, not redone;
API errors raise with the API's detail and status; waiting follows the job and reports failures."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from tests.conftest import PARTNER, RecordingDispatcher
from voice_onboarding.services.container import Services
from voice_onboarding_client import (
    AuthenticationError,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    VoiceOnboardingClient,
    WaitTimeout,
)
from voice_onboarding_client.client import IDEMPOTENCY_HEADER


class Wire:
    """What went over the wire: every request's method, path and Idempotency-Key, every response."""

    def __init__(self, http: httpx.Client) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        self.responses: list[httpx.Response] = []
        self.drop_next_response_of: str | None = None
        http.event_hooks = {"request": [self.on_request], "response": [self.on_response]}

    def on_request(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path, request.headers.get(IDEMPOTENCY_HEADER)))

    def on_response(self, response: httpx.Response) -> None:
        self.responses.append(response)
        request = response.request
        if self.drop_next_response_of == f"{request.method} {request.url.path}":
            self.drop_next_response_of = None
            # The server did the work; the client never hears back (a reset connection, a Lambda timeout).
            raise httpx.ReadError("connection reset by peer", request=request)


@pytest.fixture
def http(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api(http: TestClient, api_key: str, sleeps: list[float]) -> VoiceOnboardingClient:
    return VoiceOnboardingClient("http://testserver", api_key, http_client=http, sleep=sleeps.append)


@pytest.fixture
def wire(http: TestClient) -> Wire:
    return Wire(http)


def throttle_voice_writes(monkeypatch: pytest.MonkeyPatch, services: Services, times: int) -> list[int]:
    """The next `times` DynamoDB writes of a voice item fail as a throttled table would."""
    original = services.dynamodb.put_item
    failed: list[int] = []

    def put_item(**kwargs: Any) -> Any:
        if kwargs["Item"]["SK"]["S"].startswith("VOICE#") and len(failed) < times:
            failed.append(1)
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]
        return original(**kwargs)

    monkeypatch.setattr(services.dynamodb, "put_item", put_item)
    return failed


def test_injected_503_is_retried_after_retry_after_with_the_same_key(
    api: VoiceOnboardingClient,
    wire: Wire,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: list[float],
    wav_tone: Path,
    dispatcher: RecordingDispatcher,
) -> None:
    failed = throttle_voice_writes(monkeypatch, services, times=1)

    voice = api.create_voice(PARTNER, "speaker-1", wav_tone)

    assert failed and voice.name == "speaker-1" and voice.status.splitting == "in_progress"
    assert [r.status_code for r in wire.responses] == [503, 201]
    assert sleeps == [float(wire.responses[0].headers["Retry-After"])]  # the server's delay, not a guess
    keys = {key for _, _, key in wire.requests}
    assert len(wire.requests) == 2 and len(keys) == 1 and None not in keys
    assert len(dispatcher.jobs) == 1


def test_503_on_every_attempt_raises_with_the_detail(
    api: VoiceOnboardingClient, wire: Wire, services: Services, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    throttle_voice_writes(monkeypatch, services, times=100)
    api.max_retries = 2

    with pytest.raises(ServiceUnavailable) as raised:
        api.create_empty_voice(PARTNER, "speaker-1")

    assert raised.value.status_code == 503 and raised.value.message.startswith("Service temporarily unavailable")
    assert len(wire.requests) == 3 and len(sleeps) == 2
    assert services.voices.get(PARTNER, "speaker-1") is None


def test_create_whose_response_was_dropped_is_replayed_not_redone(
    api: VoiceOnboardingClient, wire: Wire, wav_tone: Path, dispatcher: RecordingDispatcher, services: Services
) -> None:
    wire.drop_next_response_of = f"POST /api/voices/{PARTNER}"

    voice = api.create_voice(PARTNER, "speaker-1", wav_tone, creator_name="John")

    assert voice.name == "speaker-1" and voice.creator_name == "John"
    posts = [r for r in wire.requests if r[0] == "POST"]
    assert len(posts) == 2 and posts[0][2] == posts[1][2]  # the retry reused the key
    assert wire.responses[-1].headers.get("Idempotent-Replayed") == "true"
    # One voice, one pipeline job: without the key the retry would have met 409 "already exists".
    assert len(dispatcher.jobs) == 1
    assert [v.name for v in services.voices.list(PARTNER)] == ["speaker-1"]


def test_each_call_gets_its_own_key(api: VoiceOnboardingClient, wire: Wire) -> None:
    api.create_empty_voice(PARTNER, "a")
    api.create_empty_voice(PARTNER, "b")
    keys = [key for method, _, key in wire.requests if method == "POST"]
    assert len(keys) == 2 and keys[0] != keys[1]


def test_api_errors_carry_detail_and_status(api: VoiceOnboardingClient, http: TestClient) -> None:
    with pytest.raises(NotFound) as missing:
        api.get_voice(PARTNER, "nobody")
    assert missing.value.status_code == 404 and missing.value.detail == "Voice not found"

    stranger = VoiceOnboardingClient("http://testserver", "vk_wrong", http_client=http)
    with pytest.raises(AuthenticationError) as denied:
        stranger.list_voices(PARTNER)
    assert denied.value.status_code == 401 and denied.value.detail == "Invalid API key"


def test_wait_follows_split_then_embed_and_reports_a_failure(
    api: VoiceOnboardingClient, services: Services, wav_tone: Path
) -> None:
    api.create_voice(PARTNER, "speaker-1", wav_tone)
    seen: list[tuple[str, str]] = []
    script = iter(
        [
            {"splitting_status": "completed", "progress": None},  # the gap before embedding starts
            {"embedding_status": "in_progress", "progress": {"job": "embedding", "step": "IN_QUEUE"}},
            {"embedding_status": "failed", "embedding_error": "GPU worker crashed", "progress": None},
        ]
    )

    def advance(_: float) -> None:
        services.voices.update(PARTNER, "speaker-1", next(script))

    api._sleep = advance
    with pytest.raises(JobFailed) as failed:
        api.wait_voice(
            PARTNER, "speaker-1", on_progress=lambda v: seen.append((v.status.splitting, v.status.embedding))
        )

    assert failed.value.stage == "embedding" and failed.value.reason == "GPU worker crashed"
    assert seen == [
        ("in_progress", "idle"),
        ("completed", "idle"),
        ("completed", "in_progress"),
        ("completed", "failed"),
    ]


def test_wait_times_out_with_the_last_state(api: VoiceOnboardingClient, wav_tone: Path) -> None:
    api.create_voice(PARTNER, "speaker-1", wav_tone)
    with pytest.raises(WaitTimeout) as timed_out:
        api.wait_voice(PARTNER, "speaker-1", timeout=0)
    assert timed_out.value.resource.status.splitting == "in_progress"


def test_retry_after_and_backoff_without_a_server() -> None:
    """429 with Retry-After, then a 503 without it (exponential backoff), then success; one key throughout."""
    answers = iter(
        [
            httpx.Response(429, json={"detail": "Rate limit exceeded"}, headers={"Retry-After": "7"}),
            httpx.Response(503, json={"detail": "Service temporarily unavailable"}),
            httpx.Response(201, json={"name": "aria", "language": "en-US", "status": "created", "message": "ok"}),
        ]
    )
    keys: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get(IDEMPOTENCY_HEADER))
        assert request.headers["X-Api-Key"] == "vk_test"
        return next(answers)

    sleeps: list[float] = []
    api = VoiceOnboardingClient(
        "http://api.test/api", "vk_test", transport=httpx.MockTransport(handler), sleep=sleeps.append, backoff=0.5
    )
    created = api.create_speaker("aria", "en-US", b"RIFF....", filename="ref.wav")

    assert created.status == "created"
    assert sleeps[0] == 7.0 and 0.25 <= sleeps[1] <= 1.0
    assert len(keys) == 3 and len(set(keys)) == 1


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from voice_onboarding_client import ConfigurationError

    monkeypatch.delenv("VOICE_API_URL", raising=False)
    monkeypatch.delenv("VOICE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError):
        VoiceOnboardingClient()
    monkeypatch.setenv("VOICE_API_URL", "http://example.test/api/")
    monkeypatch.setenv("VOICE_API_KEY", "vk_env")
    api = VoiceOnboardingClient()
    assert api.base_url == "http://example.test"


def test_409_is_retried_only_while_our_own_key_is_in_flight() -> None:
    """ "Still being processed" (409 + Retry-After, our earlier attempt) waits and retries; a lock does not."""
    answers = iter(
        [
            httpx.Response(409, json={"detail": "A request with this Idempotency-Key is still being processed"},
                           headers={"Retry-After": "1"}),
            httpx.Response(202, json={"name": "v", "job": "splitting", "job_id": "j1",
                                      "status": {"splitting": "in_progress", "embedding": "idle"}}),
            httpx.Response(409, json={"detail": "Voice is currently being processed"}),
        ]
    )  # fmt: skip
    sleeps: list[float] = []
    api = VoiceOnboardingClient(
        "http://api.test", "vk_test", transport=httpx.MockTransport(lambda _: next(answers)), sleep=sleeps.append
    )
    assert api.split_voice("p", "v").job_id == "j1" and sleeps == [1.0]
    from voice_onboarding_client import Conflict

    with pytest.raises(Conflict) as locked:
        api.split_voice("p", "v")
    assert locked.value.detail == "Voice is currently being processed" and sleeps == [1.0]


def test_downloads_follow_the_307_to_storage_without_the_api_key(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def api_side(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "https://bucket.s3.test/bundles/v.zip?X-Amz-Signature=s"})

    def storage_side(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"PK\x03\x04" + b"x" * 200_000)

    api = VoiceOnboardingClient(
        "http://api.test",
        "vk_secret",
        transport=httpx.MockTransport(api_side),
        storage_client=httpx.Client(transport=httpx.MockTransport(storage_side)),
    )
    written = api.download_bundle("p", "v", tmp_path / "bundle.zip")

    assert written == tmp_path / "bundle.zip" and written.stat().st_size == 200_004
    assert [r.url.host for r in seen] == ["api.test", "bucket.s3.test"]
    assert seen[0].headers["X-Api-Key"] == "vk_secret" and "X-Api-Key" not in seen[1].headers
    assert not list(tmp_path.glob("*.part"))
