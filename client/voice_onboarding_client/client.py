"""The Python client: one typed method per endpoint of the voices and speakers APIs.

    from voice_onboarding_client import VoiceOnboardingClient

    with VoiceOnboardingClient() as api:  # VOICE_API_URL / VOICE_API_KEY, or pass base_url= / api_key=
        api.create_voice("my-partner", "speaker-1", "recording.wav")
        voice = api.wait_voice("my-partner", "speaker-1", on_progress=print)

What it does for the caller:
- files above the direct limit go through the presigned S3 upload, and a 413 from a server with a lower
  limit falls back to it, so a caller never sees 413 for a voice, sample, speaker reference clip or
  dataset sample upload;
- every POST carries an `Idempotency-Key`, reused by its retries (the API replays the first response);
- 429/502/503/504 and dropped connections are retried with exponential backoff, honouring `Retry-After`;
- errors raise `ApiError` subclasses carrying the API's `detail` and status;
- downloads stream to a file, following the API's 307 to S3 without sending the API key there.
"""

import email.utils
import io
import mimetypes
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote, unquote

import httpx
from pydantic import BaseModel

from voice_onboarding_client import models as m
from voice_onboarding_client.errors import (
    ApiError,
    ConfigurationError,
    JobFailed,
    NothingToWaitFor,
    PayloadTooLarge,
    TransportError,
    WaitTimeout,
    error_class,
)

__all__ = ["ENDPOINTS", "Endpoint", "VoiceOnboardingClient"]

ENV_URL = "VOICE_API_URL"
ENV_KEY = "VOICE_API_KEY"
# Below the service's 5.5 MB cap (Lambda's 6 MB payload), leaving room for the multipart envelope.
DIRECT_UPLOAD_LIMIT = 5_000_000
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
IDEMPOTENCY_HEADER = "Idempotency-Key"

ModelT = TypeVar("ModelT", bound=BaseModel)
UploadProgress = Callable[[int, int], None]  # (bytes sent, total bytes)
AudioInput = str | os.PathLike[str] | bytes | IO[bytes]
Destination = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True)
class Endpoint:
    """One API operation. `ENDPOINTS` is checked against docs/openapi.json by the test suite, so a
    new route (e.g. a cancel endpoint) is one entry here plus a thin method below."""

    method: str
    path: str
    response: type[BaseModel] | None = None  # None: a file download or a non-JSON body
    many: bool = False  # the response is a JSON list of `response`
    form: tuple[str, ...] = ()  # form / multipart field names the client sends
    json_body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()


_VOICE = "/api/voices/{partner}/{voice}"
_SPEAKER = "/api/voice/models/speakers/{name}"

