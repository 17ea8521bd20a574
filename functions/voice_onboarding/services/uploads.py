"""Presigned uploads for files beyond Lambda's 6 MB payload: the client POSTs straight to S3 under
`uploads/`, then names the upload id when creating a voice or adding a sample."""

import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from botocore.exceptions import BotoCoreError, ClientError

from voice_onboarding.audio.ffmpeg import probe
from voice_onboarding.domain.errors import FileNotFound, InvalidRequest, PayloadTooLarge
from voice_onboarding.observability import logger
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys

_UPLOAD_ID = re.compile(r"^up_[A-Za-z0-9_-]{16,64}$")
# S3 user metadata travels as an HTTP header: keep the client's filename ASCII-safe.
_FILENAME_META = "filename"


def endpoint(partner: str) -> str:
    return f"/api/uploads/{partner}"


@dataclass(frozen=True)
class StagedUpload:
    path: Path
    filename: str | None


def create_upload(
    services: Services, partner: str, filename: str, size_bytes: int, content_type: str | None = None
) -> dict[str, Any]:
    cap = services.settings.max_presigned_upload_bytes
    if size_bytes > cap:
        raise PayloadTooLarge(f"File exceeds the {cap // 1_000_000} MB upload limit")
    upload_id = "up_" + secrets.token_urlsafe(18)
    ttl = services.settings.presigned_url_ttl_seconds
    fields = {f"x-amz-meta-{_FILENAME_META}": quote(filename, safe="")}
    if content_type:
        fields["Content-Type"] = content_type
    # A POST policy (not a PUT URL) so S3 itself refuses bodies above the cap.
    post = services.blobs.presigned_post(
        keys.staged_upload_key(partner, upload_id),
        fields,
        [["content-length-range", 1, cap], *({name: value} for name, value in fields.items())],
        ttl,
    )
    return {
        "upload_id": upload_id,
        "url": post["url"],
        "fields": post["fields"],
        "expires_in": ttl,
        "expires_at": int(services.clock()) + ttl,
        "max_bytes": cap,
    }


@contextmanager
def staged_upload(services: Services, partner: str, upload_id: str) -> Iterator[StagedUpload]:
    """Yield the uploaded file on local disk, checked (size, then an ffmpeg decode probe) before any
    processing; the staged object is removed afterwards, used or not."""
    if not _UPLOAD_ID.match(upload_id):
        raise InvalidRequest("upload_id is not valid")
    key = keys.staged_upload_key(partner, upload_id)
    head = services.blobs.head(key)
    if head is None:
        raise FileNotFound("Upload not found: POST the file to the presigned URL first")
    try:
        if int(head["ContentLength"]) > services.settings.max_presigned_upload_bytes:
            raise PayloadTooLarge("Uploaded file exceeds the upload limit")
        with tempfile.TemporaryDirectory() as workdir:
            path = Path(workdir) / "upload"
            services.blobs.download_file(key, path)
            probe(path)  # sniff: anything ffmpeg cannot read as audio stops here (422)
            filename = head.get("Metadata", {}).get(_FILENAME_META)
            yield StagedUpload(path=path, filename=unquote(filename) if filename else None)
    finally:
        # Quietly: the voice or sample may already exist; the lifecycle rule on uploads/ is the backstop.
        try:
            services.blobs.delete(key)
        except (ClientError, BotoCoreError) as error:
            logger.warning("staged upload left for the lifecycle rule", extra={"error": type(error).__name__})
