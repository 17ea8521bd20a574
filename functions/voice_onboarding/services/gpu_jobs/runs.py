"""Submit, poll and finalize one GPU run of a pipeline job (the state machine's GPU loop)."""

import json
import secrets
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import AnyHttpUrl, TypeAdapter

from voice_onboarding.adapters.runpod import TERMINAL, GpuClient, GpuRunNotStarted, GpuRunUnconfirmed, RunStatus
from voice_onboarding.aws_clients import make_client
from voice_onboarding.contract.gpu import WorkerCallback, output_name
from voice_onboarding.domain.gpu_runs import DEFAULT_HEARTBEAT_SECONDS, RunLifetimes, RunState
from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.services import gpu_jobs
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs import GpuJobError
from voice_onboarding.storage.gpu_runs_repo import GpuRunRepository, hash_secret, secret_matches

logger = Logger(service="voice-onboarding", child=True)

MAX_ERROR_CHARS = 300
_FAILURE_REASONS = {"CANCELLED": "GPU job cancelled", "TIMED_OUT": "GPU job timed out"}
FAILED_STATUSES = frozenset({"FAILED", "CANCELLED", "TIMED_OUT"})
_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


class GpuSubmitUnconfirmed(Exception):
    """An earlier attempt's /run may have started a run we have no id for: never submitted again."""


def lifetimes(stage: str) -> RunLifetimes:
    """URL expiries and RunPod's policy for one run of `stage`, all from its deadline."""
    return gpu_jobs.get_kind(stage).lifetimes()


def run_records(services: Services) -> GpuRunRepository:
    return GpuRunRepository(services.dynamodb, services.settings.table_name)


