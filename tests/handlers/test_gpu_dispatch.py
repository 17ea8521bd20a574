"""GPU dispatch handlers against a fake RunPod HTTP endpoint (respx): submit, every status, finalize."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from infra.local.lambdas import LocalLambdaContext

from tests.pipeline.helpers import FakeWorker, job_for, key_of, make_voice
from voice_onboarding.adapters.runpod import GpuRequestRejected, GpuServiceError, RunPodHttpClient
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.handlers import gpu_dispatch
from voice_onboarding.handlers.composition import override
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import GpuJobError
from voice_onboarding.services.gpu_jobs.embed import TEST_SENTENCES

ENDPOINT = "https://api.runpod.ai/v2/ep-test"


@pytest.fixture
def runpod(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    services.settings = services.settings.model_copy(
        update={"runpod_endpoint_id": "ep-test", "runpod_api_key": "rp-secret"}
    )
    monkeypatch.setattr(RunPodHttpClient, "__init__", _no_backoff(RunPodHttpClient.__init__))
    with override(services=services), respx.mock(assert_all_called=False) as router:
        yield router


def _no_backoff(init: Any) -> Any:
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.sleep = lambda _s: None

    return wrapped


def _ctx(name: str) -> LocalLambdaContext:
    return LocalLambdaContext(name)


def _submit(services: Services, runpod: respx.MockRouter, **voice: Any) -> tuple[Any, dict[str, Any], Any]:
    record = make_voice(services, **voice)
    job = job_for(record)
    route = runpod.post(f"{ENDPOINT}/run").respond(200, json={"id": "run-1", "status": "IN_QUEUE"})
    gpu = gpu_dispatch.submit({"job": job.model_dump(mode="json"), "stage": "embed"}, _ctx("submit"))
    return job, gpu, route


def _poll(job: Any, gpu: dict[str, Any]) -> dict[str, Any]:
    return gpu_dispatch.poll({"job": job.model_dump(mode="json"), "stage": "embed", "gpu": gpu}, _ctx("poll"))


def test_submit_posts_the_contract_input_with_presigned_urls(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, route = _submit(services, runpod)

    assert gpu["run_id"] == "run-1" and gpu["status"] == "IN_QUEUE"
    assert gpu["deadline"] > services.clock() + 60
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer rp-secret"
    body = json.loads(request.content)["input"]
    assert body["kind"] == "embed" and body["tts_type"] == "resemblyzer"
    assert body["sentences"] == TEST_SENTENCES
    bucket = services.blobs.bucket
    assert [key_of(s["url"], bucket) for s in body["samples"]] == [
        f"my-partner/vid-speaker-1/samples/{i}.opus" for i in (1, 2, 3)
    ]
    assert body["samples"][0]["quality"] == {"snr_db": 29.0}
    assert "X-Amz-Signature=" in body["samples"][0]["url"]
    tests = body["outputs"]["test_samples"]
    assert len(TEST_SENTENCES) == 2
    assert sorted(tests) == sorted(f"test_{s}_{n}.opus" for s in (1, 2, 3) for n in (1, 2))
    assert key_of(tests["test_2_2.opus"], bucket) == "my-partner/vid-speaker-1/test/resemblyzer/test_2_2.opus"
    assert key_of(body["outputs"]["embedding_zip"], bucket) == "my-partner/vid-speaker-1/embeddings/resemblyzer.zip"
    progress = services.voices.require("my-partner", "speaker-1").progress
    assert progress["job"] == "embedding" and progress["step"] == "IN_QUEUE" and progress["run_id"] == "run-1"


def test_poll_progression_records_progress(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod)
    runpod.get(f"{ENDPOINT}/status/run-1").mock(
        side_effect=[
            httpx.Response(200, json={"id": "run-1", "status": "IN_QUEUE"}),
            httpx.Response(200, json={"id": "run-1", "status": "IN_PROGRESS", "output": "embedding sample 2/3"}),
        ]
    )
    first = _poll(job, gpu)
    assert (first["status"], first["output"], first["error"]) == ("IN_QUEUE", None, None)
    second = _poll(job, first)
    assert second["status"] == "IN_PROGRESS"
    progress = services.voices.require("my-partner", "speaker-1").progress
    assert progress == {**progress, "job": "embedding", "step": "IN_PROGRESS", "run_id": "run-1"}
    assert progress["detail"] == "embedding sample 2/3"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"status": "FAILED", "error": "sample 3: audio is silent"}, "sample 3: audio is silent"),
        (
            {
                "status": "FAILED",
                "error": json.dumps(
                    {
                        "error_type": "RuntimeError",
                        "error_message": "CUDA OOM",
                        "error_traceback": "Traceback (most recent call last):...",
                    }
                ),
            },
            "CUDA OOM",
        ),
        ({"status": "FAILED"}, "GPU job failed"),
        ({"status": "CANCELLED"}, "GPU job cancelled"),
        ({"status": "TIMED_OUT"}, "GPU job timed out"),
        ({"status": "COMPLETED", "output": {"error": "engine kyutai unavailable"}}, "engine kyutai unavailable"),
    ],
)
def test_terminal_failures_report_a_reason(
    services: Services,
    runpod: respx.MockRouter,
    payload: dict[str, Any],
    reason: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job, gpu, _ = _submit(services, runpod)
    runpod.get(f"{ENDPOINT}/status/run-1").respond(200, json={"id": "run-1", **payload})
    result = _poll(job, gpu)
    assert result["status"] in ("FAILED", "CANCELLED", "TIMED_OUT")
    assert result["error"] == reason and result["output"] is None
    assert _metric(capsys, "JobFailed") == {"value": 1.0, "stage": "embed"}


def test_completed_is_finalized_into_the_voice(
    services: Services, runpod: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    job, gpu, _ = _submit(services, runpod)
    submitted = json.loads(runpod.routes[0].calls.last.request.content)
    output = FakeWorker(services, best=2)({"id": "run-1", **submitted})
    runpod.get(f"{ENDPOINT}/status/run-1").respond(200, json={"id": "run-1", "status": "COMPLETED", "output": output})
    services.blobs.put_bytes("my-partner/vid-speaker-1/test/resemblyzer/test_9_1.opus", b"stale")

    result = _poll(job, gpu)
    assert result["status"] == "COMPLETED" and result["error"] is None
    done = gpu_dispatch.finalize(
        {"job": job.model_dump(mode="json"), "stage": "embed", "gpu": result}, _ctx("finalize")
    )

    assert done == {"ok": True}
    duration = _metric(capsys, "JobDuration")
    assert duration["stage"] == "embed" and 0 <= duration["value"] < 60
    voice = services.voices.require("my-partner", "speaker-1")
    assert voice.embedding_status == JobStatus.COMPLETED and voice.progress is None
    info = voice.embedding_info
    assert info["tts_type"] == "resemblyzer" and info["last_update_status"] == "success"
    assert info["sample_scores"][0] == {"sample_index": 2, "score": 0.9, "flagged": False}  # no null in DynamoDB
    assert {t["filename"] for t in info["test_samples"]} == {"test_1_1.opus", "test_2_1.opus", "test_3_1.opus"}
    assert voice.preferred_sample_index == 2
    assert voice.embedding_zip_key == "my-partner/vid-speaker-1/embeddings/resemblyzer.zip"
    # A previous run's test file that this run did not produce is gone.
    assert not services.blobs.exists("my-partner/vid-speaker-1/test/resemblyzer/test_9_1.opus")


def test_finalize_keeps_a_manual_preferred_sample(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod, preferred_sample_index=1, preferred_sample_manual=True)
    submitted = json.loads(runpod.routes[0].calls.last.request.content)
    output = FakeWorker(services, best=3)({"id": "run-1", **submitted})
    gpu_dispatch.finalize(
        {"job": job.model_dump(mode="json"), "stage": "embed", "gpu": {**gpu, "status": "COMPLETED", "output": output}},
        _ctx("finalize"),
    )
    assert services.voices.require("my-partner", "speaker-1").preferred_sample_index == 1


def test_finalize_rejects_an_invalid_worker_result(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod)
    with pytest.raises(GpuJobError, match="invalid embed result"):
        gpu_dispatch.finalize(
            {
                "job": job.model_dump(mode="json"),
                "stage": "embed",
                "gpu": {**gpu, "status": "COMPLETED", "output": {"tts_type": "x", "sample_scores": []}},
            },
            _ctx("finalize"),
        )
    assert services.voices.require("my-partner", "speaker-1").embedding_status == JobStatus.IN_PROGRESS


def test_finalize_for_a_deleted_voice_is_a_no_op(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod)
    services.voices.finish_job("my-partner", "speaker-1", "embedding", JobStatus.IDLE)
    services.voices.delete("my-partner", "speaker-1")
    output = {
        "tts_type": "resemblyzer",
        "sample_scores": [{"sample_index": 1, "score": 1.0}],
        "preferred_sample_index": 1,
    }
    gpu_dispatch.finalize(
        {"job": job.model_dump(mode="json"), "stage": "embed", "gpu": {**gpu, "status": "COMPLETED", "output": output}},
        _ctx("finalize"),
    )
    assert services.voices.get("my-partner", "speaker-1") is None


def test_poll_past_the_deadline_cancels_and_times_out(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod)
    runpod.get(f"{ENDPOINT}/status/run-1").respond(200, json={"id": "run-1", "status": "IN_QUEUE"})
    cancel = runpod.post(f"{ENDPOINT}/cancel/run-1").respond(200, json={"id": "run-1", "status": "CANCELLED"})
    result = _poll(job, {**gpu, "deadline": services.clock() - 1})
    assert (result["status"], result["error"]) == ("TIMED_OUT", "GPU job timed out")
    assert cancel.called


def test_client_retries_429_and_5xx_then_succeeds(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod)
    route = runpod.get(f"{ENDPOINT}/status/run-1").mock(
        side_effect=[
            httpx.Response(429),
            httpx.ConnectError("reset"),
            httpx.Response(200, json={"id": "run-1", "status": "IN_PROGRESS"}),
        ]
    )
    assert _poll(job, gpu)["status"] == "IN_PROGRESS" and route.call_count == 3


def test_client_gives_up_with_a_retryable_error(services: Services, runpod: respx.MockRouter) -> None:
    job, gpu, _ = _submit(services, runpod)
    runpod.get(f"{ENDPOINT}/status/run-1").respond(503)
    with pytest.raises(GpuServiceError, match="after 3 attempts: HTTP 503"):
        _poll(job, gpu)


def test_client_does_not_retry_a_rejected_request(services: Services, runpod: respx.MockRouter) -> None:
    make_voice(services)
    route = runpod.post(f"{ENDPOINT}/run").respond(401, json={"error": "bad key"})
    job = job_for(services.voices.require("my-partner", "speaker-1"))
    with pytest.raises(GpuRequestRejected, match="HTTP 401"):
        gpu_dispatch.submit({"job": job.model_dump(mode="json"), "stage": "embed"}, _ctx("submit"))
    assert route.call_count == 1


def test_api_key_comes_from_secrets_manager_when_configured(services: Services) -> None:
    from voice_onboarding.adapters.runpod import resolve_api_key
    from voice_onboarding.aws_clients import make_client

    make_client("secretsmanager", services.settings).create_secret(Name="voice/runpod", SecretString="from-secret")
    settings = services.settings.model_copy(update={"runpod_api_key_secret": "voice/runpod", "runpod_api_key": "env"})
    assert resolve_api_key(settings) == "from-secret"
    assert resolve_api_key(settings.model_copy(update={"runpod_api_key_secret": None})) == "env"


def test_unknown_stage_fails_clearly(services: Services, runpod: respx.MockRouter) -> None:
    record = make_voice(services)
    with pytest.raises(GpuJobError, match="Unknown GPU job stage"):
        gpu_dispatch.submit({"job": job_for(record).model_dump(mode="json"), "stage": "dance"}, _ctx("submit"))


def _metric(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    """The EMF record powertools printed for metric `name` (value and stage dimension)."""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            if name in record:
                value = record[name]
                return {"value": value[0] if isinstance(value, list) else value, "stage": record.get("stage")}
    raise AssertionError(f"no {name} metric emitted")
