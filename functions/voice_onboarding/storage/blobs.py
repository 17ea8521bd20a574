"""S3 blob store for audio: every object read/write of the service goes through here."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from voice_onboarding.content_disposition import content_disposition


class BlobStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self.s3 = s3_client
        self.bucket = bucket

    def put_file(self, key: str, path: Path, content_type: str = "audio/ogg") -> None:
        self.s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def put_stream(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        """Upload a file object (multipart above boto3's threshold), reading it from its current position."""
        self.s3.upload_fileobj(stream, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return body

    def copy(self, source: str, target: str, content_type: str | None = None) -> None:
        """Server-side copy; `content_type` replaces the source's metadata (else it is kept)."""
        extra: dict[str, Any] = {"ContentType": content_type, "MetadataDirective": "REPLACE"} if content_type else {}
        self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}, **extra)

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD (ContentLength, Metadata, ...), or None if there is none."""
        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def presigned_post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> dict[str, Any]:
        """A browser-style POST policy: S3 itself enforces `conditions` (e.g. content-length-range)."""
        return dict(
            self.s3.generate_presigned_post(
                Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        )

    def download_file(self, key: str, path: Path) -> None:
        self.s3.download_file(self.bucket, key, str(path))

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def size(self, key: str) -> int | None:
        try:
            return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def delete(self, *keys: str) -> None:
        # delete_objects takes at most 1000 keys per call.
        key_list = list(keys)
        for start in range(0, len(key_list), 1000):
            chunk = key_list[start : start + 1000]
            if chunk:
                self.s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
                )

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list_keys(prefix))
        self.delete(*keys)
        return len(keys)

    def presigned_get(self, key: str, expires_in: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            # S3 echoes this as the download's header: the same RFC 6266 form as the API's own.
            params["ResponseContentDisposition"] = content_disposition(filename)
        url: str = self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    def presigned_put(self, key: str, expires_in: int, content_type: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ContentType"] = content_type
        url: str = self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        return url