class _SignedOutputs:
    """The job's BlobStore, noting the key (and signed content type) behind every presigned PUT URL the
    kind puts in the worker's input: the keys the worker may later ask fresh URLs for."""

    def __init__(self, blobs: Any) -> None:
        self._blobs = blobs
        self.by_url: dict[str, dict[str, Any]] = {}

    def presigned_put(self, key: str, expires_in: int, content_type: str | None = None) -> str:
        url: str = self._blobs.presigned_put(key, expires_in, content_type)
        self.by_url[_normalized(url)] = {"key": key, "content_type": content_type}
        return url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blobs, name)

    def outputs(self, job_input: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Output name (contract.gpu.output_name) -> {key, content_type}, for the input's output URLs."""
        named: dict[str, dict[str, Any]] = {}
        for field, value in (job_input.get("outputs") or {}).items():
            entries = value.items() if isinstance(value, dict) else [(None, value)]
            for item, url in entries:
                spec = self.by_url.get(_normalized(url)) if isinstance(url, str) else None
                if spec is not None:
                    named[output_name(field, item)] = spec
        return named


def _normalized(url: str) -> str:
    # The input went through the contract's URL type, which may re-encode a URL.
    return str(_URL.validate_python(url))


def submit(
    services: Services, client: GpuClient, job: PipelineJob, stage: str, heartbeat_seconds: int | None = None
) -> dict[str, Any]:
    """POST /run at most once per (job id, stage). A retry of this step (a Lambda timeout, a lost
    response, Step Functions' own retry) replays the recorded run id. /run is called again only when the
    earlier call provably never reached RunPod (its claim was released)."""
    records = run_records(services)
    record = records.get(job.job_id, stage)
    if record is None:
        kind = gpu_jobs.get_kind(stage)
        signed = _SignedOutputs(services.blobs)
        # A refusal here (voice gone) leaves no claim behind.
        job_input = kind.build_input(replace(services, blobs=signed), job)
        life = lifetimes(stage)
        deadline = int(services.clock()) + life.deadline_seconds
        # Authenticates this run's webhook and its worker's callbacks; only its hash is stored.
        secret = secrets.token_urlsafe(32)
        heartbeat = int(heartbeat_seconds or DEFAULT_HEARTBEAT_SECONDS)
        callback = callback_spec(services, job.job_id, stage, secret, heartbeat)
        if callback is not None:
            job_input["callback"] = callback
        claim = {
            "deadline": deadline,
            "kind": job.kind.value,
            "partner": job.partner,
            "name": job.name,
            "secret_hash": hash_secret(secret),
            "job": job.model_dump(mode="json"),
            "outputs": signed.outputs(job_input),
            "heartbeat_seconds": heartbeat,
            "callback": callback is not None,
        }
        if records.claim(job.job_id, stage, services.clock(), claim):
            webhook = webhook_url(services, job.job_id, stage, secret)
            return _post_run(services, client, records, job, stage, job_input, life, deadline, webhook)
        record = records.get(job.job_id, stage) or {}  # a concurrent attempt claimed it first
    if record.get("run_id"):
        logger.info("GPU submit replayed", extra={"job_id": job.job_id, "stage": stage, "run_id": record["run_id"]})
        return {"run_id": record["run_id"], "status": "IN_QUEUE", "deadline": record.get("deadline")}
    raise GpuSubmitUnconfirmed("GPU job submission was not confirmed by RunPod; not resubmitted (no duplicate run)")


def _post_run(
    services: Services,
    client: GpuClient,
    records: GpuRunRepository,
    job: PipelineJob,
    stage: str,
    job_input: dict[str, Any],
    life: RunLifetimes,
    deadline: int,
    webhook: str | None,
) -> dict[str, Any]:
    try:
        run = client.run(job_input, policy=life.runpod_policy(), webhook=webhook)
    except GpuRunNotStarted:
        records.release(job.job_id, stage)  # nothing reached RunPod: the state machine's retry may submit
        raise
    except GpuRunUnconfirmed as error:
        raise GpuSubmitUnconfirmed(f"GPU job submission was not confirmed by RunPod ({error})") from error
    records.update(job.job_id, stage, {"run_id": run.id, "state": RunState.SUBMITTED.value})
    logger.info("GPU job submitted", extra={"job_id": job.job_id, "stage": stage, "run_id": run.id})
    gpu_jobs.get_kind(stage).record_progress(services, job, {"step": run.status, "run_id": run.id})
    return {"run_id": run.id, "status": run.status, "deadline": deadline}


def webhook_url(services: Services, job_id: str, stage: str, secret: str) -> str | None:
    """Where RunPod reports the run's end: the API's webhook route, authenticated by the job's secret.
    None without PUBLIC_API_URL (polling alone then ends the wait)."""
    base = services.settings.public_api_url
    if not base:
        return None
    return f"{base.rstrip('/')}/api/gpu/webhook/{job_id}/{stage}?token={secret}"


def callback_spec(services: Services, job_id: str, stage: str, secret: str, heartbeat: int) -> dict[str, Any] | None:
    """The worker's callback (contract.gpu.WorkerCallback): progress/heartbeat and late-signed upload
    URLs on the API. None without PUBLIC_API_URL (the worker then only uses its input's URLs)."""
    base = services.settings.public_api_url
    if not base:
        return None
    url = f"{base.rstrip('/')}/api/gpu/jobs/{job_id}/{stage}"
    return WorkerCallback(url=url, token=secret, heartbeat_seconds=heartbeat).model_dump(mode="json")


def worker_error(run: RunStatus) -> str:
    """The worker's reason for a FAILED run. RunPod passes `{"error": ...}` returns through as a
    string; a raising handler becomes a JSON string with error_message and a traceback (dropped)."""
    error = run.error
    if run.status in _FAILURE_REASONS and not error:
        return _FAILURE_REASONS[run.status]
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            error = parsed
    if isinstance(error, dict):
        error = error.get("error_message") or error.get("error") or error.get("message")
    text = " ".join(str(error or "GPU job failed").split())
    return text[:MAX_ERROR_CHARS]


def poll(services: Services, client: GpuClient, job: PipelineJob, stage: str, gpu: dict[str, Any]) -> dict[str, Any]:
    """Current status of the run, always as {run_id, status, deadline, output, error}. A run still
    queued or running past its deadline is cancelled and reported TIMED_OUT."""
    run_id, deadline = str(gpu["run_id"]), gpu.get("deadline")
    run = client.status(run_id)
    if run.status not in TERMINAL and deadline is not None and services.clock() > float(deadline):
        try:
            client.cancel(run_id)
        except Exception:
            logger.warning("could not cancel a timed-out GPU run", extra={"run_id": run_id}, exc_info=True)
        run = RunStatus(id=run_id, status="TIMED_OUT", error="GPU job timed out")
    result = outcome_of(run, deadline)
    if run.status not in TERMINAL:
        progress: dict[str, Any] = {"step": run.status, "run_id": run_id}
        if isinstance(run.output, str):
            progress["detail"] = run.output[:200]  # the worker's progress_update text
        gpu_jobs.get_kind(stage).record_progress(services, job, progress)
    logger.info("GPU job polled", extra={"job_id": job.job_id, "run_id": run_id, "status": result["status"]})
    return result


def outcome_of(run: RunStatus, deadline: Any) -> dict[str, Any]:
    """A run's state as the state machine reads it: {run_id, status, deadline, output, error}, whether it
    came from a poll or from RunPod's webhook (whose body is /status's)."""
    result: dict[str, Any] = {
        "run_id": run.id,
        "status": run.status,
        "deadline": deadline,
        "output": None,
        "error": None,
    }
    if run.status == "COMPLETED":
        if not isinstance(run.output, dict) or run.output.get("error"):
            # The worker returned an error object RunPod still called COMPLETED: it is a failure.
            result.update(status="FAILED", error=worker_error(RunStatus(id=run.id, status="FAILED", error=_err(run))))
        else:
            result["output"] = run.output
    elif run.status in TERMINAL:
        result["error"] = worker_error(run)
    return result


_sfn_clients: dict[tuple[str, str | None], Any] = {}


def sfn_client(services: Services) -> Any:
    # The API's dispatcher already holds one; pipeline steps share one per warm process. A client per
    # call cost a client build (botocore models, a connection pool) on every resume; a 5-minute local
    # soak had 102 of them alive at once, each holding an open connection to moto.
    sfn = getattr(services.dispatcher, "sfn", None)
    if sfn is not None:
        return sfn
    key = (services.settings.aws_region, services.settings.aws_endpoint_url)
    if key not in _sfn_clients:
        _sfn_clients[key] = make_client("stepfunctions", services.settings)
    return _sfn_clients[key]


def _resume(services: Services, records: GpuRunRepository, job_id: str, stage: str, token: str, outcome: dict) -> bool:
    """SendTaskSuccess with the run's outcome; False if that wait is over (timed out into the next one,
    which then finds the stored outcome)."""
    sfn = sfn_client(services)
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps(outcome))
    except (sfn.exceptions.TaskTimedOut, sfn.exceptions.TaskDoesNotExist, sfn.exceptions.InvalidToken):
        return False
    records.update(job_id, stage, {"state": RunState.FINISHED.value})
    return True


