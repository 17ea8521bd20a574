"""Cancel endpoints: the running execution stops, its RunPod run is cancelled, the stage fails with
"cancelled" and the lock is released; earlier samples and artifacts stay; 409 when nothing runs."""

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_gpu_webhook import SilentGpu
from tests.pipeline.engine import Engine
from tests.pipeline.helpers import job_for, make_voice
from voice_onboarding.api.app import create_app
from voice_onboarding.domain.jobs import Stage
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.handlers.composition import override
from voice_onboarding.services.gpu_jobs import runs
from voice_onboarding.storage import keys

BASE = "/api/voices/my-partner"


class CancellableGpu(SilentGpu):
    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[str] = []

    def cancel(self, run_id: str) -> Any:
        self.cancelled.append(run_id)
        return super().cancel(run_id)


def _client(engine: Engine, partners: list[str], gpu: Any = None) -> TestClient:
    key, _ = engine.services.api_keys.create("cancel", partners)
    app = create_app(engine.services)
    app.state.gpu_client = gpu  # the RunPod client a cancel uses (the handlers' is injected by override)
    return TestClient(app, headers={"X-Api-Key": key}, raise_server_exceptions=False)


def test_cancel_stops_the_run_and_keeps_what_the_voice_had(engine: Engine) -> None:
    engine.set_poll_seconds(60)  # the run never ends by itself within the test
    gpu = CancellableGpu()
    services = engine.services
    voice = make_voice(services, embedding_zip_key="my-partner/vid-speaker-1/embeddings/old.zip")
    services.blobs.put_bytes("my-partner/vid-speaker-1/embeddings/old.zip", b"previous embedding")
    before = sorted(services.blobs.list_keys(""))
    job = job_for(voice)
    client = _client(engine, ["my-partner"], gpu)
    with override(gpu_client=gpu):
        arn = engine.start(job)
        for _ in range(400):  # until the execution waits on the GPU run
            if (runs.run_records(services).get(job.job_id, "embed") or {}).get("task_token"):
                break
            time.sleep(0.05)
        response = client.post(f"{BASE}/speaker-1/cancel")
        execution = engine.result(arn)

    assert response.status_code == 200, response.text
    assert response.json() == {"detail": "Job cancelled"}
    # ABORTED on AWS; moto 5.2.5 lets a stopped execution finish its state (services/cancel.py).
    assert execution.status in ("ABORTED", "FAILED") and gpu.cancelled == ["run-1"]
    assert "GpuFinalize" not in execution.states
    stored = services.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "cancelled")
    assert [s.index for s in stored.samples] == [1, 2, 3] and stored.embedding_zip_key.endswith("old.zip")
    assert sorted(services.blobs.list_keys("")) == before
    assert services.blobs.get_bytes(keys.sample_key("my-partner", voice.voice_id, 1)) == b"sample 1"
    # Unlocked: the voice can be renamed; nothing runs any more, so a second cancel is refused.
    assert client.put(f"{BASE}/speaker-1/name", data={"name": "renamed"}).status_code == 200
    again = client.post(f"{BASE}/renamed/cancel")
    assert again.status_code == 409 and again.json() == {"detail": "No job is running"}


def test_cancel_with_nothing_running_is_409(engine: Engine) -> None:
    make_voice(engine.services, embedding=JobStatus.COMPLETED)
    client = _client(engine, ["my-partner"])
    response = client.post(f"{BASE}/speaker-1/cancel")
    assert response.status_code == 409 and response.json() == {"detail": "No job is running"}
    speaker = client.post("/api/voice/models/speakers/nobody/cancel")
    assert speaker.status_code == 404 and speaker.json() == {"detail": "Speaker not found"}
    voice = client.post(f"{BASE}/nobody/cancel")
    assert voice.status_code == 404 and voice.json() == {"detail": "Voice not found"}


def test_cancel_of_another_partners_voice_is_403_and_stops_nothing(engine: Engine) -> None:
    engine.set_poll_seconds(60)
    gpu = CancellableGpu()
    voice = make_voice(engine.services)
    job = job_for(voice)
    intruder = _client(engine, ["other-partner"], gpu)
    with override(gpu_client=gpu):
        arn = engine.start(job)
        response = intruder.post(f"{BASE}/speaker-1/cancel")
        assert engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        engine.sfn.stop_execution(executionArn=arn)
    assert response.status_code == 403 and gpu.cancelled == []


def _wait_for_token(services: Any, job_id: str, stage: str) -> dict[str, Any]:
    for _ in range(400):  # until the execution waits on the GPU run
        record = runs.run_records(services).get(job_id, stage) or {}
        if record.get("task_token"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"no GPU wait for {job_id}/{stage}")


def _running_clone(engine: Engine, client: TestClient, tmp_path: Any) -> tuple[Any, str]:
    """Create a speaker through the API: its clone job runs on the engine and waits on the GPU run."""
    from tests import audio_factory

    clip = audio_factory.tone(tmp_path / "ref.wav", 12.0)
    created = client.post(
        "/api/voice/models/speakers",
        data={"name": "aria-custom", "language": "en-US"},
        files={"reference_audio": ("ref.wav", clip.read_bytes(), "audio/wav")},
    )
    assert created.status_code == 201, created.text
    speaker = engine.services.speakers.require("my-partner", "aria-custom")
    assert speaker.execution_arn  # recorded when the job started
    described = engine.sfn.describe_execution(executionArn=speaker.execution_arn)
    _wait_for_token(engine.services, json.loads(described["input"])["job_id"], "clone")
    return speaker, speaker.execution_arn


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded-execution", "listed-execution"])
def test_cancel_a_running_clone_and_a_late_webhook_does_not_revive_it(
    engine: Engine, tmp_path: Any, recorded: bool
) -> None:
    engine.set_poll_seconds(60)  # only the cancel can end the wait within the test
    gpu = CancellableGpu()
    client = _client(engine, ["my-partner"], gpu)
    with override(gpu_client=gpu):
        speaker, arn = _running_clone(engine, client, tmp_path)
        if not recorded:  # a job started before executions were recorded: cancel lists the running ones
            engine.services.speakers.update_stage(
                "my-partner", "aria-custom", speaker.speaker_id, Stage.CLONE, {"execution_arn": None}
            )
            assert engine.services.speakers.require("my-partner", "aria-custom").execution_arn is None
        response = client.post("/api/voice/models/speakers/aria-custom/cancel")
        execution = engine.result(arn)
    assert response.status_code == 200 and response.json() == {"detail": "Job cancelled"}
    assert execution.status in ("ABORTED", "FAILED") and "GpuFinalize" not in execution.states
    assert gpu.cancelled == ["run-1"]  # RunPod was told to stop the one run the job started
    shown = client.get("/api/voice/models/speakers/aria-custom").json()
    assert (shown["status"], shown["status_reason"]) == ("failed", "cancelled")

    # The run finishes anyway (a sync handler cannot be stopped) and RunPod calls the webhook: too late.
    [webhook] = gpu.webhooks
    output = {"tts_type": "resemblyzer", "embedding_dim": 256, "reference_duration": 12.0}
    late = client.post(
        webhook.removeprefix("http://testserver"), json={"id": "run-1", "status": "COMPLETED", "output": output}
    )
    assert late.status_code == 200 and late.json() == {"outcome": "duplicate"}
    shown = client.get("/api/voice/models/speakers/aria-custom").json()
    assert (shown["status"], shown["status_reason"]) == ("failed", "cancelled")
    assert engine.services.speakers.require("my-partner", "aria-custom").conditioning_key is None
    assert client.post("/api/voice/models/speakers/aria-custom/cancel").status_code == 409