ENDPOINTS: dict[str, Endpoint] = {
    # voices
    "list_voices": Endpoint("GET", "/api/voices/{partner}", m.VoiceSummary, many=True),
    "create_voice": Endpoint(
        "POST",
        "/api/voices/{partner}",
        m.VoiceDetails,
        form=("name", "file", "creator_name", "creator_email", "upload_id"),
    ),
    "create_empty_voice": Endpoint(
        "POST", "/api/voices/{partner}/empty", m.VoiceDetails, form=("name", "creator_name", "creator_email")
    ),
    "get_voice": Endpoint("GET", _VOICE, m.VoiceDetails),
    "delete_voice": Endpoint("DELETE", _VOICE, m.Message),
    "cancel_voice_job": Endpoint("POST", _VOICE + "/cancel", m.Message),
    "rename_voice": Endpoint("PUT", _VOICE + "/name", m.VoiceDetails, form=("name",)),
    "upload_sample": Endpoint("POST", _VOICE + "/samples", m.SampleUploaded, form=("file", "upload_id")),
    "download_sample": Endpoint("GET", _VOICE + "/samples/{index}"),
    "delete_sample": Endpoint("DELETE", _VOICE + "/samples/{index}", m.Message),
    "download_bundle": Endpoint("GET", _VOICE + "/samples-bundle"),
    "split_voice": Endpoint("POST", _VOICE + "/split", m.JobAccepted, form=("max_samples", "sample_duration")),
    "embed_voice": Endpoint("POST", _VOICE + "/embed", m.JobAccepted, form=("tts_type",)),
    "list_test_samples": Endpoint("GET", _VOICE + "/test-samples", m.TestSampleFile, many=True, query=("tts_type",)),
    "download_test_sample": Endpoint("GET", _VOICE + "/test-samples/{filename}", query=("tts_type",)),
    "delete_test_files": Endpoint("DELETE", _VOICE + "/test-files/{tts_type}", m.Message),
    "set_preferred_sample": Endpoint("PUT", _VOICE + "/preferred-sample", m.VoiceDetails, form=("sample_index",)),
    "create_upload": Endpoint("POST", "/api/uploads/{partner}", m.UploadTicket, json_body=m.UploadRequest),
    "create_speaker_upload": Endpoint("POST", "/api/voice/uploads", m.UploadTicket, json_body=m.UploadRequest),
    # speakers, dataset, training, catalog
    "list_speakers": Endpoint("GET", "/api/voice/models/speakers", m.SpeakerSummary, many=True),
    "create_speaker": Endpoint(
        "POST",
        "/api/voice/models/speakers",
        m.SpeakerCreated,
        form=("name", "language", "description", "reference_audio", "upload_id"),
    ),
    "get_speaker": Endpoint("GET", _SPEAKER, m.SpeakerDetails),
    "delete_speaker": Endpoint("DELETE", _SPEAKER, m.Message),
    "download_reference": Endpoint("GET", _SPEAKER + "/reference"),
    "get_dataset": Endpoint("GET", _SPEAKER + "/dataset", m.DatasetInfo),
    "clear_dataset": Endpoint("DELETE", _SPEAKER + "/dataset", m.DatasetInfo),
    "upload_dataset_sample": Endpoint(
        "POST", _SPEAKER + "/dataset/sample", m.DatasetSampleCreated, form=("audio", "transcript", "upload_id")
    ),
    "deploy_speaker": Endpoint("POST", _SPEAKER + "/deploy", m.DeployResult),
    "undeploy_speaker": Endpoint("DELETE", _SPEAKER + "/deploy", m.DeployResult),
    "cancel_speaker_job": Endpoint("POST", _SPEAKER + "/cancel", m.Message),
    "train_speaker": Endpoint("POST", _SPEAKER + "/train", m.TrainAccepted, json_body=m.TrainRequest),
    "list_adapters": Endpoint("GET", _SPEAKER + "/adapters", m.AdapterInfo, many=True),
    "list_catalog": Endpoint("GET", "/api/voice/catalog", m.CatalogVoice, many=True),
    "health": Endpoint("GET", "/health"),
}


class _ProgressReader:
    """A binary file that reports how much of it was read (httpx streams multipart bodies by read())."""

    def __init__(self, raw: IO[bytes], total: int, callback: UploadProgress | None) -> None:
        self._raw = raw
        self._total = total
        self._callback = callback
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._sent += len(chunk)
        if self._callback is not None and chunk:
            self._callback(self._sent, self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._raw.seek(offset, whence)
        self._sent = position  # a retry rewinds: progress restarts with it
        return position

    def tell(self) -> int:
        return self._raw.tell()


@dataclass
class _Audio:
    filename: str
    size: int
    content_type: str
    opener: Callable[[], IO[bytes]]


def _audio(file: AudioInput, filename: str | None) -> _Audio:
    if isinstance(file, bytes):
        name = filename or "audio"
        data = file
        return _Audio(name, len(data), _content_type(name), lambda: io.BytesIO(data))
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
        name = filename or path.name
        return _Audio(name, path.stat().st_size, _content_type(name), lambda: path.open("rb"))
    stream = file
    start = stream.tell()
    size = stream.seek(0, os.SEEK_END) - start
    stream.seek(start)
    name = filename or Path(str(getattr(stream, "name", "audio"))).name

    class _Borrowed(io.RawIOBase):
        """The caller's stream, from where it was; closing it is the caller's business."""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data = stream.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)

        def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
            if whence == os.SEEK_SET:
                return stream.seek(start + offset) - start
            return stream.seek(offset, whence) - start

        def tell(self) -> int:
            return stream.tell() - start

        def close(self) -> None:
            pass

    return _Audio(name, size, _content_type(name), lambda: _Borrowed())  # type: ignore[arg-type, return-value]


