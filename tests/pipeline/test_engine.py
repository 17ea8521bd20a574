"""The deployed state machine on moto's Step Functions engine, started through the API's dispatcher, with
the real handlers in-process (infra.local); the GPU worker is a fake in-process one. Each ASL behaviour
the pipeline relies on (retries with backoff, Catch -> failure handler, task timeouts, the GPU wait loop)
is shown here on the real definition."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from infra.local.gpu import InProcessGpuClient

from tests.pipeline.engine import Engine, Gate, shrink_timeout
from tests.pipeline.helpers import FakeWorker, job_for, make_voice
from voice_onboarding.adapters.runpod import GpuServiceError, RunStatus
from voice_onboarding.domain.jobs import JobKind
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.handlers.composition import override
from voice_onboarding.services import sweeper
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys


@pytest.fixture
def worker(pipeline: Services) -> Iterator[FakeWorker]:
    fake = FakeWorker(pipeline)
    with override(gpu_client=InProcessGpuClient(fake)):
        yield fake


class SplitError(Exception):
    pass


def fake_split(services: Services, fail: str | None = None) -> Any:
    """Stands in for the split Lambda (its own tests cover it) per the contract."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        job = event["job"]
        if fail:
            raise SplitError(fail)
        voice = services.voices.require(job["partner"], job["name"])
        services.voices.finish_job(job["partner"], job["name"], "splitting", JobStatus.COMPLETED)
        return {"sample_count": len(voice.samples)}

    return handler


class ScriptedGpu:
    """A GPU endpoint answering status polls from a script (a str status, or an exception to raise)."""

    def __init__(self, script: list[Any], output: dict[str, Any] | None = None) -> None:
        self.script = list(script)
        self.output = output
        self.runs = 0
        self.cancelled: list[str] = []

    def run(self, job_input: dict[str, Any], **_: Any) -> RunStatus:
        self.runs += 1
        return RunStatus(id=f"run-{self.runs}", status="IN_QUEUE")

    def status(self, run_id: str) -> RunStatus:
        step = self.script.pop(0) if self.script else "IN_PROGRESS"
        if isinstance(step, Exception):
            raise step
        return RunStatus(id=run_id, status=step, output=self.output if step == "COMPLETED" else "step 1/2")

    def cancel(self, run_id: str) -> RunStatus:
        self.cancelled.append(run_id)
        return RunStatus(id=run_id, status="CANCELLED")


def test_embed_job_runs_the_gpu_loop_to_completion(engine: Engine, worker: FakeWorker) -> None:
    voice = make_voice(engine.services)
    execution = engine.run(job_for(voice))

    assert execution.status == "SUCCEEDED", execution
    assert execution.states[:4] == ["Init", "RouteByKind", "StageFromKind", "GpuSubmit"]
    assert execution.states[-2:] == ["GpuFinalize", "Done"]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.COMPLETED
    assert stored.progress is None and stored.embedding_error is None
    assert stored.embedding_info["last_update_status"] == "success"
    assert [s["sample_index"] for s in stored.embedding_info["sample_scores"]] == [3, 1, 2]
    assert stored.preferred_sample_index == 3
    assert stored.embedding_zip_key == keys.embedding_zip_key(voice.partner, voice.voice_id, "resemblyzer")
    assert len(worker.jobs) == 1 and len(worker.jobs[0]["input"]["samples"]) == 3


def test_a_retried_start_never_runs_a_job_twice(engine: Engine, worker: FakeWorker) -> None:
    voice = make_voice(engine.services)
    job = job_for(voice)
    arn = engine.start(job)
    assert arn.endswith(f":embed-{job.job_id}")
    assert engine.start(job) == arn  # same name and input while running: the same execution
    assert engine.result(arn).status == "SUCCEEDED"
    with pytest.raises(engine.sfn.exceptions.ExecutionAlreadyExists):
        engine.start(job)  # once closed, the name stays taken
    assert len(worker.jobs) == 1


def test_gpu_run_ends_through_the_webhook(engine: Engine, worker: FakeWorker) -> None:
    voice = make_voice(engine.services)
    job = job_for(voice)
    execution = engine.run(job)

    assert execution.status == "SUCCEEDED", execution
    [url] = engine.webhooks
    assert url.startswith(f"http://testserver/api/gpu/webhook/{job.job_id}/embed?token=")
    resumed = [e for e in execution.history if e["type"] == "TaskSucceeded"]
    assert json.loads(resumed[-2]["taskSucceededEventDetails"]["output"])["status"] == "COMPLETED"  # GpuAwait's
    assert execution.states.count("GpuAwait") == 1  # no fallback period had to end


