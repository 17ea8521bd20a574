"""One RunPod run per (job, stage) under every retry path: the HTTP client's own retries, a retried submit
step (lost response, Lambda timeout), and Step Functions' retry on the real definition. A fake RunPod
counts the runs it started; RunPod has no idempotency key, so nothing else would stop a second run."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from botocore.exceptions import ClientError
from infra.local.lambdas import LocalLambdaContext

from tests.pipeline.engine import Engine
from tests.pipeline.helpers import job_for, make_voice
from voice_onboarding.adapters.runpod import RunPodHttpClient
from voice_onboarding.domain.gpu_runs import QUEUE_TTL_SECONDS, RunLifetimes
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.handlers import gpu_dispatch
from voice_onboarding.handlers.composition import override
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import CloneJob, EmbedJob, TrainLoraJob, runs

ENDPOINT = "https://api.runpod.ai/v2/ep-test"


class FakeRunPod:
    """POST /run answers from a script; `started` counts the requests RunPod would have queued (every
    request that reached it, whatever the client saw)."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.script: list[str] = []
        self.started: list[dict[str, Any]] = []
        self.attempts = 0
        self.status_reply: dict[str, Any] = {"status": "IN_PROGRESS"}
        router.post(f"{ENDPOINT}/run").mock(side_effect=self._run)
        router.get(url__regex=rf"{ENDPOINT}/status/.*").mock(side_effect=self._status)

    def _run(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        step = self.script.pop(0) if self.script else "ok"
        if step == "connect-error":  # nothing reached RunPod
            raise httpx.ConnectError("connection refused", request=request)
        if step == "429":  # refused before queueing
            return httpx.Response(429)
        self.started.append(json.loads(request.content))
        run_id = f"run-{len(self.started)}"
        if step == "read-timeout":  # queued, but the answer never arrived
            raise httpx.ReadTimeout("timed out", request=request)
        if step == "503":  # queued behind a flaky gateway
            return httpx.Response(503)
        return httpx.Response(200, json={"id": run_id, "status": "IN_QUEUE"})

    def _status(self, request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"id": run_id, **self.status_reply})


@pytest.fixture
def runpod(services: Services) -> Iterator[FakeRunPod]:
    services.settings = services.settings.model_copy(
        update={"runpod_endpoint_id": "ep-test", "runpod_api_key": "rp-secret", "default_tts_type": "resemblyzer"}
    )
    client = RunPodHttpClient("ep-test", "rp-secret", sleep=lambda _s: None)
    with respx.mock(assert_all_called=False) as router, override(services=services, gpu_client=client):
        yield FakeRunPod(router)


def _submit(job: Any) -> dict[str, Any]:
    return gpu_dispatch.submit({"job": job.model_dump(mode="json"), "stage": "embed"}, LocalLambdaContext("submit"))


def test_a_retried_submit_step_replays_the_run_id(services: Services, runpod: FakeRunPod) -> None:
    job = job_for(make_voice(services))
    first = _submit(job)
    again = _submit(job)  # the same step again: Lambda timeout after /run, a lost response, a retry
    assert again["run_id"] == first["run_id"] == "run-1" and again["deadline"] == first["deadline"]
    assert len(runpod.started) == 1


def test_each_stage_of_a_job_is_its_own_run(services: Services, runpod: FakeRunPod) -> None:
    job = job_for(make_voice(services))
    _submit(job)
    other = job_for(make_voice(services, name="speaker-2"))
    assert _submit(other)["run_id"] == "run-2"
    assert len(runpod.started) == 2


@pytest.mark.parametrize("failure", ["connect-error", "429"])
def test_requests_that_never_reached_runpod_are_retried(services: Services, runpod: FakeRunPod, failure: str) -> None:
    runpod.script = [failure, failure]
    gpu = _submit(job_for(make_voice(services)))
    assert gpu["run_id"] == "run-1" and runpod.attempts == 3 and len(runpod.started) == 1


@pytest.mark.parametrize("failure", ["read-timeout", "503"])
def test_an_unconfirmed_run_is_never_submitted_again(services: Services, runpod: FakeRunPod, failure: str) -> None:
    runpod.script = [failure]
    job = job_for(make_voice(services))
    with pytest.raises(runs.GpuSubmitUnconfirmed):
        _submit(job)
    with pytest.raises(runs.GpuSubmitUnconfirmed):
        _submit(job)  # the state machine does not retry it; if anything did, still no second /run
    assert runpod.attempts == 1 and len(runpod.started) == 1


