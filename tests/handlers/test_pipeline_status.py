"""pipeline_status handler: start_embedding after a split, and the failure handler of every Catch."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from infra.local.lambdas import LocalLambdaContext

from tests.pipeline.helpers import job_for, make_voice
from voice_onboarding.domain.jobs import JobKind, OwnerType, PipelineJob, SpeakerJob, VoiceJob
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.handlers.composition import override
from voice_onboarding.handlers.pipeline_status import handler
from voice_onboarding.services.container import Services
from voice_onboarding.services.job_status import MAX_REASON_CHARS, failure_reason

CTX = LocalLambdaContext("PipelineStatusFunction")


@pytest.fixture
def pipeline(services: Services) -> Iterator[Services]:
    with override(services=services):
        yield services


def _lambda_cause(message: str, error_type: str = "SplitError") -> str:
    trace = ['  File "/var/task/voice_onboarding/audio/splitter.py", line 88, in split\n    raise SplitError(msg)\n']
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": "r", "stackTrace": trace})


def _fail(job: PipelineJob, error: dict[str, Any]) -> dict[str, Any]:
    return handler({"action": "fail", "job": job.model_dump(mode="json"), "error": error}, CTX)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {"Error": "SplitError", "Cause": _lambda_cause("Recording contains no speech")},
            "Recording contains no speech",
        ),
        ({"Error": "KeyError", "Cause": _lambda_cause("'samples'", "KeyError")}, "KeyError: 'samples'"),
        ({"Error": "GpuJobFailed", "Cause": "sample 2: silent"}, "sample 2: silent"),
        ({"Error": "States.Timeout", "Cause": None}, "Timed out: a pipeline step timed out"),
        (
            {"Error": "Lambda.Unknown", "Cause": "Traceback (most recent call last):\n  File x\nBoom"},
            "Lambda.Unknown: Boom",
        ),
        ({"Error": "GpuJobFailed", "Cause": None}, "Pipeline failed (GpuJobFailed)"),
        (None, "Pipeline failed"),
    ],
)
def test_failure_reason(error: dict[str, Any] | None, reason: str) -> None:
    assert failure_reason(error) == reason


def test_failure_reason_is_one_bounded_line() -> None:
    reason = failure_reason({"Error": "SplitError", "Cause": _lambda_cause("x" * 1000 + "\nsecond line")})
    assert len(reason) == MAX_REASON_CHARS and "\n" not in reason and "File" not in reason


def test_split_failure_marks_splitting_failed(pipeline: Services) -> None:
    voice = make_voice(pipeline, samples=0, splitting=JobStatus.IN_PROGRESS, embedding=JobStatus.IDLE)
    result = _fail(
        job_for(voice, JobKind.SPLIT_AND_EMBED), {"Error": "SplitError", "Cause": _lambda_cause("Too short")}
    )

    assert result == {"reason": "Too short"}
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert (stored.splitting_status, stored.splitting_error) == (JobStatus.FAILED, "Too short")
    assert stored.embedding_status == JobStatus.IDLE and stored.progress is None and not stored.is_locked


def test_failure_during_embedding_of_split_and_embed_marks_embedding(pipeline: Services) -> None:
    voice = make_voice(
        pipeline, splitting=JobStatus.COMPLETED, embedding_info={"tts_type": "resemblyzer", "sample_scores": [1]}
    )
    _fail(job_for(voice, JobKind.SPLIT_AND_EMBED), {"Error": "GpuJobFailed", "Cause": "GPU job cancelled"})

    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.splitting_status == JobStatus.COMPLETED
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "GPU job cancelled")
    assert stored.embedding_info["last_update_status"] == "failed"
    assert stored.embedding_info["sample_scores"] == [1]  # same engine: earlier scores stay visible


def test_fail_never_overwrites_a_stage_that_is_not_running(pipeline: Services) -> None:
    voice = make_voice(pipeline, embedding=JobStatus.COMPLETED)
    _fail(job_for(voice), {"Error": "GpuJobFailed", "Cause": "late failure"})
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.COMPLETED and stored.embedding_error is None


@pytest.mark.parametrize("kind", [JobKind.EMBED, JobKind.SPLIT, JobKind.SPLIT_AND_EMBED, JobKind.CLONE])
def test_fail_for_a_deleted_owner_does_not_raise(pipeline: Services, kind: JobKind) -> None:
    owner_id = {"voice_id": "vid-gone"} if kind.owner == OwnerType.VOICE else {"speaker_id": "sid-gone"}
    job = PipelineJob.model_validate(
        {"kind": kind, "partner": "my-partner", "name": "gone", **owner_id, "params": {"tts_type": "x"}}
    )
    assert _fail(job, {"Error": "SplitError", "Cause": _lambda_cause("whatever")}) == {"reason": "whatever"}


def test_fail_ignores_a_recreated_namesake(pipeline: Services) -> None:
    voice = make_voice(pipeline, splitting=JobStatus.IN_PROGRESS, embedding=JobStatus.IDLE)
    stale = job_for(voice, JobKind.SPLIT).model_copy(update={"voice_id": "an-older-voice"})
    _fail(stale, {"Error": "SplitError", "Cause": _lambda_cause("old job")})
    assert pipeline.voices.require(voice.partner, voice.name).splitting_status == JobStatus.IN_PROGRESS


def test_fail_for_a_speaker_job_uses_the_kinds_failure_hook(pipeline: Services) -> None:
    now = utc_now_iso()
    speaker = SpeakerRecord(
        owner="my-partner",
        name="aria",
        speaker_id="sid-1",
        language="en",
        created_at=now,
        updated_at=now,
        reference_key="k",
        reference_content_type="audio/wav",
        reference_duration=5.0,
        tts_type="kyutai",
        clone_status=JobStatus.IN_PROGRESS,
    )
    pipeline.speakers.create(speaker)
    job = SpeakerJob(kind=JobKind.CLONE, partner="my-partner", name="aria", speaker_id="sid-1", params={})
    _fail(job, {"Error": "GpuJobFailed", "Cause": "reference clip is silent"})
    stored = pipeline.speakers.require("my-partner", "aria")
    assert (stored.clone_status, stored.clone_error) == (JobStatus.FAILED, "reference clip is silent")


def test_start_embedding_moves_embedding_to_in_progress(pipeline: Services) -> None:
    voice = make_voice(pipeline, splitting=JobStatus.COMPLETED, embedding=JobStatus.IDLE)
    job = job_for(voice, JobKind.SPLIT_AND_EMBED)
    assert handler({"action": "start_embedding", "job": job.model_dump(mode="json")}, CTX) == {"started": True}
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert stored.embedding_status == JobStatus.IN_PROGRESS
    assert stored.progress["job"] == "embedding" and stored.progress["job_id"] == job.job_id


def test_start_embedding_does_not_steal_a_busy_voice(pipeline: Services) -> None:
    voice = make_voice(pipeline, splitting=JobStatus.IN_PROGRESS, embedding=JobStatus.IDLE)
    result = handler({"action": "start_embedding", "job": job_for(voice).model_dump(mode="json")}, CTX)
    assert result["started"] is False
    assert pipeline.voices.require(voice.partner, voice.name).embedding_status == JobStatus.IDLE


def test_start_embedding_without_samples_fails_embedding(pipeline: Services) -> None:
    voice = make_voice(pipeline, samples=0, splitting=JobStatus.COMPLETED, embedding=JobStatus.IDLE)
    result = handler({"action": "start_embedding", "job": job_for(voice).model_dump(mode="json")}, CTX)
    assert result["started"] is False
    stored = pipeline.voices.require(voice.partner, voice.name)
    assert (stored.embedding_status, stored.embedding_error) == (JobStatus.FAILED, "Splitting produced no samples")


def test_start_embedding_for_a_deleted_voice(pipeline: Services) -> None:
    job = VoiceJob(kind=JobKind.SPLIT_AND_EMBED, partner="my-partner", name="gone", voice_id="v")
    assert handler({"action": "start_embedding", "job": job.model_dump(mode="json")}, CTX)["started"] is False


def test_unknown_action_is_an_error(pipeline: Services) -> None:
    voice = make_voice(pipeline)
    with pytest.raises(ValueError, match="unknown pipeline_status action"):
        handler({"action": "explode", "job": job_for(voice).model_dump(mode="json")}, CTX)
