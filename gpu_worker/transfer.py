"""Presigned-URL transfers (httpx): the only way the worker reads inputs and writes outputs.

Outputs are signed late: with a callback (contract.gpu.WorkerCallback) the worker asks the API for each
output's PUT URL when it is ready to upload, and again if S3 refuses the URL it used (403: expired, or
its signing session ended). The URL in the input is the fallback when the API cannot be reached.

Two exceptions for smoke tests that run without a bucket (test_input.json, .runpod/tests.json): an input
may be a base64 `data:` URL, and an output URL may be None (nothing is uploaded).
"""

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import httpx

from gpu_worker.callback import Callback, JobCancelled

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# The running job's callback (set by the handler around the task).
_callback: ContextVar[Callback | None] = ContextVar("gpu_worker_callback", default=None)


@contextmanager
def job_callback(callback: Callback) -> Iterator[Callback]:
    reset = _callback.set(callback)
    try:
        yield callback
    finally:
        _callback.reset(reset)


def download(url: str, dest: Path) -> Path:
    if url.startswith("data:"):
        dest.write_bytes(base64.b64decode(url.split(",", 1)[1], validate=True))
        return dest
    with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as response:
        response.raise_for_status()
        with dest.open("wb") as fh:
            for chunk in response.iter_bytes():
                fh.write(chunk)
    return dest


def _put(url: str, data: bytes, content_type: str) -> httpx.Response:
    # The Content-Type must match what the dispatcher signed, if it signed one; S3 ignores it otherwise.
    return httpx.put(url, content=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)


def upload(
    url: object | None, data: bytes, content_type: str = "application/octet-stream", output: str | None = None
) -> bool:
    """PUTs `data` to the output named `output` (contract.gpu.output_name); False when there is no URL
    (a smoke test's null output)."""
    if url is None:
        return False
    callback = _callback.get()
    if callback is None or not callback.enabled or output is None:
        response = _put(str(url), data, content_type)
    else:
        fresh = callback.upload_url(output)
        if callback.cancelled:
            raise JobCancelled("cancelled")  # the run is over: write nothing
        response = _put(fresh or str(url), data, content_type)
        if response.status_code == 403:
            # Expired, or signed by a session that has ended: one more URL, signed now.
            fresh = callback.upload_url(output)
            if fresh:
                response = _put(fresh, data, content_type)
    response.raise_for_status()
    return True
