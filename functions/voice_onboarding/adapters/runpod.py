"""RunPod serverless over HTTP: run(input) / status(run_id) / cancel(run_id) -> RunStatus.

`GpuClient` is the protocol the GPU dispatch uses; the local stack and tests inject an in-process
client (infra/local/gpu.py) that runs the worker's handler on CPU and reports RunPod's statuses.
"""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict

from voice_onboarding.settings import Settings

if TYPE_CHECKING:
    import httpx

logger = Logger(service="voice-onboarding", child=True)

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class GpuServiceError(Exception):
    """RunPod could not be reached or answered 429/5xx after retries: transient, the state machine retries."""


class GpuRunNotStarted(GpuServiceError):
    """`/run` provably never reached RunPod (connect errors, 429): submitting again cannot start a second run."""


class GpuRunUnconfirmed(Exception):
    """`/run` may have reached RunPod (read timeout, 5xx, a dropped connection) but gave no run id. RunPod has
    no idempotency key, so submitting again could start a second paid run: never retried."""


class GpuRequestRejected(Exception):
    """RunPod refused the request (4xx other than 429): not transient (bad key, unknown endpoint or job)."""


class RunStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: str
    output: Any = None
    error: Any = None


class GpuClient(Protocol):
    def run(
        self, job_input: dict[str, Any], policy: dict[str, int] | None = None, webhook: str | None = None
    ) -> RunStatus: ...

    def status(self, run_id: str) -> RunStatus: ...

    def cancel(self, run_id: str) -> RunStatus: ...


class RunPodHttpClient:
    """`POST /run`, `GET /status/{id}`, `POST /cancel/{id}` of a RunPod serverless endpoint."""

    def __init__(
        self,
        endpoint_id: str,
        api_key: str,
        base_url: str = "https://api.runpod.ai/v2",
        timeout: float = 20.0,
        max_attempts: int = 3,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: "httpx.BaseTransport | None" = None,
    ) -> None:
        # httpx is imported with the first client: modules that only name the protocol or the errors (the
        # API Lambda, through services.cancel) keep it off their cold start.
        import httpx

        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/{endpoint_id}",
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> RunStatus:
        import httpx

        last = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TransportError as error:
                last = f"{type(error).__name__}"
                continue
            if response.status_code in _RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                # Never log the request body: it holds presigned URLs (credentials).
                raise GpuRequestRejected(f"RunPod {method} {path.split('/')[1]} -> HTTP {response.status_code}")
            return RunStatus.model_validate(response.json())
        raise GpuServiceError(f"RunPod {method} {path.split('/')[1]} failed after {self.max_attempts} attempts: {last}")

    def run(
        self, job_input: dict[str, Any], policy: dict[str, int] | None = None, webhook: str | None = None
    ) -> RunStatus:
        """POST /run, retried only when the request provably never reached RunPod: a connect error
        (nothing was sent) or 429 (refused before queueing). Anything else without a run id raises
        GpuRunUnconfirmed at once: a retry could enqueue a second paid run."""
        body: dict[str, Any] = {"input": job_input}
        if policy:
            body["policy"] = policy
        if webhook:
            body["webhook"] = webhook
        import httpx

        last = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self._http.post("/run", json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                last = type(error).__name__
                continue
            except httpx.TransportError as error:
                raise GpuRunUnconfirmed(f"RunPod POST run: {type(error).__name__}, outcome unknown") from error
            if response.status_code == 429:
                last = "HTTP 429"
                continue
            if response.status_code >= 500:
                raise GpuRunUnconfirmed(f"RunPod POST run -> HTTP {response.status_code}, outcome unknown")
            if response.status_code >= 400:
                raise GpuRequestRejected(f"RunPod POST run -> HTTP {response.status_code}")
            try:
                return RunStatus.model_validate(response.json())
            except ValueError as error:
                raise GpuRunUnconfirmed("RunPod POST run answered without a run id") from error
        raise GpuRunNotStarted(f"RunPod POST run failed after {self.max_attempts} attempts: {last}")

    def status(self, run_id: str) -> RunStatus:
        return self._request("GET", f"/status/{run_id}")

    def cancel(self, run_id: str) -> RunStatus:
        return self._request("POST", f"/cancel/{run_id}")


def resolve_api_key(settings: Settings) -> str:
    """The RunPod key: from Secrets Manager (or SSM for a /path or ssm ARN) when RUNPOD_API_KEY_SECRET
    is set, else RUNPOD_API_KEY. Cached by powertools for 5 minutes across warm invocations."""
    secret = settings.runpod_api_key_secret
    if secret:
        from aws_lambda_powertools.utilities import parameters

        if secret.startswith("/") or secret.startswith("arn:aws:ssm:"):
            name = secret.split(":parameter", 1)[-1] if secret.startswith("arn:") else secret
            return str(parameters.get_parameter(name, decrypt=True, max_age=300))
        return str(parameters.get_secret(secret, max_age=300))
    if settings.runpod_api_key:
        return settings.runpod_api_key
    raise GpuRequestRejected("RUNPOD_API_KEY_SECRET or RUNPOD_API_KEY must be set with RUNPOD_ENDPOINT_ID")


def make_gpu_client(settings: Settings) -> GpuClient:
    if not settings.runpod_endpoint_id:
        raise GpuRequestRejected("RUNPOD_ENDPOINT_ID must be set (the local stack injects an in-process worker)")
    return RunPodHttpClient(settings.runpod_endpoint_id, resolve_api_key(settings), settings.runpod_base_url)
