"""Local stand-in for the RunPod endpoint: the worker's handler in-process on CPU, reported with RunPod's
statuses so the state machine's GPU loop runs unchanged. Injected by the local stack and the tests
(handlers/composition.py `override(gpu_client=...)`); never imported by Lambda code. The worker code is
RunPod's: it reports progress (the heartbeat) and gets its upload URLs through the API routes its input's
callback names (the local API's PUBLIC_API_URL), and the end of a run is posted to the webhook route."""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from voice_onboarding.adapters.runpod import GpuRequestRejected, RunStatus

WorkerHandler = Callable[[dict[str, Any]], Any]
logger = logging.getLogger(__name__)
# RunPod keeps an async (/run) job's result for 30 minutes after it ends, then /status no longer knows
# it; so does this endpoint, which would otherwise hold every run's input and output for the life of
# the process (docs.runpod.io/serverless/endpoints/send-requests, "Sync vs. async").
RESULT_RETENTION_SECONDS = 30 * 60


def post_webhook(url: str, body: dict[str, Any]) -> int:
    """POST a webhook body; the status code (tests route it to the in-process app)."""
    return httpx.post(url, json=body, timeout=30).status_code


def _real_worker_handler(job: dict[str, Any]) -> Any:
    # Imported on first use: the Lambda package does not ship the worker (or torch).
    from gpu_worker.handler import handler

    return handler(job)


class _Run:
    def __init__(self) -> None:
        self.future: Future[Any] | None = None
        self.started = threading.Event()
        self.cancelled = False
        self.ended_at: float | None = None  # monotonic; set when the worker returned or the run was cancelled


class InProcessGpuClient:
    """Local mode: the worker's `handler({"id", "input"})` on a background thread, reported with
    RunPod's statuses so the state machine's poll loop runs unchanged. Runs live in the class (one
    "endpoint" per process), since submit and poll are separate handler invocations."""

    _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu-worker")
    _runs: dict[str, _Run] = {}
    _lock = threading.Lock()

    def __init__(
        self, worker: WorkerHandler = _real_worker_handler, retention_seconds: float = RESULT_RETENTION_SECONDS
    ) -> None:
        self.worker = worker
        self.retention_seconds = retention_seconds

    def run(
        self, job_input: dict[str, Any], policy: dict[str, int] | None = None, webhook: str | None = None
    ) -> RunStatus:
        run_id = f"local-{uuid.uuid4().hex}"
        run = _Run()

        def execute() -> Any:
            run.started.set()
            if run.cancelled:
                return None
            try:
                return self.worker({"id": run_id, "input": job_input})
            finally:
                run.ended_at = time.monotonic()
                if webhook:
                    threading.Thread(target=self._call_webhook, args=(run_id, webhook), daemon=True).start()

        with self._lock:
            self._forget_expired()
            self._runs[run_id] = run
            run.future = self._executor.submit(execute)
        return RunStatus(id=run_id, status="IN_QUEUE")

    def status(self, run_id: str) -> RunStatus:
        run = self._runs.get(run_id)
        if run is None:
            raise GpuRequestRejected(f"unknown local GPU run {run_id}")
        if run.cancelled:
            return RunStatus(id=run_id, status="CANCELLED")
        if run.future is None or not run.future.done():
            return RunStatus(id=run_id, status="IN_PROGRESS" if run.started.is_set() else "IN_QUEUE")
        error = run.future.exception()
        if error is not None:
            # RunPod reports a raising handler as FAILED with the error text.
            return RunStatus(id=run_id, status="FAILED", error=f"{type(error).__name__}: {error}")
        output = run.future.result()
        if isinstance(output, dict) and output.get("error"):
            return RunStatus(id=run_id, status="FAILED", error=output["error"])
        return RunStatus(id=run_id, status="COMPLETED", output=output)

    def _forget_expired(self) -> None:
        """Drop runs that ended more than the retention ago (called under the lock, on each new run)."""
        now = time.monotonic()
        expired = [
            i for i, r in self._runs.items() if r.ended_at is not None and now - r.ended_at > self.retention_seconds
        ]
        for run_id in expired:
            del self._runs[run_id]

    def _call_webhook(self, run_id: str, url: str) -> None:
        """As RunPod does when a run ends: POST its /status body to the webhook, retried twice 10 s apart."""
        run = self._runs[run_id]
        if run.future is not None:
            run.future.exception()  # wait until the future holds the worker's result
        body = self.status(run_id).model_dump(mode="json")
        for attempt in range(3):
            try:
                if post_webhook(url, body) < 500:
                    return
            except httpx.TransportError:
                pass
            if attempt < 2:
                time.sleep(10)
        logger.warning("webhook of run %s not delivered", run_id)

    def cancel(self, run_id: str) -> RunStatus:
        run = self._runs.get(run_id)
        if run is None:
            raise GpuRequestRejected(f"unknown local GPU run {run_id}")
        # A running thread cannot be stopped; like RunPod, the run is reported CANCELLED at once.
        run.cancelled = True
        run.ended_at = run.ended_at or time.monotonic()
        if run.future is not None:
            run.future.cancel()
        return RunStatus(id=run_id, status="CANCELLED")
