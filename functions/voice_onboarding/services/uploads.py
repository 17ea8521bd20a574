"""Presigned uploads for files beyond Lambda's 6 MB payload: the client POSTs straight to S3 under
`uploads/`, then names the upload id when creating a voice or adding a sample."""

import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voice_onboarding.domain.errors import FileNotFound, InvalidRequest, PayloadTooLarge
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys

_UPLOAD_ID = re.compile(r"^up_[A-Za-z0-9_-]{16,64}$")


def create_upload(services: Services, partner: str, size_bytes: int) -> dict[str, Any]:
    cap = services.settings.max_presigned_upload_bytes
    if size_bytes > cap:
        raise PayloadTooLarge(f"File exceeds the {cap // 1_000_000} MB upload limit")
    upload_id = "up_" + secrets.token_urlsafe(18)
    ttl = services.settings.presigned_url_ttl_seconds
    # A POST policy (not a PUT URL) so S3 itself refuses bodies above the cap.
    post = services.s3.generate_presigned_post(
        Bucket=services.blobs.bucket,
        Key=keys.staged_upload_key(partner, upload_id),
        Conditions=[["content-length-range", 1, cap]],
        ExpiresIn=ttl,
    )
    return {"upload_id": upload_id, "url": post["url"], "fields": post["fields"], "expires_in": ttl, "max_bytes": cap}


@contextmanager
def staged_upload(services: Services, partner: str, upload_id: str) -> Iterator[Path]:
    """Yield the uploaded file on local disk; the staged object is removed afterwards, used or not."""
    if not _UPLOAD_ID.match(upload_id):
        raise InvalidRequest("upload_id is not valid")
    key = keys.staged_upload_key(partner, upload_id)
    size = services.blobs.size(key)
    if size is None:
        raise FileNotFound("Upload not found: PUT the file to the presigned URL first (it expires after a day)")
    if size > services.settings.max_presigned_upload_bytes:
        services.blobs.delete(key)
        raise PayloadTooLarge("Uploaded file exceeds the upload limit")
    try:
        with tempfile.TemporaryDirectory() as workdir:
            path = Path(workdir) / "upload"
            services.blobs.download_file(key, path)
            yield path
    finally:
        services.blobs.delete(key)