def test_a_submit_that_never_reached_runpod_releases_its_claim(services: Services, runpod: FakeRunPod) -> None:
    runpod.script = ["connect-error"] * 3  # the client's 3 attempts all fail to connect
    job = job_for(make_voice(services))
    with pytest.raises(runs.GpuRunNotStarted):
        _submit(job)
    assert _submit(job)["run_id"] == "run-1"  # the state machine's retry may submit: nothing was started
    assert len(runpod.started) == 1


def test_run_carries_the_policy_of_the_kind_deadline(services: Services, runpod: FakeRunPod) -> None:
    _submit(job_for(make_voice(services)))
    [body] = runpod.started
    assert body["policy"] == {"executionTimeout": (45 * 60 - QUEUE_TTL_SECONDS) * 1000, "ttl": 45 * 60 * 1000}


@pytest.mark.parametrize(
    ("kind", "deadline", "execution", "input_url", "output_url"),
    [
        (EmbedJob, 45 * 60, 35 * 60, 15 * 60, 50 * 60),
        (CloneJob, 20 * 60, 10 * 60, 15 * 60, 25 * 60),
        (TrainLoraJob, 3 * 3600, 3 * 3600 - 10 * 60, 15 * 60, 3 * 3600 + 5 * 60),
    ],
)
def test_url_lifetimes_follow_each_kind_deadline(
    kind: Any, deadline: int, execution: int, input_url: int, output_url: int
) -> None:
    life = RunLifetimes(kind.timeout_seconds())
    assert life.deadline_seconds == deadline
    assert life.execution_timeout_seconds == execution  # a run that starts at the end of its queue budget ...
    assert life.queue_ttl_seconds + life.execution_timeout_seconds == life.ttl_seconds == deadline  # ... ends by D
    assert life.input_url_seconds == input_url >= life.queue_ttl_seconds  # readable whenever a worker starts
    assert life.output_url_seconds == output_url >= life.ttl_seconds  # writable until RunPod drops the job
    assert life.runpod_policy() == {"executionTimeout": execution * 1000, "ttl": deadline * 1000}


def test_presigned_urls_expire_with_the_run(services: Services, runpod: FakeRunPod) -> None:
    now = int(services.clock())
    _submit(job_for(make_voice(services)))
    [body] = runpod.started
    life = RunLifetimes(EmbedJob.timeout_seconds())

    def expires(url: str) -> int:
        return int(httpx.URL(url).params["X-Amz-Expires"])

    assert {expires(s["url"]) for s in body["input"]["samples"]} == {life.input_url_seconds}
    outputs = [*body["input"]["outputs"]["test_samples"].values(), body["input"]["outputs"]["embedding_zip"]]
    assert {expires(url) for url in outputs} == {life.output_url_seconds}
    assert now + life.output_url_seconds > now + life.ttl_seconds


def test_step_functions_retry_of_a_lost_submit_response_starts_one_run(
    engine: Engine, runpod: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real definition retries GpuSubmit on Lambda.ServiceException: the function ran (and started a
    run) but Step Functions never got its answer."""
    real_invoke = engine.lambdas.invoke
    lost: list[str] = []

    def invoke(FunctionName: str, Payload: Any = None, **kwargs: Any) -> dict[str, Any]:
        response = real_invoke(FunctionName=FunctionName, Payload=Payload, **kwargs)
        if FunctionName.endswith(":GpuSubmitFunction") and not lost:
            lost.append(FunctionName)
            error = {"Error": {"Code": "ServiceException", "Message": "response lost"}}
            raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r"}}, "Invoke")
        return response

    monkeypatch.setattr(engine.lambdas, "invoke", invoke)
    runpod.status_reply = {"status": "FAILED", "error": "worker gave up"}
    voice = make_voice(engine.services)
    execution = engine.run(job_for(voice))

    submit_failures = [e["taskFailedEventDetails"]["error"] for e in execution.history if e["type"] == "TaskFailed"]
    assert submit_failures == ["Lambda.ServiceException"] and execution.states.count("GpuSubmit") == 1
    assert len(runpod.started) == 1  # the retried submit replayed run-1
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "worker gave up")
