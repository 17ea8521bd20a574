"""The worker's callbacks: progress (the run's heartbeat, shown on the voice) and upload URLs signed at
upload time, only with the job's own secret and only for the job's own outputs; a worker whose output URL
died with its signing session gets a fresh one and its upload lands."""

import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from gpu_worker.callback import Callback, JobCancelled
from gpu_worker.progress import Progress

from gpu_worker import callback as worker_callback
from gpu_worker import transfer
from tests.api.test_gpu_webhook import SilentGpu
from tests.pipeline.engine import Engine
from tests.pipeline.helpers import job_for, key_of, make_voice, s3_over_http
from voice_onboarding.api.app import create_app
from voice_onboarding.contract.gpu import EmbedInput, WorkerCallback
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.handlers.composition import override
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import runs
from voice_onboarding.services.gpu_jobs.runs import SILENT_WORKER
from voice_onboarding.storage import keys


class CapturingGpu(SilentGpu):
    """Keeps the inputs RunPod was given (the worker's view of its job) and the runs it cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, Any]] = []
        self.cancelled: list[str] = []

    def run(self, job_input: dict[str, Any], policy: Any = None, webhook: str | None = None) -> Any:
        self.inputs.append(job_input)
        return super().run(job_input, policy, webhook)

    def cancel(self, run_id: str) -> Any:
        self.cancelled.append(run_id)
        return super().cancel(run_id)


@pytest.fixture
def submitted(services: Services) -> tuple[Services, Any, dict[str, Any]]:
    """An embed run submitted as the pipeline does (a public API URL, so its worker gets a callback)."""
    services.settings = services.settings.model_copy(update={"public_api_url": "http://testserver"})
    voice = make_voice(services)
    job = job_for(voice)
    gpu = CapturingGpu()
    runs.submit(services, gpu, job, "embed", heartbeat_seconds=30)
    [job_input] = gpu.inputs
    return services, job, job_input


def _post(app: TestClient, url: str, token: str, body: dict[str, Any]) -> httpx.Response:
    return app.post(httpx.URL(url).path, json=body, headers={"Authorization": f"Bearer {token}"})


def test_the_worker_input_carries_its_callback(submitted: tuple[Services, Any, dict[str, Any]]) -> None:
    services, job, job_input = submitted
    inp = EmbedInput.model_validate(job_input)  # the worker's own validation
    assert inp.callback is not None and inp.callback.heartbeat_seconds == 30
    assert str(inp.callback.url) == f"http://testserver/api/gpu/jobs/{job.job_id}/embed"
    record = runs.run_records(services).get(job.job_id, "embed") or {}
    assert inp.callback.token not in str(record)  # only the secret's hash is stored
    assert sorted(record["outputs"]) == sorted(
        ["embedding_zip"] + [f"test_samples/{name}" for name in job_input["outputs"]["test_samples"]]
    )


def test_progress_shows_on_the_voice_with_the_jobs_secret_only(submitted: tuple[Services, Any, dict]) -> None:
    services, job, job_input = submitted
    callback = job_input["callback"]
    app = TestClient(create_app(services), raise_server_exceptions=False)
    for url, token in (
        (callback["url"], "x" * 43),  # a wrong secret
        (callback["url"].replace(job.job_id, "another-job"), callback["token"]),  # another job's run
        (callback["url"].replace("/embed", "/clone"), callback["token"]),  # another stage
    ):
        refused = _post(app, f"{url}/progress", token, {"step": "embedding sample 1/3"})
        assert refused.status_code == 403 and set(refused.json()) == {"detail"}
    no_header = app.post(httpx.URL(callback["url"]).path + "/progress", json={"step": "x"})
    assert no_header.status_code == 403 and set(no_header.json()) == {"detail"}
    assert services.voices.require(job.partner, job.name).progress["step"] == "IN_QUEUE"

    accepted = _post(app, f"{callback['url']}/progress", callback["token"], {"step": "embedding sample 2/3"})
    assert accepted.status_code == 200, accepted.text
    shown = TestClient(create_app(services), headers={"X-Api-Key": services.api_keys.create("t", ["my-partner"])[0]})
    progress = shown.get(f"/api/voices/my-partner/{job.name}").json()["progress"]
    assert progress["detail"] == "embedding sample 2/3" and progress["run_id"] == "run-1"
    assert (runs.run_records(services).get(job.job_id, "embed") or {})["last_beat"] > 0


def test_upload_urls_are_signed_only_for_the_jobs_outputs(submitted: tuple[Services, Any, dict]) -> None:
    services, job, job_input = submitted
    callback = job_input["callback"]
    app = TestClient(create_app(services), raise_server_exceptions=False)
    url = f"{callback['url']}/upload-url"

    fresh = _post(app, url, callback["token"], {"output": "embedding_zip"})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["expires_in"] == 15 * 60
    zip_key = keys.embedding_zip_key(job.partner, job.voice_id, "resemblyzer")
    assert key_of(fresh.json()["url"], services.blobs.bucket) == zip_key

    for token, output in (
        ("x" * 43, "embedding_zip"),  # a wrong secret
        (callback["token"], "adapter"),  # not an output of an embed job
        (callback["token"], f"../../{job.voice_id}/original.opus"),  # any other key
    ):
        refused = _post(app, url, token, {"output": output})
        assert refused.status_code == 403 and set(refused.json()) == {"detail"}, refused.text

    # Past the run's deadline (and the upload margin its input URLs had), the worker is told to stop.
    record = runs.run_records(services).get(job.job_id, "embed") or {}
    now = services.clock
    services.clock = lambda: float(record["deadline"]) + 5 * 60 + 1
    late = _post(app, url, callback["token"], {"output": "embedding_zip"})
    assert late.status_code == 409 and late.json() == {"detail": "The GPU job's deadline has passed"}
    services.clock = now

    # Once the run is over (cancelled, timed out, reported), nothing more is signed or recorded.
    runs.run_records(services).update(job.job_id, "embed", {"state": "finished"})
    over = _post(app, url, callback["token"], {"output": "embedding_zip"})
    assert over.status_code == 409 and set(over.json()) == {"detail"}
    late_step = _post(app, f"{callback['url']}/progress", callback["token"], {"step": "uploading"})
    assert late_step.status_code == 409


def test_an_expired_output_url_is_signed_again_and_the_upload_lands(
    submitted: tuple[Services, Any, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL in the input died with the session that signed it (S3 answers 403). The API was down when
    the worker first asked, so it tried that URL; on the 403 it asks again and uploads with the new one."""
    services, job, job_input = submitted
    app = TestClient(create_app(services), raise_server_exceptions=False)
    asked: list[str] = []

    def send(method: str, url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        asked.append(body.get("output", ""))
        if len(asked) == 1:
            raise httpx.ConnectError("API unreachable")
        response = app.request(method, httpx.URL(url).path, json=body, headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.json()

    monkeypatch.setattr(worker_callback, "send", send)
    original = job_input["outputs"]["embedding_zip"]
    spec = WorkerCallback.model_validate(job_input["callback"])
    with s3_over_http(services.blobs, expired={original}) as s3, transfer.job_callback(Callback(spec)):
        assert transfer.upload(original, b"the embedding zip", "application/zip", output="embedding_zip")
    assert asked == ["embedding_zip", "embedding_zip"]
    assert s3 == [("PUT", 403), ("PUT", 200)]
    zip_key = keys.embedding_zip_key(job.partner, job.voice_id, "resemblyzer")
    assert services.blobs.get_bytes(zip_key) == b"the embedding zip"


def _wait_for_token(services: Services, job_id: str) -> None:
    for _ in range(400):
        if (runs.run_records(services).get(job_id, "embed") or {}).get("task_token"):
            return
        time.sleep(0.05)
    raise AssertionError("the execution never waited on the run")


def test_heartbeats_keep_one_wait_alive_until_the_webhook(engine: Engine) -> None:
    """A run longer than two heartbeat periods whose worker keeps beating: one wait, no fallback poll."""
    engine.set_poll_seconds(6)  # beats 0.2 s apart: even a loaded CI machine never leaves a 6 s gap
    gpu = CapturingGpu()
    voice = make_voice(engine.services)
    job = job_for(voice)
    app = TestClient(create_app(engine.services), raise_server_exceptions=False)
    with override(gpu_client=gpu):
        arn = engine.start(job)
        _wait_for_token(engine.services, job.job_id)
        callback = gpu.inputs[0]["callback"]
        started = time.monotonic()
        while time.monotonic() - started < 13:  # past two periods
            beat = _post(app, f"{callback['url']}/progress", callback["token"], {"step": "scoring"})
            assert beat.status_code == 200
            time.sleep(0.2)
        # The worker wrote nothing; RunPod reports a failed run through the webhook.
        [webhook] = gpu.webhooks
        ended = app.post(httpx.URL(webhook).raw_path.decode(), json={"id": "run-1", "status": "FAILED", "error": "OOM"})
        execution = engine.result(arn)
    assert ended.json() == {"outcome": "resumed"}
    assert execution.states.count("GpuAwait") == 1 and "GpuAwaitAgain" not in execution.states
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "OOM")


def test_a_run_whose_worker_stops_heartbeating_fails_with_a_reason(engine: Engine) -> None:
    """RunPod still says IN_PROGRESS (its worker died without RunPod noticing yet); no webhook comes. One
    silent period later the run is cancelled at RunPod and the voice says why, long before its deadline."""
    engine.set_poll_seconds(1)
    gpu = CapturingGpu()
    voice = make_voice(engine.services)
    job = job_for(voice)
    app = TestClient(create_app(engine.services), raise_server_exceptions=False)
    with override(gpu_client=gpu):
        arn = engine.start(job)
        _wait_for_token(engine.services, job.job_id)
        callback = gpu.inputs[0]["callback"]
        assert _post(app, f"{callback['url']}/progress", callback["token"], {"step": "loading"}).status_code == 200
        execution = engine.result(arn)  # ... and the worker is never heard of again
    assert execution.status == "FAILED" and "GpuAwaitAgain" in execution.states
    assert "GpuFinalize" not in execution.states
    assert gpu.cancelled == ["run-1"]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.FAILED
    assert stored.embedding_error == SILENT_WORKER.format(seconds=1)


def test_a_worker_told_its_run_is_over_stops_and_writes_nothing(
    submitted: tuple[Services, Any, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancelled run keeps its worker until the handler returns (RunPod cannot stop a sync handler):
    the API answers its next callback 409, so it uploads nothing and stops at its next step."""
    services, job, job_input = submitted
    app = TestClient(create_app(services), raise_server_exceptions=False)

    def send(method: str, url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = app.request(method, httpx.URL(url).path, json=body, headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.json()

    monkeypatch.setattr(worker_callback, "send", send)
    runs.run_records(services).update(job.job_id, "embed", {"state": "finished"})  # what a cancel does
    callback = Callback(WorkerCallback.model_validate(job_input["callback"]))
    progress = Progress({"id": "run-1"}, callback)
    with s3_over_http(services.blobs) as s3, transfer.job_callback(callback):
        with pytest.raises(JobCancelled):
            transfer.upload(job_input["outputs"]["embedding_zip"], b"zip", "application/zip", output="embedding_zip")
        with pytest.raises(JobCancelled):
            progress("scoring")
    assert s3 == []  # nothing reached S3
    assert not services.blobs.exists(keys.embedding_zip_key(job.partner, job.voice_id, "resemblyzer"))
