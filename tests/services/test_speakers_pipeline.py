"""Create speaker -> clone -> dataset -> train_lora -> adapter, through the API, the deployed state machine
on moto's Step Functions engine and the real GPU worker (resemblyzer on CPU) in-process; presigned S3 URLs
are served from moto through respx."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests import audio_factory
from tests.pipeline.engine import Engine
from tests.pipeline.helpers import s3_over_http
from voice_onboarding.api.app import create_app
from voice_onboarding.services.container import Services

pytestmark = pytest.mark.slow
BASE = "/api/voice/models/speakers"


@pytest.fixture
def local_client(engine: Engine, espeak_ng: None) -> Iterator[tuple[TestClient, Engine, Services]]:
    pytest.importorskip("resemblyzer")
    # The worker beats every 10 / 3 s; a period with none would poll RunPod (and fail a silent worker).
    engine.set_poll_seconds(10)
    services = engine.services

    def signed_at_submit(request: httpx.Request) -> bool:
        # Every output URL signed at submit time has died by upload time (a role session that ended).
        return request.method == "PUT" and str(request.url) not in {str(httpx.URL(u)) for u in engine.signed_urls}

    with s3_over_http(services.blobs, expired=signed_at_submit):
        key, _ = services.api_keys.create("e2e", ["my-partner"])
        yield TestClient(create_app(services), headers={"X-Api-Key": key}), engine, services


def _speech(folder: Path, name: str, repeats: int) -> Path:
    line = audio_factory.speech(folder / f"{name}-line.wav", audio_factory.SENTENCES[repeats % 4])
    return audio_factory.concat(folder / f"{name}.wav", [line] * repeats)


def test_clone_then_train_on_the_cpu_worker(local_client, tmp_path) -> None:
    client, engine, services = local_client
    reference = _speech(tmp_path, "reference", 4)
    created = client.post(
        BASE,
        data={"name": "aria-custom", "language": "en-US"},
        files={"reference_audio": ("reference.wav", reference.read_bytes(), "audio/wav")},
    )
    assert created.status_code == 201, created.text
    engine.wait_idle()
    speaker = client.get(f"{BASE}/aria-custom").json()
    assert speaker["status"] == "ready", speaker["status_reason"]
    assert speaker["progress"] is None
    stored = services.speakers.require("my-partner", "aria-custom")
    assert services.blobs.exists(stored.conditioning_key)

    sample = _speech(tmp_path, "sample", 4)  # ~16 s: five make the 60 s a dataset needs
    for i in range(5):
        response = client.post(
            f"{BASE}/aria-custom/dataset/sample",
            data={"transcript": " ".join([audio_factory.SENTENCES[0]] * 4)},
            files={"audio": (f"s{i}.wav", sample.read_bytes(), "audio/wav")},
        )
        assert response.status_code == 201, response.text
    assert client.get(f"{BASE}/aria-custom/dataset").json()["status"] == "ready"
    assert client.post(f"{BASE}/aria-custom/train", json={"steps": 3, "rank": 2}).status_code == 202
    engine.wait_idle()
    [adapter] = client.get(f"{BASE}/aria-custom/adapters").json()
    assert adapter["status"] == "completed", adapter["error"]
    assert adapter["hyperparameters"]["steps"] == 3 and adapter["final_loss"] is not None
    prefix = f"my-partner/speakers/{stored.speaker_id}/adapters/v1/"
    assert services.blobs.exists(prefix + "adapter.zip") and services.blobs.exists(prefix + "metadata.json")
    assert client.get(f"{BASE}/aria-custom/dataset").json()["status"] == "trained"
    # Both runs' outputs were written through URLs signed at upload time, and their workers beat.
    assert {p.rsplit("/", 2)[-2] for p in engine.callbacks if p.endswith("/upload-url")} == {"clone", "train_lora"}
    assert {p.rsplit("/", 2)[-2] for p in engine.callbacks if p.endswith("/progress")} == {"clone", "train_lora"}