def await_run(
    services: Services, client: GpuClient, job: PipelineJob, stage: str, gpu: dict[str, Any], task_token: str
) -> dict[str, Any]:
    """The state machine waits on `task_token` until the run ends. RunPod's webhook normally resumes it
    (deliver_webhook) and the worker's progress reports extend it (SendTaskHeartbeat). This step
    registers the token, then checks /status once, the slow fallback for a lost webhook (RunPod tries a
    webhook 3 times) and for a silent worker: a run that already ended, or whose worker stopped
    heartbeating, resumes the wait at once."""
    records = run_records(services)
    records.update(job.job_id, stage, {"task_token": task_token})
    record = records.get(job.job_id, stage) or {}
    outcome = record.get("outcome")  # a webhook that came while no wait was registered
    if outcome is None:
        polled = poll(services, client, job, stage, gpu)
        if polled["status"] in TERMINAL:
            outcome = polled
        else:
            outcome = liveness_failure(services, client, records, record, polled)
    if outcome is not None:
        _resume(services, records, job.job_id, stage, task_token, outcome)
    return {"waiting": outcome is None}


SILENT_WORKER = "GPU worker sent no heartbeat for {seconds} s while RunPod reported it running; the run was cancelled"


def liveness_failure(
    services: Services, client: GpuClient, records: GpuRunRepository, record: dict[str, Any], polled: dict[str, Any]
) -> dict[str, Any] | None:
    """A FAILED outcome for a run RunPod calls IN_PROGRESS whose worker has been silent for the wait's
    HeartbeatSeconds (it died, hangs without its keep-alive, or cannot reach the API); None while it
    lives. The silence counts from the worker's last beat, or from the first poll that saw the run
    running (a worker that just started has a full period to send its first beat). Only for runs that
    were given a callback: without PUBLIC_API_URL a worker cannot beat."""
    if polled["status"] != "IN_PROGRESS" or not record.get("callback"):
        return None
    now = services.clock()
    heartbeat = int(record.get("heartbeat_seconds") or DEFAULT_HEARTBEAT_SECONDS)
    since = record.get("running_since")
    if since is None:
        records.update(str(record["job_id"]), str(record["stage"]), {"running_since": int(now)})
        since = now
    if now - max(float(record.get("last_beat") or 0), float(since)) < heartbeat:
        return None
    run_id = str(polled["run_id"])
    try:
        client.cancel(run_id)  # stop the billing of a worker nobody hears from
    except Exception:
        logger.warning("could not cancel a silent GPU run", extra={"run_id": run_id}, exc_info=True)
    logger.warning("GPU worker silent", extra={"job_id": record["job_id"], "run_id": run_id, "seconds": heartbeat})
    return {**polled, "status": "FAILED", "output": None, "error": SILENT_WORKER.format(seconds=heartbeat)}