def _content_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if absent/unparseable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - time.time()))


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def _storage_error(response: httpx.Response, method: str) -> ApiError:
    """S3 answers XML (`<Error><Code>..</Code><Message>..</Message></Error>`), not `{"detail": ...}`."""
    text = response.text
    code = re.search(r"<Code>(.*?)</Code>", text)
    message = re.search(r"<Message>(.*?)</Message>", text)
    detail = f"Storage refused the transfer: {code.group(1) if code else response.status_code}"
    if message:
        detail += f" ({message.group(1)})"
    return error_class(response.status_code)(
        response.status_code, detail, method=method, url=str(response.request.url).split("?")[0]
    )


class VoiceOnboardingClient:
    """Synchronous client. Thread-safe as httpx.Client is; use one per process and close it (or `with`)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        direct_upload_limit: int = DIRECT_UPLOAD_LIMIT,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        storage_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        base_url = base_url or os.environ.get(ENV_URL)
        api_key = api_key or os.environ.get(ENV_KEY)
        if not base_url:
            raise ConfigurationError(f"No API URL: pass base_url or set {ENV_URL} (e.g. http://127.0.0.1:8000)")
        if not api_key:
            raise ConfigurationError(f"No API key: pass api_key or set {ENV_KEY}")
        # Accept the URL with or without the /api suffix the examples use.
        base_url = base_url.rstrip("/").removesuffix("/api")
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.direct_upload_limit = direct_upload_limit
        self._sleep = sleep
        headers = {"X-Api-Key": api_key, "User-Agent": "voice-onboarding-client/0.1"}
        if http_client is not None:
            http_client.headers.update(headers)
            self._http = http_client
            self._owns_http = False
        else:
            self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
            self._owns_http = True
        # Presigned S3 URLs get a client of their own: the API key must never travel to storage.
        self._storage = storage_client or httpx.Client(timeout=httpx.Timeout(timeout, write=None))
        self._owns_storage = storage_client is None

    # --- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_http:
            self._http.close()
        if self._owns_storage:
            self._storage.close()

    def __enter__(self) -> "VoiceOnboardingClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport: retries, idempotency, errors -----------------------------------------------------
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = _retry_after(response)
            if after is not None:
                return after
        # Exponential backoff with jitter, so many clients throttled together do not retry in lockstep.
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def _send(
        self,
        method: str,
        target: str,
        *,
        query: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        files: Callable[[], dict[str, Any]] | None = None,
        json: Any = None,
        stream: bool = False,
        storage: bool = False,
    ) -> httpx.Response:
        """Send with retries; return a successful (2xx/3xx) response or raise. `files` is a factory so
        every attempt sends the file from its start. With `stream`, the caller closes the response.
        `storage`: a presigned S3 URL (no API key, no idempotency key, XML errors)."""
        headers: dict[str, str] = {}
        if method == "POST" and not storage:
            # One key per logical call: a retry of a request whose response was lost is replayed, not redone.
            headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex
        http = self._storage if storage else self._http
        query = {k: v for k, v in (query or {}).items() if v is not None} or None
        form = {k: v for k, v in (form or {}).items() if v is not None} or None
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                body = files() if files else None
                request = http.build_request(
                    method, target, params=query, data=form, files=body, json=json, headers=headers
                )
                response = http.send(request, stream=stream)
            except httpx.TransportError as error:
                if attempt >= self.max_retries:
                    where = target.split("?")[0]
                    raise TransportError(f"{method} {where}: {type(error).__name__}: {error}") from error
            else:
                retryable = response.status_code in RETRY_STATUSES or (
                    # "A request with this Idempotency-Key is still being processed": our own earlier attempt.
                    response.status_code == 409 and IDEMPOTENCY_HEADER in headers and "Retry-After" in response.headers
                )
                if not retryable or attempt >= self.max_retries:
                    if response.status_code >= 400:
                        if stream:
                            response.read()
                            response.close()
                        if storage:
                            raise _storage_error(response, method)
                        raise error_class(response.status_code)(
                            response.status_code,
                            _detail(response),
                            method=method,
                            url=target,
                            headers=dict(response.headers),
                        )
                    return response
                if stream:
                    response.close()
            self._sleep(self._delay(attempt, response))
            attempt += 1

    def _call(self, name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        endpoint = ENDPOINTS[name]
        target = endpoint.path.format(**{k: quote(str(v), safe="") for k, v in (params or {}).items()})
        return self._send(endpoint.method, target, **kwargs)

    def _json(self, name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        endpoint = ENDPOINTS[name]
        response = self._call(name, params, **kwargs)
        if endpoint.response is None:
            return response.json()
        if endpoint.many:
            return [endpoint.response.model_validate(item) for item in response.json()]
        return endpoint.response.model_validate(response.json())

    # --- downloads ---------------------------------------------------------------------------------
    def _download(self, name: str, params: dict[str, Any], dest: Destination, **kwargs: Any) -> Any:
        """Stream a file to `dest` (a path, a directory, or a binary file object). A 307 to S3 is
        followed without the API key. Returns the path written (or the file object)."""
        response = self._call(name, params, stream=True, **kwargs)
        try:
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers["Location"]
                response.close()
                response = self._send("GET", location, stream=True, storage=True)
            return _write_stream(response, dest)
        finally:
            response.close()

    # --- health ------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("health")  # type: ignore[no-any-return]

    # --- presigned uploads -------------------------------------------------------------------------
    def create_upload(
        self, partner: str, filename: str, size_bytes: int, content_type: str | None = None
    ) -> m.UploadTicket:
        body = m.UploadRequest(filename=filename, size_bytes=size_bytes, content_type=content_type)
        return self._json(  # type: ignore[no-any-return]
            "create_upload", {"partner": partner}, json=body.model_dump(exclude_none=True)
        )

    def create_speaker_upload(self, filename: str, size_bytes: int, content_type: str | None = None) -> m.UploadTicket:
        body = m.UploadRequest(filename=filename, size_bytes=size_bytes, content_type=content_type)
        return self._json(  # type: ignore[no-any-return]
            "create_speaker_upload", json=body.model_dump(exclude_none=True)
        )

    def upload_file(
        self,
        partner: str | None,
        file: AudioInput,
        *,
        filename: str | None = None,
        on_progress: UploadProgress | None = None,
    ) -> str:
        """Upload a file of any size straight to storage; returns the `upload_id` to create a voice or
        add a sample with (form field `upload_id`). `partner` None: an upload for a speaker's reference
        clip or dataset sample (the API key's own upload area)."""
        return self._upload(partner, _audio(file, filename), on_progress)

    def _upload(self, partner: str | None, audio: "_Audio", on_progress: UploadProgress | None) -> str:
        if partner is None:
            ticket = self.create_speaker_upload(audio.filename, audio.size, audio.content_type)
        else:
            ticket = self.create_upload(partner, audio.filename, audio.size, audio.content_type)
        with _opened(audio) as raw:
            reader = _ProgressReader(raw, audio.size, on_progress)
            self._send(
                "POST",
                ticket.url,
                form=ticket.fields,  # the policy's fields first, then the file (S3's rule)
                files=lambda: {"file": (audio.filename, reader, audio.content_type)},
                storage=True,
            )
        return ticket.upload_id

    def _with_audio(
        self,
        name: str,
        params: dict[str, Any],
        field: str,
        audio: "_Audio",
        form: dict[str, Any],
        on_progress: UploadProgress | None,
        partner: str | None = None,
    ) -> Any:
        """Direct multipart below the limit; presigned above it (the partner's upload area, or with no
        `partner` the speakers'), or when the server answers 413 (its direct limit is lower than ours)."""
        if audio.size <= self.direct_upload_limit:
            with _opened(audio) as raw:
                reader = _ProgressReader(raw, audio.size, on_progress)
                try:
                    return self._json(
                        name, params, form=form, files=lambda: {field: (audio.filename, reader, audio.content_type)}
                    )
                except PayloadTooLarge:
                    pass
        upload_id = self._upload(partner, audio, on_progress)
        return self._json(name, params, form={**form, "upload_id": upload_id})

    # --- voices ------------------------------------------------------------------------------------
    def list_voices(self, partner: str) -> list[m.VoiceSummary]:
        return self._json("list_voices", {"partner": partner})  # type: ignore[no-any-return]

    def create_voice(
        self,
        partner: str,
        name: str,
        file: AudioInput | None = None,
        *,
        filename: str | None = None,
        creator_name: str | None = None,
        creator_email: str | None = None,
        on_upload_progress: UploadProgress | None = None,
    ) -> m.VoiceDetails:
        """Create a voice; with audio, splitting and embedding start (see `wait_voice`)."""
        form = {"name": name, "creator_name": creator_name, "creator_email": creator_email}
        if file is None:
            return self._json("create_voice", {"partner": partner}, form=form)  # type: ignore[no-any-return]
        audio = _audio(file, filename)
        return self._with_audio(  # type: ignore[no-any-return]
            "create_voice", {"partner": partner}, "file", audio, form, on_upload_progress, partner
        )

    def create_empty_voice(
        self, partner: str, name: str, *, creator_name: str | None = None, creator_email: str | None = None
    ) -> m.VoiceDetails:
        form = {"name": name, "creator_name": creator_name, "creator_email": creator_email}
        return self._json("create_empty_voice", {"partner": partner}, form=form)  # type: ignore[no-any-return]

    def get_voice(self, partner: str, voice: str) -> m.VoiceDetails:
        return self._json("get_voice", {"partner": partner, "voice": voice})  # type: ignore[no-any-return]

    def delete_voice(self, partner: str, voice: str) -> m.Message:
        return self._json("delete_voice", {"partner": partner, "voice": voice})  # type: ignore[no-any-return]

    def cancel_voice_job(self, partner: str, voice: str) -> m.Message:
        """Stop the voice's running split or embedding (409 when none runs)."""
        return self._json("cancel_voice_job", {"partner": partner, "voice": voice})  # type: ignore[no-any-return]

    def rename_voice(self, partner: str, voice: str, new_name: str) -> m.VoiceDetails:
        return self._json(  # type: ignore[no-any-return]
            "rename_voice", {"partner": partner, "voice": voice}, form={"name": new_name}
        )

    def upload_sample(
        self,
        partner: str,
        voice: str,
        file: AudioInput,
        *,
        filename: str | None = None,
        on_upload_progress: UploadProgress | None = None,
    ) -> m.SampleUploaded:
        audio = _audio(file, filename)
        params = {"partner": partner, "voice": voice}
        return self._with_audio(  # type: ignore[no-any-return]
            "upload_sample", params, "file", audio, {}, on_upload_progress, partner
        )

    def download_sample(self, partner: str, voice: str, index: int, dest: Destination = ".") -> Any:
        return self._download("download_sample", {"partner": partner, "voice": voice, "index": index}, dest)

    def delete_sample(self, partner: str, voice: str, index: int) -> m.Message:
        return self._json(  # type: ignore[no-any-return]
            "delete_sample", {"partner": partner, "voice": voice, "index": index}
        )

    def download_bundle(self, partner: str, voice: str, dest: Destination = ".") -> Any:
        """The ZIP of every sample as `{index}.opus` plus `voice_info.json`."""
        return self._download("download_bundle", {"partner": partner, "voice": voice}, dest)

    def split_voice(
        self, partner: str, voice: str, *, max_samples: int | None = None, sample_duration: int | None = None
    ) -> m.JobAccepted:
        form = {"max_samples": max_samples, "sample_duration": sample_duration}
        return self._json("split_voice", {"partner": partner, "voice": voice}, form=form)  # type: ignore[no-any-return]

    def embed_voice(self, partner: str, voice: str, *, tts_type: str | None = None) -> m.JobAccepted:
        return self._json(  # type: ignore[no-any-return]
            "embed_voice", {"partner": partner, "voice": voice}, form={"tts_type": tts_type}
        )

    def list_test_samples(self, partner: str, voice: str, *, tts_type: str | None = None) -> list[m.TestSampleFile]:
        return self._json(  # type: ignore[no-any-return]
            "list_test_samples", {"partner": partner, "voice": voice}, query={"tts_type": tts_type}
        )

    def download_test_sample(
        self,
        partner: str,
        voice: str,
        filename: str,
        dest: Destination = ".",
        *,
        tts_type: str | None = None,
    ) -> Any:
        params = {"partner": partner, "voice": voice, "filename": filename}
        return self._download("download_test_sample", params, dest, query={"tts_type": tts_type})

    def delete_test_files(self, partner: str, voice: str, tts_type: str) -> m.Message:
        return self._json(  # type: ignore[no-any-return]
            "delete_test_files", {"partner": partner, "voice": voice, "tts_type": tts_type}
        )

    def set_preferred_sample(self, partner: str, voice: str, sample_index: int | None) -> m.VoiceDetails:
        """`None` clears the choice (the scores' best is used again)."""
        form = {"sample_index": "" if sample_index is None else str(sample_index)}
        return self._json(  # type: ignore[no-any-return]
            "set_preferred_sample", {"partner": partner, "voice": voice}, form=form
        )

    def download_embedding(self, partner: str, voice: str, dest: Destination = ".") -> Any:
        """The embedding ZIP of a voice (a presigned storage URL in its details)."""
        details = self.get_voice(partner, voice)
        if not details.embedding_zip_url:
            raise ApiError(404, "Voice has no embedding yet", method="GET", url=_VOICE)
        response = self._send("GET", details.embedding_zip_url, stream=True, storage=True)
        try:
            return _write_stream(response, dest)
        finally:
            response.close()

    # --- speakers ----------------------------------------------------------------------------------
    def list_speakers(self) -> list[m.SpeakerSummary]:
        return self._json("list_speakers")  # type: ignore[no-any-return]

    def create_speaker(
        self,
        name: str,
        language: str,
        reference_audio: AudioInput,
        *,
        description: str | None = None,
        filename: str | None = None,
        on_upload_progress: UploadProgress | None = None,
    ) -> m.SpeakerCreated:
        """Zero-shot clone from a 10-60 s reference clip (above the direct limit, e.g. a minute of
        48 kHz stereo WAV, through a presigned upload)."""
        audio = _audio(reference_audio, filename)
        form = {"name": name, "language": language, "description": description}
        return self._with_audio(  # type: ignore[no-any-return]
            "create_speaker", {}, "reference_audio", audio, form, on_upload_progress
        )

    def get_speaker(self, name: str) -> m.SpeakerDetails:
        return self._json("get_speaker", {"name": name})  # type: ignore[no-any-return]

    def delete_speaker(self, name: str) -> m.Message:
        return self._json("delete_speaker", {"name": name})  # type: ignore[no-any-return]

    def download_reference(self, name: str, dest: Destination = ".") -> Any:
        return self._download("download_reference", {"name": name}, dest)

    def get_dataset(self, name: str) -> m.DatasetInfo:
        return self._json("get_dataset", {"name": name})  # type: ignore[no-any-return]

    def clear_dataset(self, name: str) -> m.DatasetInfo:
        return self._json("clear_dataset", {"name": name})  # type: ignore[no-any-return]

    def upload_dataset_sample(
        self,
        name: str,
        audio: AudioInput,
        transcript: str,
        *,
        filename: str | None = None,
        on_upload_progress: UploadProgress | None = None,
    ) -> m.DatasetSampleCreated:
        source = _audio(audio, filename)
        return self._with_audio(  # type: ignore[no-any-return]
            "upload_dataset_sample", {"name": name}, "audio", source, {"transcript": transcript}, on_upload_progress
        )

    def deploy_speaker(self, name: str) -> m.DeployResult:
        return self._json("deploy_speaker", {"name": name})  # type: ignore[no-any-return]

    def undeploy_speaker(self, name: str) -> m.DeployResult:
        return self._json("undeploy_speaker", {"name": name})  # type: ignore[no-any-return]

    def cancel_speaker_job(self, name: str) -> m.Message:
        """Stop the speaker's running clone or training (409 when none runs)."""
        return self._json("cancel_speaker_job", {"name": name})  # type: ignore[no-any-return]

    def train_speaker(self, name: str, **hyperparameters: Any) -> m.TrainAccepted:
        """Start a LoRA run; omitted hyperparameters (rank, alpha, learning_rate, steps, dropout, seed)
        take the server's defaults."""
        body = m.TrainRequest(**hyperparameters).model_dump(exclude_none=True)
        return self._json("train_speaker", {"name": name}, json=body)  # type: ignore[no-any-return]

    def list_adapters(self, name: str) -> list[m.AdapterInfo]:
        return self._json("list_adapters", {"name": name})  # type: ignore[no-any-return]

    def list_catalog(self) -> list[m.CatalogVoice]:
        return self._json("list_catalog")  # type: ignore[no-any-return]

    # --- waiting -----------------------------------------------------------------------------------
    def wait_voice(
        self,
        partner: str,
        voice: str,
        *,
        stages: tuple[str, ...] = ("splitting", "embedding"),
        timeout: float = 1800.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        idle_grace: float = 30.0,
        on_progress: Callable[[m.VoiceDetails], None] | None = None,
    ) -> m.VoiceDetails:
        """Poll until every stage in `stages` is `completed`; raise `JobFailed` (with the API's reason)
        as soon as one is `failed`, `WaitTimeout` after `timeout` seconds, `NothingToWaitFor` when no
        stage runs or starts within `idle_grace` (embedding starts shortly after a split ends).
        Polls back off from `poll_interval` to `max_poll_interval`, and speed up again on each change."""

        def check(details: m.VoiceDetails) -> bool | None:
            for stage in stages:
                if getattr(details.status, stage) == "failed":
                    raise JobFailed(stage, getattr(details.status_reasons, stage), details)
            if all(getattr(details.status, stage) == "completed" for stage in stages):
                return True
            running = any(getattr(details.status, stage) == "in_progress" for stage in stages)
            return False if running else None

        def state(details: m.VoiceDetails) -> Any:
            return (details.status.model_dump(), details.progress and details.progress.get("step"))

        return self._wait(
            f"voice {voice}",
            lambda: self.get_voice(partner, voice),
            check,
            state,
            timeout,
            poll_interval,
            max_poll_interval,
            idle_grace,
            on_progress,
        )

    def wait_speaker(
        self,
        name: str,
        *,
        job: str = "clone",
        timeout: float = 3 * 3600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
        idle_grace: float = 30.0,
        on_progress: Callable[[m.SpeakerDetails], None] | None = None,
    ) -> m.SpeakerDetails:
        """Poll until the zero-shot clone (`job="clone"`: status `ready`) or the latest LoRA run
        (`job="train"`: training_status `completed`) ends; raise `JobFailed` with the reason on failure."""
        if job not in ("clone", "train"):
            raise ValueError("job must be 'clone' or 'train'")

        def check(details: m.SpeakerDetails) -> bool | None:
            if job == "clone":
                if details.status == "failed":
                    raise JobFailed("clone", details.status_reason, details)
                return True if details.status == "ready" else (False if details.status == "cloning" else None)
            if details.training_status == "failed":
                raise JobFailed("training", details.training_reason, details)
            if details.training_status == "completed":
                return True
            return False if details.training_status == "in_progress" else None

        def state(details: m.SpeakerDetails) -> Any:
            return (details.status, details.training_status, details.progress and details.progress.get("step"))

        return self._wait(
            f"speaker {name}",
            lambda: self.get_speaker(name),
            check,
            state,
            timeout,
            poll_interval,
            max_poll_interval,
            idle_grace,
            on_progress,
        )

    def _wait(
        self,
        what: str,
        fetch: Callable[[], ModelT],
        check: Callable[[ModelT], bool | None],
        state: Callable[[ModelT], Any],
        timeout: float,
        poll_interval: float,
        max_poll_interval: float,
        idle_grace: float,
        on_progress: Callable[[ModelT], None] | None,
    ) -> ModelT:
        """`check` says True (done), False (running) or None (nothing runs: allowed for `idle_grace`)."""
        started = time.monotonic()
        idle_since: float | None = None
        interval = poll_interval
        last_state: Any = object()
        while True:
            details = fetch()
            if on_progress is not None:
                on_progress(details)
            done = check(details)
            if done:
                return details
            now = time.monotonic()
            if done is None:
                idle_since = idle_since if idle_since is not None else now
                if now - idle_since >= idle_grace:
                    raise NothingToWaitFor(f"No job is running on {what}", details)
            else:
                idle_since = None
            if now - started >= timeout:
                raise WaitTimeout(f"{what}: still running after {timeout:.0f} s", details)
            current = state(details)
            interval = poll_interval if current != last_state else min(max_poll_interval, interval * 1.5)
            last_state = current
            self._sleep(min(interval, max(0.0, timeout - (now - started))))


@contextmanager
def _opened(audio: _Audio) -> Iterator[IO[bytes]]:
    raw = audio.opener()
    try:
        yield raw
    finally:
        raw.close()


def _filename_from(response: httpx.Response) -> str | None:
    disposition = response.headers.get("Content-Disposition", "")
    match = re.search(r"filename\*=UTF-8''([^;]+)", disposition) or re.search(r'filename="?([^";]+)"?', disposition)
    if not match:
        return None
    return Path(unquote(match.group(1))).name or None


def _write_stream(response: httpx.Response, dest: Destination) -> Any:
    if not isinstance(dest, str | os.PathLike):
        for chunk in response.iter_bytes(1 << 16):
            dest.write(chunk)
        return dest
    path = Path(dest)
    if path.is_dir():
        name = _filename_from(response) or Path(response.url.path).name or "download"
        path = path / name
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as out:
            for chunk in response.iter_bytes(1 << 16):
                out.write(chunk)
        partial.replace(path)  # never a half-written file under the final name
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
