"""The local runner walks the real ASL with the real handlers; the GPU worker is a fake in-process one."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline.helpers import FakeWorker, job_for, make_voice
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.pipeline import local_runner
from voice_onboarding.pipeline.context import using_gpu_client
from voice_onboarding.pipeline.jobs import JobKind
from voice_onboarding.pipeline.local_runner import LocalDispatcher, execute_job
from voice_onboarding.pipeline.runpod_client import InProcessGpuClient
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys


@pytest.fixture
def worker(pipeline: Services) -> Iterator[FakeWorker]:
    fake = FakeWorker(pipeline)
    with using_gpu_client(InProcessGpuClient(fake)):
        yield fake


class SplitError(Exception):
    pass


def fake_split_handler(services: Services, fail: str | None = None) -> Any:
    """Stands in for voice_onboarding.handlers.split.handler (another engineer's) per the contract."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        job = event["job"]
        if fail:
            raise SplitError(fail)
        voice = services.voices.require(job["partner"], job["name"])
        services.voices.finish_job(job["partner"], job["name"], "splitting", JobStatus.COMPLETED)
        return {"sample_count": len(voice.samples)}

    return handler


@pytest.fixture
def split_handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(handler: Any) -> None:
        real = local_runner.resolve_handler
        monkeypatch.setattr(
            local_runner,
            "resolve_handler",
            lambda dotted: handler if dotted.endswith("handlers.split.handler") else real(dotted),
        )

    return install


def test_embed_job_runs_the_gpu_loop_to_completion(pipeline: Services, worker: FakeWorker) -> None:
    voice = make_voice(pipeline)
    result = execute_job(job_for(voice), pipeline.settings)

    assert result.status == "SUCCEEDED", result
    assert result.history[:4] == ["Init", "RouteByKind", "StageFromKind", "GpuSubmit"]
    assert result.history[-2:] == ["GpuFinalize", "Done"]
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.COMPLETED
    assert stored.progress is None and stored.embedding_error is None
    assert stored.embedding_info["last_update_status"] == "success"
    assert [s["sample_index"] for s in stored.embedding_info["sample_scores"]] == [3, 1, 2]
    assert stored.preferred_sample_index == 3
    assert stored.embedding_zip_key == keys.embedding_zip_key(voice.partner, voice.voice_id, "resemblyzer")
    assert len(worker.jobs) == 1 and len(worker.jobs[0]["input"]["samples"]) == 3


def test_worker_error_marks_embedding_failed_with_its_reason(pipeline: Services, worker: FakeWorker) -> None:
    worker.fail_with = "sample 2: audio is silent"
    voice = make_voice(pipeline)
    result = execute_job(job_for(voice), pipeline.settings)

    assert result.status == "FAILED"
    assert result.history[-3:] == ["GpuFailed", "MarkFailed", "PipelineFailed"]
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.FAILED
    assert stored.embedding_error == "sample 2: audio is silent"
    assert stored.embedding_info["last_update_status"] == "failed"
    assert stored.progress is None


def test_gpu_run_past_its_deadline_is_cancelled_and_failed(pipeline: Services, worker: FakeWorker) -> None:
    clock = iter(range(0, 10**9, 3600))  # every read of the clock is an hour later
    pipeline.clock = lambda: float(next(clock))
    blocker = InProcessGpuClient(lambda job: __import__("time").sleep(1) or {"error": "late"})
    voice = make_voice(pipeline)
    with using_gpu_client(blocker):
        result = execute_job(job_for(voice), pipeline.settings)

    assert result.status == "FAILED"
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "GPU job timed out")