class WebhookRejected(Exception):
    """Unknown job/stage or wrong secret: answered 404, revealing nothing."""


def deliver_webhook(services: Services, job_id: str, stage: str, secret: str, body: dict[str, Any]) -> str:
    """RunPod's webhook for a run that ended: resume the execution waiting on it."""
    records = run_records(services)
    record = records.get(job_id, stage)
    if record is None or not secret_matches(record, secret):
        raise WebhookRejected
    run = RunStatus.model_validate(body)
    if run.status not in TERMINAL:
        return "ignored"
    if record.get("state") == RunState.FINISHED.value:
        return "duplicate"  # RunPod retries a webhook it thinks failed
    outcome = outcome_of(run, record.get("deadline"))
    records.update(job_id, stage, {"outcome": outcome, "run_id": record.get("run_id") or run.id})
    token = record.get("task_token")
    resumed = bool(token) and _resume(services, records, job_id, stage, str(token), outcome)
    logger.info("GPU webhook", extra={"job_id": job_id, "stage": stage, "status": run.status, "resumed": resumed})
    return "resumed" if resumed else "stored"


def _err(run: RunStatus) -> Any:
    if isinstance(run.output, dict):
        return run.output.get("error")
    return f"GPU worker returned no result object ({type(run.output).__name__})"


def finalize(services: Services, job: PipelineJob, stage: str, gpu: dict[str, Any]) -> dict[str, Any]:
    output = gpu.get("output")
    if gpu.get("status") != "COMPLETED" or not isinstance(output, dict):
        raise GpuJobError("finalize called without a completed GPU result")
    gpu_jobs.get_kind(stage).apply_result(services, job, output)
    logger.info("GPU job finalized", extra={"job_id": job.job_id, "stage": stage, "run_id": gpu.get("run_id")})
    return {"ok": True}


def elapsed_seconds(services: Services, stage: str, gpu: dict[str, Any]) -> float | None:
    """Seconds since submission. The state carries only the deadline, which submit set to
    submission time + the kind's timeout, so no extra field has to travel through the ASL."""
    deadline = gpu.get("deadline")
    if deadline is None:
        return None
    submitted = float(deadline) - gpu_jobs.get_kind(stage).timeout_seconds()
    return max(0.0, services.clock() - submitted)