def test_lost_webhook_falls_back_to_slow_polls_until_the_run_ends(engine: Engine) -> None:
    gpu = ScriptedGpu(["IN_QUEUE", "IN_PROGRESS", "FAILED"])  # no webhook: every outcome comes from a poll
    voice = make_voice(engine.services)
    with override(gpu_client=gpu):
        execution = engine.run(job_for(voice))

    assert execution.status == "FAILED" and execution.error == "PipelineFailed"
    loop = execution.states[execution.states.index("GpuSubmit") + 1 :]
    assert loop == ["GpuAwait", "GpuAwaitAgain"] * 2 + [
        "GpuAwait",
        "GpuCheck",
        "GpuFailed",
        "MarkFailed",
        "PipelineFailed",
    ]
    timeouts = [e for e in execution.history if e["type"] == "TaskTimedOut"]
    assert len(timeouts) == 2  # each fallback period ended in States.Timeout, caught into another poll
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "GPU job failed")


def test_worker_error_marks_embedding_failed_with_its_reason(engine: Engine, worker: FakeWorker) -> None:
    worker.fail_with = "sample 2: audio is silent"
    voice = make_voice(engine.services)
    execution = engine.run(job_for(voice))

    assert execution.status == "FAILED"
    assert execution.states[-3:] == ["GpuFailed", "MarkFailed", "PipelineFailed"]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.FAILED
    assert stored.embedding_error == "sample 2: audio is silent"
    assert stored.embedding_info["last_update_status"] == "failed"
    assert stored.progress is None


def test_gpu_run_past_its_deadline_is_cancelled_and_failed(engine: Engine) -> None:
    clock = iter(range(0, 10**9, 3600))  # every read of the clock is an hour later
    engine.services.clock = lambda: float(next(clock))
    gpu = ScriptedGpu([])  # never finishes
    voice = make_voice(engine.services)
    with override(gpu_client=gpu):
        execution = engine.run(job_for(voice))

    assert execution.status == "FAILED" and gpu.cancelled == ["run-1"]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "GPU job timed out")


def test_transient_gpu_errors_are_retried_with_backoff(engine: Engine) -> None:
    output = FakeWorker(engine.services)  # builds a valid worker output from the submitted input
    voice = make_voice(engine.services)
    gpu = ScriptedGpu([GpuServiceError("HTTP 503"), GpuServiceError("HTTP 502"), "COMPLETED"])
    original_run = gpu.run

    def run_and_produce(job_input: dict[str, Any], **kwargs: Any) -> RunStatus:
        gpu.output = output({"id": "run-1", "input": job_input})
        return original_run(job_input, **kwargs)

    gpu.run = run_and_produce  # type: ignore[method-assign]
    with override(gpu_client=gpu):
        execution = engine.run(job_for(voice))

    assert execution.status == "SUCCEEDED", execution
    failed = [e["taskFailedEventDetails"]["error"] for e in execution.history if e["type"] == "TaskFailed"]
    assert failed == ["GpuServiceError", "GpuServiceError"]
    # GpuPoll's retrier: 15 s, x2, FULL jitter: each wait is drawn from [0, 15 * 2^n].
    assert len(engine.retry_sleeps) == 2
    assert 0 <= engine.retry_sleeps[0] <= 15 and 0 <= engine.retry_sleeps[1] <= 30
    assert engine.services.voices.require(voice.partner, voice.name).embedding_status == JobStatus.COMPLETED


