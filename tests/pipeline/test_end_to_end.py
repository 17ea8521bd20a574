"""Upload -> split -> embed -> completed, through the API, the deployed state machine on moto's Step
Functions engine, the real split handler and the real GPU worker (resemblyzer on CPU) in-process.
Presigned S3 URLs are served from moto through respx."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.audio_factory import KnownRecording
from tests.pipeline.engine import Engine
from tests.pipeline.helpers import key_of
from tests.pipeline.helpers import s3_over_http as serve_s3_over_http
from voice_onboarding.api.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_over_http(engine: Engine) -> Iterator[None]:
    """S3 on moto, where every output URL signed at submit time has died by upload time (as when the
    submit Lambda's role session ends first): only URLs the API signs when the worker asks can write."""

    def signed_at_submit(request: httpx.Request) -> bool:
        return request.method == "PUT" and str(request.url) not in {str(httpx.URL(u)) for u in engine.signed_urls}

    with serve_s3_over_http(engine.services.blobs, expired=signed_at_submit):
        yield


@pytest.fixture
def local_api(engine: Engine, espeak_ng: None) -> Iterator[tuple[TestClient, Engine]]:
    pytest.importorskip("resemblyzer")
    # The worker beats every 10 / 3 s; a period with none would poll RunPod (and fail a silent worker).
    engine.set_poll_seconds(10)
    key, _ = engine.services.api_keys.create("e2e", ["my-partner"])
    yield TestClient(create_app(engine.services), headers={"X-Api-Key": key}), engine


def test_upload_splits_then_embeds_with_scores(
    local_api: tuple[TestClient, Engine], s3_over_http: None, speech_recording: KnownRecording
) -> None:
    client, engine = local_api
    with speech_recording.path.open("rb") as fh:
        created = client.post(
            "/api/voices/my-partner", data={"name": "speaker-1"}, files={"file": ("recording.wav", fh, "audio/wav")}
        )
    assert created.status_code in (200, 201), created.text
    [execution] = engine.wait_idle()
    assert execution["status"] == "SUCCEEDED", execution

    voice: dict[str, Any] = client.get("/api/voices/my-partner/speaker-1").json()
    assert voice["status"] == {"splitting": "completed", "embedding": "completed"}, voice["status_reasons"]
    # The worker reported its steps (its heartbeat) and had every output URL signed when it uploaded.
    assert any(path.endswith("/embed/progress") for path in engine.callbacks)
    assert any(path.endswith("/embed/upload-url") for path in engine.callbacks)
    assert voice["progress"] is None
    indices = {s["index"] for s in voice["samples"]}
    assert len(indices) >= 2
    info = voice["embedding_info"]
    assert info["tts_type"] == "resemblyzer" and info["last_update_status"] == "success"
    assert {s["sample_index"] for s in info["sample_scores"]} == indices
    scores = [s["score"] for s in info["sample_scores"]]
    assert scores == sorted(scores, reverse=True)
    assert voice["preferred_sample_index"] == info["sample_scores"][0]["sample_index"]
    assert voice["embedding_type"] == "resemblyzer" and voice["embedding_zip_url"]
    zip_key = key_of(voice["embedding_zip_url"], "voice-onboarding-test")
    assert zip_key.endswith("/embeddings/resemblyzer.zip")
