"""The worker's calls back to the API (contract.gpu.WorkerCallback), authenticated by the job's secret:

- `progress(step)`: shows the step on the voice or speaker, and is the run's heartbeat. A keep-alive
  thread repeats the last step every third of `heartbeat_seconds`, so a long step (a model load, a
  training epoch) never looks like a dead worker; a worker that dies stops beating and the pipeline fails
  the run after one silent period instead of at its deadline.
- `upload_url(output)`: a PUT URL signed now, for one of the job's outputs (the URL in the input may
  have died with the session that signed it).

A 409 means the run is over (cancelled, timed out): `cancelled` is set and the task stops at its next
progress step. Any other failure to reach the API is logged and ignored: the worker then uploads with
its input's URLs, and the pipeline's fallback poll still watches the run.
"""

import logging
import threading
from typing import Any

import httpx

from voice_onboarding.contract.gpu import WorkerCallback

log = logging.getLogger("gpu_worker")
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# Steps are reported at most this often (and beats sent at least every third of the heartbeat period).
MIN_INTERVAL_SECONDS = 30.0


class JobCancelled(Exception):
    """The API answered 409: the run was cancelled or is over; nothing more may be written."""


def send(method: str, url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    """One request to the API: (status code, JSON body or None). Tests route it to the in-process app."""
    response = httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return response.status_code, payload


class Callback:
    def __init__(self, spec: WorkerCallback | None) -> None:
        self.spec = spec
        self.cancelled = False
        self._step = "started"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.spec is not None

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any] | None:
        if self.spec is None:
            return None
        try:
            status, payload = send("POST", f"{str(self.spec.url).rstrip('/')}/{path}", self.spec.token, body)
        except httpx.HTTPError as error:
            log.warning("callback %s failed: %s", path, type(error).__name__)
            return None
        if status == 409:
            self.cancelled = True
        elif status >= 400:
            log.warning("callback %s -> HTTP %s", path, status)
        return status, payload

    def progress(self, step: str) -> None:
        """Report `step` soon (from the keep-alive thread: the task never waits on the API)."""
        with self._lock:
            self._step = step
        self._wake.set()

    def upload_url(self, output: str) -> str | None:
        """A freshly signed PUT URL for `output`; None when the API cannot give one."""
        answer = self._post("upload-url", {"output": output})
        if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
            return None
        url = answer[1].get("url")
        return url if isinstance(url, str) else None

    def __enter__(self) -> "Callback":
        if self.spec is not None:
            self._thread = threading.Thread(target=self._keep_alive, name="gpu-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _keep_alive(self) -> None:
        """Send the current step at once, then at least every third of the heartbeat period; a new step
        goes out early, but no sooner than MIN_INTERVAL_SECONDS after the previous report (a training
        loop reporting every few seconds costs one request per half minute)."""
        assert self.spec is not None
        period = self.spec.heartbeat_seconds / 3
        spacing = min(MIN_INTERVAL_SECONDS, period)
        while not self._stop.is_set() and not self.cancelled:
            with self._lock:
                step = self._step
            self._post("progress", {"step": step})
            if self._stop.wait(spacing):
                return
            self._wake.wait(period - spacing)
            self._wake.clear()
