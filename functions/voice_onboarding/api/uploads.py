"""Spooling multipart uploads to a temp file with a size cap (Lambda's payload limit)."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from voice_onboarding.domain.errors import InvalidAudio, PayloadTooLarge


@contextmanager
def spooled_upload(
    upload: UploadFile, max_bytes: int, presigned_endpoint: str | None = None, cli_command: str | None = None
) -> Iterator[Path]:
    """Yield the upload as a file on disk; refuse empty files and files above the direct cap (413,
    naming `presigned_endpoint` when the route also takes an `upload_id`, and the CLI command that
    takes that path by itself)."""
    if upload.size is not None and upload.size > max_bytes:
        raise PayloadTooLarge(_too_large_detail(max_bytes, presigned_endpoint, cli_command))
    suffix = Path(upload.filename or "").suffix[:10]
    with tempfile.TemporaryDirectory() as workdir:
        target = Path(workdir) / f"upload{suffix}"
        with target.open("wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, length=1 << 20)
        size = target.stat().st_size
        if size == 0:
            raise InvalidAudio("Uploaded file is empty")
        if size > max_bytes:
            raise PayloadTooLarge(_too_large_detail(max_bytes, presigned_endpoint, cli_command))
        yield target


def _too_large_detail(max_bytes: int, presigned_endpoint: str | None, cli_command: str | None) -> str:
    detail = f"File exceeds the {max_bytes // 1_000_000} MB direct upload limit"
    if presigned_endpoint:
        detail += f"; for larger files POST {presigned_endpoint} for a presigned upload, then send its upload_id"
    if cli_command:
        detail += f" (the CLI does both: {cli_command})"
    return detail
