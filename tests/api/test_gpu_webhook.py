"""RunPod's webhook route: only the run's own secret opens it; it resumes the waiting execution once."""

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.pipeline.engine import Engine
from tests.pipeline.helpers import FakeWorker, job_for, make_voice
from voice_onboarding.adapters.runpod import RunStatus
from voice_onboarding.api.app import create_app
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.handlers.composition import override
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import runs
from voice_onboarding.storage.gpu_runs_repo import hash_secret


class SilentGpu:
    """A RunPod that accepts runs and never ends them by itself (no webhook, always IN_PROGRESS)."""

    def __init__(self) -> None:
        self.webhooks: list[str | None] = []

    def run(self, job_input: dict[str, Any], policy: Any = None, webhook: str | None = None) -> RunStatus:
        self.webhooks.append(webhook)
        return RunStatus(id=f"run-{len(self.webhooks)}", status="IN_QUEUE")

    def status(self, run_id: str) -> RunStatus:
        return RunStatus(id=run_id, status="IN_PROGRESS")

    def cancel(self, run_id: str) -> RunStatus:
        return RunStatus(id=run_id, status="CANCELLED")


def _seed_run(services: Services, job_id: str = "job-1", secret: str = "s" * 43) -> None:
    runs.run_records(services).claim(
        job_id, "embed", services.clock(), {"secret_hash": hash_secret(secret), "deadline": 0, "run_id": "run-1"}
    )


def test_wrong_or_missing_secret_is_404_and_changes_nothing(services: Services) -> None:
    _seed_run(services)
    client = TestClient(create_app(services), raise_server_exceptions=False)
    body = {"id": "run-1", "status": "COMPLETED", "output": {}}
    for url in (
        "/api/gpu/webhook/job-1/embed?token=" + "x" * 43,
        "/api/gpu/webhook/job-2/embed?token=" + "s" * 43,
        "/api/gpu/webhook/job-1/clone?token=" + "s" * 43,
    ):
        response = client.post(url, json=body)
        assert response.status_code == 404 and response.json() == {"detail": "Not found"}
    assert client.post("/api/gpu/webhook/job-1/embed", json=body).status_code == 422  # no token at all
    assert "outcome" not in (runs.run_records(services).get("job-1", "embed") or {})


def test_webhook_route_is_not_in_the_public_api_document(services: Services) -> None:
    paths = create_app(services).openapi()["paths"]
    assert not [p for p in paths if "webhook" in p]


def test_webhook_resumes_the_waiting_execution(engine: Engine) -> None:
    gpu = SilentGpu()
    worker = FakeWorker(engine.services)
    engine.set_poll_seconds(60)  # no fallback poll within the test: only the webhook can end the wait
    voice = make_voice(engine.services)
    job = job_for(voice)
    with override(gpu_client=gpu):
        arn = engine.start(job)
        for _ in range(400):  # until the execution waits on its task token
            if (runs.run_records(engine.services).get(job.job_id, "embed") or {}).get("task_token"):
                break
            time.sleep(0.05)
        [webhook] = gpu.webhooks
        assert webhook and webhook.startswith(f"http://testserver/api/gpu/webhook/{job.job_id}/embed?token=")
        # The worker writes its outputs, then RunPod calls the webhook with /status's body.
        output = worker({"id": "run-1", "input": _submitted_input(engine, job)})
        client = TestClient(create_app(engine.services), raise_server_exceptions=False)
        path = webhook.removeprefix("http://testserver")
        body = {"id": "run-1", "status": "COMPLETED", "output": output, "executionTime": 1200}
        first = client.post(path, json=body)
        execution = engine.result(arn)
        again = client.post(path, json=body)  # RunPod retries a webhook it thinks failed

    assert first.json() == {"outcome": "resumed"} and again.json() == {"outcome": "duplicate"}
    assert execution.status == "SUCCEEDED" and execution.states.count("GpuAwait") == 1
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.COMPLETED and stored.embedding_info["last_update_status"] == "success"


def _submitted_input(engine: Engine, job: Any) -> dict[str, Any]:
    from voice_onboarding.services import gpu_jobs

    return gpu_jobs.get_kind("embed").build_input(engine.services, job)


@pytest.mark.parametrize("status", ["IN_PROGRESS", "IN_QUEUE"])
def test_a_non_terminal_body_is_ignored(services: Services, status: str) -> None:
    _seed_run(services)
    client = TestClient(create_app(services), raise_server_exceptions=False)
    response = client.post("/api/gpu/webhook/job-1/embed?token=" + "s" * 43, json={"id": "run-1", "status": status})
    assert response.json() == {"outcome": "ignored"}