def test_split_and_embed_splits_then_embeds(pipeline: Services, worker: FakeWorker, split_handler: Any) -> None:
    split_handler(fake_split_handler(pipeline))
    voice = make_voice(pipeline, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    result = execute_job(job_for(voice, JobKind.SPLIT_AND_EMBED, tts_type="resemblyzer"), pipeline.settings)

    assert result.status == "SUCCEEDED", result
    assert ["Split", "AfterSplit", "StartEmbedding", "EmbeddingStarted", "StageEmbed", "GpuSubmit"] == (
        result.history[2:8]
    )
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert (stored.splitting_status, stored.embedding_status) == (JobStatus.COMPLETED, JobStatus.COMPLETED)


def test_split_only_job_stops_after_the_split(pipeline: Services, worker: FakeWorker, split_handler: Any) -> None:
    split_handler(fake_split_handler(pipeline))
    voice = make_voice(pipeline, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    result = execute_job(job_for(voice, JobKind.SPLIT, max_samples=5, sample_duration=10), pipeline.settings)

    assert result.status == "SUCCEEDED" and result.history[-2:] == ["AfterSplit", "Done"]
    assert worker.jobs == []
    assert pipeline.voices.require(voice.partner, voice.name).embedding_status == JobStatus.IDLE


def test_split_error_fails_splitting_once_with_a_clean_reason(
    pipeline: Services, worker: FakeWorker, split_handler: Any
) -> None:
    calls: list[int] = []
    failing = fake_split_handler(pipeline, fail="Recording contains no speech")

    def counted(event: dict[str, Any], context: Any) -> Any:
        calls.append(1)
        return failing(event, context)

    split_handler(counted)
    voice = make_voice(pipeline, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    result = execute_job(job_for(voice, JobKind.SPLIT_AND_EMBED), pipeline.settings)

    assert result.status == "FAILED" and calls == [1]  # SplitError is never retried
    assert result.output["error"]["Error"] == "SplitError"
    assert "stackTrace" in json.loads(result.output["error"]["Cause"])
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.splitting_status == JobStatus.FAILED
    assert stored.splitting_error == "Recording contains no speech"
    assert stored.embedding_status == JobStatus.IDLE and worker.jobs == []


def test_voice_busy_after_split_skips_embedding(pipeline: Services, worker: FakeWorker, split_handler: Any) -> None:
    def split_then_user_embeds(event: dict[str, Any], context: Any) -> dict[str, Any]:
        fake_split_handler(pipeline)(event, context)
        pipeline.voices.start_job(event["job"]["partner"], event["job"]["name"], "embedding")  # another job
        return {"sample_count": 3}

    split_handler(split_then_user_embeds)
    voice = make_voice(pipeline, embedding=JobStatus.IDLE, splitting=JobStatus.IN_PROGRESS)
    result = execute_job(job_for(voice, JobKind.SPLIT_AND_EMBED), pipeline.settings)

    assert result.status == "SUCCEEDED" and result.history[-2:] == ["EmbeddingStarted", "Done"]
    assert worker.jobs == []


def test_dispatcher_leaves_failed_when_the_interpreter_crashes(
    pipeline: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(job: Any, settings: Any) -> Any:
        raise RuntimeError("interpreter exploded")

    monkeypatch.setattr(local_runner, "execute_job", crash)
    voice = make_voice(pipeline)
    dispatcher = LocalDispatcher(pipeline.settings)
    job = job_for(voice)
    dispatcher.start(job)
    dispatcher.wait_idle()

    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.FAILED
    assert stored.embedding_error == "RuntimeError: interpreter exploded"
    assert dispatcher.results[job.job_id].status == "FAILED"


def test_dispatcher_leaves_failed_when_the_failure_handler_itself_crashes(
    pipeline: Services, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voice_onboarding.handlers import pipeline_status

    calls: list[int] = []
    real_fail = pipeline_status.status.fail_job

    def flaky_fail(*args: Any) -> Any:
        calls.append(1)
        if len(calls) <= 4:  # every attempt of the state machine's MarkFailed
            raise ConnectionError("DynamoDB unreachable")
        return real_fail(*args)

    monkeypatch.setattr(pipeline_status.status, "fail_job", flaky_fail)
    worker.fail_with = "engine unavailable"
    voice = make_voice(pipeline)
    dispatcher = LocalDispatcher(pipeline.settings)
    dispatcher.start(job_for(voice))
    dispatcher.wait_idle()

    stored = pipeline.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "engine unavailable")
