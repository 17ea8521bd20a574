"""Shared helpers of the pipeline and GPU-dispatch tests: voices with samples, a fake GPU worker."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import httpx
import respx

from voice_onboarding.domain.jobs import JobKind, VoiceJob
from voice_onboarding.domain.voice import JobStatus, SampleOrigin, SampleRecord, VoiceRecord, utc_now_iso
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys
from voice_onboarding.storage.blobs import BlobStore

PARTNER = "my-partner"


def make_voice(
    services: Services,
    name: str = "speaker-1",
    samples: int = 3,
    embedding: JobStatus = JobStatus.IN_PROGRESS,
    splitting: JobStatus = JobStatus.IDLE,
    **fields: Any,
) -> VoiceRecord:
    now = utc_now_iso()
    record = VoiceRecord(
        partner=PARTNER,
        name=name,
        voice_id=f"vid-{name}",
        created_at=now,
        updated_at=now,
        embedding_type="resemblyzer",
        embedding_status=embedding,
        splitting_status=splitting,
        samples=[
            SampleRecord(index=i, duration=5.0, origin=SampleOrigin.SPLIT, quality={"snr_db": 30.0 - i})
            for i in range(1, samples + 1)
        ],
        next_sample_index=samples + 1,
        **fields,
    )
    services.voices.create(record)
    for i in range(1, samples + 1):
        services.blobs.put_bytes(keys.sample_key(PARTNER, record.voice_id, i), f"sample {i}".encode())
    return record


def job_for(voice: VoiceRecord, kind: JobKind = JobKind.EMBED, **params: Any) -> VoiceJob:
    return VoiceJob(
        kind=kind,
        partner=voice.partner,
        name=voice.name,
        voice_id=voice.voice_id,
        params=params or {"tts_type": "resemblyzer"},
    )


def key_of(url: str, bucket: str) -> str:
    """The S3 key a presigned URL addresses (virtual-host or path style)."""
    path = urlparse(url).path.lstrip("/")
    return path.removeprefix(f"{bucket}/")


class FakeWorker:
    """Stands in for gpu_worker.handler.handler: checks the contract's input and writes the outputs
    through the moto S3 client (as the real worker would through the presigned PUT URLs)."""

    def __init__(self, services: Services, fail_with: str | None = None, best: int | None = None) -> None:
        self.services = services
        self.fail_with = fail_with
        self.best = best
        self.jobs: list[dict[str, Any]] = []

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        self.jobs.append(job)
        if self.fail_with:
            return {"error": self.fail_with}
        inp = job["input"]
        assert inp["kind"] == "embed" and inp["samples"] and inp["sentences"]
        bucket = self.services.blobs.bucket
        indices = [s["index"] for s in inp["samples"]]
        for sample in inp["samples"]:
            assert self.services.blobs.get_bytes(key_of(sample["url"], bucket)) is not None
        test_samples = []
        for index in indices:
            name = f"test_{index}_1.opus"
            self.services.blobs.put_bytes(key_of(inp["outputs"]["test_samples"][name], bucket), b"opus")
            test_samples.append({"sample_index": index, "sentence_index": 1, "filename": name})
        self.services.blobs.put_bytes(key_of(inp["outputs"]["embedding_zip"], bucket), b"zip")
        best = self.best or indices[-1]
        scores = [{"sample_index": best, "score": 0.9, "similarity": 0.9, "flagged": False, "reason": None}]
        scores += [
            {"sample_index": i, "score": 0.5, "similarity": 0.5, "flagged": i == indices[0], "reason": None}
            for i in indices
            if i != best
        ]
        return {
            "tts_type": inp["tts_type"],
            "sample_scores": scores,
            "test_samples": test_samples,
            "preferred_sample_index": best,
            "embedding_dim": 256,
            "timings": {},
        }


EXPIRED = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


@contextmanager
def s3_over_http(
    blobs: BlobStore, expired: set[str] | Callable[[httpx.Request], bool] | None = None
) -> Iterator[list[tuple[str, int]]]:
    """What the worker's httpx GET/PUT on a presigned URL would do against S3, done on moto. URLs in
    `expired` (or requests it returns True for) get S3's 403, as if signed by a session that has ended.
    Yields (method, status) of each request."""
    seen: list[tuple[str, int]] = []
    dead = {str(httpx.URL(url)) for url in expired} if isinstance(expired, set) else set()
    is_dead = expired if callable(expired) else (lambda request: str(request.url) in dead)

    def serve(request: httpx.Request) -> httpx.Response:
        response = _serve(request)
        seen.append((request.method, response.status_code))
        return response

    def _serve(request: httpx.Request) -> httpx.Response:
        if is_dead(request):
            return httpx.Response(403, content=EXPIRED)
        key = key_of(str(request.url), blobs.bucket)
        if request.method == "PUT":
            blobs.put_bytes(key, request.content, request.headers.get("content-type", ""))
            return httpx.Response(200)
        data = blobs.get_bytes(key)
        return httpx.Response(200, content=data) if data is not None else httpx.Response(404)

    with respx.mock(assert_all_called=False) as router:
        router.route(host__regex=r"s3\.amazonaws\.com$").mock(side_effect=serve)
        yield seen
