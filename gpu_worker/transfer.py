"""Presigned-URL transfers (httpx): the only way the worker reads inputs and writes outputs.

Two exceptions for smoke tests that run without a bucket (test_input.json, .runpod/tests.json): an input
may be a base64 `data:` URL, and an output URL may be None (nothing is uploaded).
"""

import base64
from pathlib import Path

import httpx

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


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


def upload(url: object | None, data: bytes, content_type: str = "application/octet-stream") -> bool:
    """PUTs `data`; False when there is no URL (a smoke test's null output)."""
    if url is None:
        return False
    # The Content-Type must match what the dispatcher signed, if it signed one; S3 ignores it otherwise.
    response = httpx.put(str(url), content=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)
    response.raise_for_status()
    return True