def test_split_and_embed_splits_then_embeds(engine: Engine, worker: FakeWorker) -> None:
    engine.override("SplitFunction", fake_split(engine.services))
    voice = make_voice(engine.services, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    execution = engine.run(job_for(voice, JobKind.SPLIT_AND_EMBED, tts_type="resemblyzer"))

    assert execution.status == "SUCCEEDED", execution
    assert execution.states[2:8] == [
        "Split",
        "AfterSplit",
        "StartEmbedding",
        "EmbeddingStarted",
        "StageEmbed",
        "GpuSubmit",
    ]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert (stored.splitting_status, stored.embedding_status) == (JobStatus.COMPLETED, JobStatus.COMPLETED)


def test_split_only_job_stops_after_the_split(engine: Engine, worker: FakeWorker) -> None:
    engine.override("SplitFunction", fake_split(engine.services))
    voice = make_voice(engine.services, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    execution = engine.run(job_for(voice, JobKind.SPLIT, max_samples=5, sample_duration=10))

    assert execution.status == "SUCCEEDED" and execution.states[-2:] == ["AfterSplit", "Done"]
    assert worker.jobs == []
    assert engine.services.voices.require(voice.partner, voice.name).embedding_status == JobStatus.IDLE


def test_handler_error_is_caught_once_into_the_failure_handler(engine: Engine, worker: FakeWorker) -> None:
    calls: list[int] = []
    failing = fake_split(engine.services, fail="Recording contains no speech")

    def counted(event: dict[str, Any], context: Any) -> Any:
        calls.append(1)
        return failing(event, context)

    engine.override("SplitFunction", counted)
    voice = make_voice(engine.services, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    execution = engine.run(job_for(voice, JobKind.SPLIT_AND_EMBED))

    assert execution.status == "FAILED" and calls == [1]  # SplitError is never retried
    assert execution.states[-3:] == ["Split", "MarkFailed", "PipelineFailed"]
    # What the Catch handed the failure handler: the Lambda error, stack trace included (logs only).
    [scheduled] = [e for e in execution.history if e["type"] == "TaskScheduled"][-1:]
    error = json.loads(json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Payload"]["error"]["Cause"])
    assert error["errorType"] == "SplitError" and error["stackTrace"]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert stored.splitting_status == JobStatus.FAILED
    assert stored.splitting_error == "Recording contains no speech"
    assert stored.embedding_status == JobStatus.IDLE and worker.jobs == []


def test_a_hanging_task_times_out_into_the_failure_handler(
    engine: Engine, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    shrink_timeout(monkeypatch, declared=930, seconds=0.5)  # the Split task's TimeoutSeconds
    gate = Gate()

    def hangs(event: dict[str, Any], context: Any) -> dict[str, Any]:
        gate.wait()
        return {"sample_count": 0}

    engine.override("SplitFunction", hangs)
    voice = make_voice(engine.services, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    try:
        execution = engine.run(job_for(voice, JobKind.SPLIT_AND_EMBED))
    finally:
        gate.release()

    assert execution.status == "FAILED" and execution.states[-3:] == ["Split", "MarkFailed", "PipelineFailed"]
    assert [e["type"] for e in execution.history if e["type"].startswith("TaskTimed")] == ["TaskTimedOut"]
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert stored.splitting_status == JobStatus.FAILED
    assert stored.splitting_error.startswith("Timed out")


def test_voice_busy_after_split_skips_embedding(engine: Engine, worker: FakeWorker) -> None:
    services = engine.services

    def split_then_user_embeds(event: dict[str, Any], context: Any) -> dict[str, Any]:
        fake_split(services)(event, context)
        services.voices.start_job(event["job"]["partner"], event["job"]["name"], "embedding")  # another job
        return {"sample_count": 3}

    engine.override("SplitFunction", split_then_user_embeds)
    voice = make_voice(services, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    execution = engine.run(job_for(voice, JobKind.SPLIT_AND_EMBED))

    assert execution.status == "SUCCEEDED" and execution.states[-2:] == ["EmbeddingStarted", "Done"]
    assert worker.jobs == []


def _flaky_failure_handler(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    from voice_onboarding.handlers import pipeline_status

    calls: list[int] = []
    real_fail = pipeline_status.job_status.fail_job

    def flaky_fail(*args: Any) -> Any:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionError("DynamoDB unreachable")
        return real_fail(*args)

    monkeypatch.setattr(pipeline_status.job_status, "fail_job", flaky_fail)
    return calls


def test_failure_handler_is_retried_with_exponential_backoff(
    engine: Engine, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _flaky_failure_handler(monkeypatch, failures=3)
    worker.fail_with = "engine unavailable"
    voice = make_voice(engine.services)
    execution = engine.run(job_for(voice))

    assert execution.status == "FAILED" and len(calls) == 4
    assert engine.retry_sleeps == [5, 10, 20]  # MarkFailed's States.ALL retrier: 5 s, x2, no jitter
    stored = engine.services.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "engine unavailable")


def test_failure_handler_out_of_retries_leaves_the_job_to_the_sweeper(
    engine: Engine, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _flaky_failure_handler(monkeypatch, failures=10)
    worker.fail_with = "engine unavailable"
    voice = make_voice(engine.services)
    execution = engine.run(job_for(voice))

    assert execution.status == "FAILED" and len(calls) == 4
    assert execution.states[-2:] == ["MarkFailed", "PipelineFailed"]
    services = engine.services
    assert services.voices.require(voice.partner, voice.name).embedding_status == JobStatus.IN_PROGRESS
    now = services.clock()
    services.clock = lambda: now + 10 * 24 * 3600
    assert sweeper.sweep(services)
    stored = services.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.FAILED and stored.embedding_error.startswith("Timed out")
