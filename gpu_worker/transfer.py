"""Presigned-URL transfers (httpx): the only way the worker reads inputs and writes outputs."""

from pathlib import Path

import httpx

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def download(url: str, dest: Path) -> Path:
    with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as response:
        response.raise_for_status()
        with dest.open("wb") as fh:
            for chunk in response.iter_bytes():
                fh.write(chunk)
    return dest


def upload(url: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    # The Content-Type must match what the dispatcher signed, if it signed one; S3 ignores it otherwise.
    response = httpx.put(url, content=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)
    response.raise_for_status()
