"""Voice use cases. Each takes the Services it needs; the HTTP layer only maps requests to these."""

import json
import re
import tempfile
import unicodedata
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from aws_lambda_powertools import Logger

from voice_onboarding.audio.ffmpeg import transcode_to_opus
from voice_onboarding.contract.gpu import parse_test_filename
from voice_onboarding.domain.engines import require_engine
from voice_onboarding.domain.errors import (
    FileNotFound,
    InvalidRequest,
    SampleNotFound,
    VoiceAlreadyExists,
    VoiceLocked,
    VoiceNotFound,
)
from voice_onboarding.domain.jobs import JobKind, Stage, VoiceJob
from voice_onboarding.domain.voice import JobStatus, SampleOrigin, SampleRecord, VoiceRecord, utc_now_iso
from voice_onboarding.services import cleanup, executions
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys

logger = Logger(service="voice-onboarding", child=True)

MAX_NAME_LENGTH = 255
MAX_NAME_BYTES = 1024 - len(keys.voice_sk(""))  # DynamoDB's sort key limit, less the prefix
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_TTS_TYPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def validate_voice_name(name: str) -> str:
    """Any Unicode text that stays addressable as one URL path segment and fits a table key."""
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise InvalidRequest(f"Voice name must be 1-{MAX_NAME_LENGTH} characters")
    # Names are URL path segments: a slash or control character would make the voice unreachable,
    # and clients and proxies resolve "." and ".." segments away before the request arrives.
    if "/" in cleaned or "\\" in cleaned or any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise InvalidRequest("Voice name must not contain slashes or control characters")
    if cleaned in (".", ".."):
        raise InvalidRequest("Voice name must not be '.' or '..'")
    # 255 four-byte characters (emoji) would overflow the table's 1024-byte sort key.
    if len(cleaned.encode()) > MAX_NAME_BYTES:
        raise InvalidRequest(f"Voice name must be at most {MAX_NAME_BYTES} bytes in UTF-8")
    return cleaned


def validate_tts_type(tts_type: str) -> str:
    if not _TTS_TYPE.match(tts_type):
        raise InvalidRequest("tts_type must be 1-32 lowercase letters, digits, '-' or '_'")
    return tts_type


def validate_filename(filename: str) -> str:
    """Test-sample filenames come from the URL: never let one climb out of its folder."""
    if not _SAFE_FILENAME.match(filename) or ".." in filename:
        raise FileNotFound()
    return filename


def _dispatch(services: Services, record: VoiceRecord, kind: JobKind, params: dict) -> str:
    """Start a pipeline job for a voice already marked in_progress (its first stage). If the start
    itself fails the status must not stay in_progress forever: mark it failed with the reason."""
    job = kind.stages[0]
    pipeline_job = VoiceJob(
        kind=kind, partner=record.partner, name=record.name, voice_id=record.voice_id, params=params
    )
    try:
        execution = services.dispatcher.start(pipeline_job)
    except Exception as error:
        logger.exception("pipeline start failed", extra={"job": pipeline_job.model_dump(mode="json")})
        services.voices.finish_job(
            record.partner, record.name, job, JobStatus.FAILED, error=f"Could not start {job}: {error}"
        )
        return pipeline_job.job_id
    executions.record_started(services, pipeline_job, execution)
    logger.info("pipeline started", extra={"job_id": pipeline_job.job_id, "kind": kind, "execution": execution})
    return pipeline_job.job_id


def create_voice(
    services: Services,
    partner: str,
    name: str,
    audio_path: Path | None = None,
    uploaded_name: str | None = None,
    creator_name: str | None = None,
    creator_email: str | None = None,
) -> VoiceRecord:
    name = validate_voice_name(name)
    if services.voices.get(partner, name) is not None:
        raise VoiceAlreadyExists()
    now = utc_now_iso()
    record = VoiceRecord(
        partner=partner,
        name=name,
        voice_id=uuid.uuid4().hex,
        created_at=now,
        updated_at=now,
        embedding_type=services.settings.default_tts_type,
        creator_name=creator_name,
        creator_email=creator_email,
    )
    if audio_path is None:
        services.voices.create(record)
        return record

    original_key = keys.original_key(partner, record.voice_id)
    voice_prefix = keys.voice_prefix(partner, record.voice_id)
    with tempfile.TemporaryDirectory() as workdir:
        encoded = Path(workdir) / "original.opus"
        duration = transcode_to_opus(audio_path, encoded)  # bad audio fails here, before any write
        stem = Path(uploaded_name or "recording").stem or "recording"
        record = record.model_copy(
            update={
                "original_filename": f"{stem}.opus",
                "original_uploaded_name": uploaded_name or "recording",
                "original_duration": duration,
                # Born locked: nobody can rename/delete it between creation and the job start.
                Stage.SPLITTING.status_field: JobStatus.IN_PROGRESS,
                "progress": {"job": Stage.SPLITTING.value, "step": "queued", "updated_at": now},
            }
        )
        # Marker first: if the create loses the name race or S3/DynamoDB fails half-way, no audio outlives it.
        with cleanup.written_under(services, cleanup.mark(services, voice_prefix, partner, record.voice_id)):
            services.blobs.put_file(original_key, encoded)
            services.voices.create(record)
    _dispatch(
        services,
        record,
        JobKind.SPLIT_AND_EMBED,
        {
            "max_samples": 25,
            "sample_duration": 15,
            "tts_type": record.embedding_type,
        },
    )
    return services.voices.require(partner, name)


def delete_voice(services: Services, partner: str, name: str) -> None:
    """Item first, then objects. A marker written before the item goes makes the object deletion
    survive an S3 failure: the voice is gone for the client (200), the sweeper finishes the job."""
    current = services.voices.require(partner, name)
    if current.is_locked:
        raise VoiceLocked()
    prefix = keys.voice_prefix(partner, current.voice_id)
    marker = cleanup.mark(services, prefix, partner, current.voice_id)
    with cleanup.removing_owner(services, marker):
        record = services.voices.delete(partner, name)
    if record.voice_id != current.voice_id:  # deleted and recreated under the same name meanwhile
        cleanup.clear_quietly(services, marker)  # nothing of the voice we read was deleted
        marker = cleanup.mark(services, keys.voice_prefix(partner, record.voice_id), partner, record.voice_id)
    removed = cleanup.delete_covered(services, marker)
    if removed is None:
        return
    logger.info("voice deleted", extra={"partner": partner, "voice": name, "objects_removed": removed})


def rename_voice(services: Services, partner: str, name: str, new_name: str) -> VoiceRecord:
    new_name = validate_voice_name(new_name)
    if new_name == name:
        return services.voices.require(partner, name)
    return services.voices.rename(partner, name, new_name)


def add_sample(services: Services, partner: str, name: str, audio_path: Path) -> SampleRecord:
    record = services.voices.require(partner, name)
    with tempfile.TemporaryDirectory() as workdir:
        encoded = Path(workdir) / "sample.opus"
        duration = transcode_to_opus(audio_path, encoded, normalise=True)  # to the split samples' loudness
        # Upload under a unique staging key first: the index is only known once the
        # conditional write that claims it succeeds. Staging lives under uploads/, which the
        # bucket's lifecycle rule empties, so even a failed compensation leaves nothing for long.
        staging_key = keys.sample_staging_key(partner, uuid.uuid4().hex)
        services.blobs.put_file(staging_key, encoded)
    try:
        placed = services.voices.append_sample(
            partner, name, SampleRecord(index=0, duration=duration, origin=SampleOrigin.UPLOAD)
        )
    except BaseException:
        _delete_quietly(services, staging_key)
        raise
    final_key = keys.sample_key(partner, record.voice_id, placed.index)
    try:
        services.blobs.copy(staging_key, final_key)
    except BaseException:
        # The item lists a sample whose audio never landed: take the sample back out.
        try:
            services.voices.remove_sample(partner, name, placed.index)
        except Exception:  # report the copy failure, not the compensation's
            logger.exception("sample listed without audio", extra={"voice": name, "index": placed.index})
        _delete_quietly(services, staging_key)
        raise
    _delete_quietly(services, staging_key)
    owner = services.voices.get(partner, name)
    if owner is None or owner.voice_id != record.voice_id:
        # Renamed while we copied? The sample moved with the item: keep it. (Looked up by id, not
        # name; the scan of one partner's voices only happens on this rare path.)
        owner = services.voices.find_by_id(partner, record.voice_id)
    if owner is None:
        # Deleted while we copied: its prefix may already be swept, so this object would be orphaned.
        _delete_quietly(services, final_key)
        raise VoiceNotFound()
    return placed


def _delete_quietly(services: Services, key: str) -> None:
    try:
        services.blobs.delete(key)
    except cleanup.AWS_ERRORS as error:
        logger.warning("staged object left for the lifecycle rule", extra={"key": key, "error": type(error).__name__})


def get_sample_audio(services: Services, partner: str, name: str, index: int) -> bytes:
    record = services.voices.require(partner, name)
    if record.sample(index) is None:
        raise SampleNotFound()
    data = services.blobs.get_bytes(keys.sample_key(partner, record.voice_id, index))
    if data is None:
        raise SampleNotFound()
    return data


def delete_sample(services: Services, partner: str, name: str, index: int) -> None:
    """Same order and marker as delete_voice; the marker keeps the object while the voice lists it."""
    current = services.voices.require(partner, name)
    if current.is_locked:
        raise VoiceLocked()
    if current.sample(index) is None:
        raise SampleNotFound()
    key = keys.sample_key(partner, current.voice_id, index)
    marker = cleanup.mark(services, key, partner, current.voice_id, sample_index=index)
    with cleanup.removing_owner(services, marker):
        services.voices.remove_sample(partner, name, index)
    cleanup.delete_covered(services, marker)


def write_samples_bundle(
    services: Services, partner: str, name: str, out: BinaryIO, voice_info: Callable[[VoiceRecord], dict[str, Any]]
) -> VoiceRecord:
    """Write the ZIP (`{index}.opus` per sample and `voice_info.json`, the voice as `voice_info` maps it)
    to `out`, one sample in memory at a time; `out` may be a spooled temp file, so a large bundle never
    sits whole in memory."""
    record = services.voices.require(partner, name)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for sample in sorted(record.samples, key=lambda s: s.index):
            data = services.blobs.get_bytes(keys.sample_key(partner, record.voice_id, sample.index))
            if data is not None:
                archive.writestr(f"{sample.index}.opus", data)
        archive.writestr("voice_info.json", json.dumps(voice_info(record), indent=2))
    return record


def bundle_filename(record: VoiceRecord) -> str:
    return f"{record.name}-samples.zip"


def store_bundle(services: Services, record: VoiceRecord, bundle: BinaryIO) -> str:
    """Park a bundle too large to return inline in S3 and give a presigned link to it. One key per
    voice, overwritten by each large download: storage stays bounded and goes with the voice."""
    key = keys.bundle_key(record.partner, record.voice_id, "samples")
    services.blobs.put_stream(key, bundle, "application/zip")
    return services.blobs.presigned_get(
        key, services.settings.presigned_url_ttl_seconds, filename=bundle_filename(record)
    )


def set_preferred_sample(services: Services, partner: str, name: str, index: int | None) -> VoiceRecord:
    return services.voices.set_preferred_sample(partner, name, index)


def start_split(
    services: Services, partner: str, name: str, max_samples: int, sample_duration: int
) -> tuple[VoiceRecord, str]:
    record = services.voices.require(partner, name)
    if not record.has_original:
        raise InvalidRequest("Voice has no original recording to split")
    record = services.voices.start_job(partner, name, Stage.SPLITTING)
    job_id = _dispatch(
        services,
        record,
        JobKind.SPLIT,
        {
            "max_samples": max_samples,
            "sample_duration": sample_duration,
        },
    )
    return services.voices.require(partner, name), job_id


def start_embed(services: Services, partner: str, name: str, tts_type: str | None) -> tuple[VoiceRecord, str]:
    record = services.voices.require(partner, name)
    chosen = tts_type or record.embedding_type or services.settings.default_tts_type
    require_engine(chosen)
    if not record.samples:
        raise InvalidRequest("Voice has no samples to embed")
    record = services.voices.start_job(partner, name, Stage.EMBEDDING)
    job_id = _dispatch(services, record, JobKind.EMBED, {"tts_type": chosen})
    return services.voices.require(partner, name), job_id


def list_test_samples(services: Services, partner: str, name: str, tts_type: str) -> list[str]:
    """Filenames of the voice's test samples for `tts_type`, by sample, then sentence."""
    record = services.voices.require(partner, name)
    prefix = keys.test_samples_prefix(partner, record.voice_id, validate_tts_type(tts_type))
    filenames = [key[len(prefix) :] for key in services.blobs.list_keys(prefix)]
    return sorted(filenames, key=lambda f: (*(parse_test_filename(f) or (0, 0)), f))


def get_test_sample(services: Services, partner: str, name: str, filename: str, tts_type: str) -> bytes:
    record = services.voices.require(partner, name)
    key = keys.test_samples_prefix(partner, record.voice_id, validate_tts_type(tts_type)) + validate_filename(filename)
    data = services.blobs.get_bytes(key)
    if data is None:
        raise FileNotFound("Test sample not found")
    return data


def delete_test_files(services: Services, partner: str, name: str, tts_type: str) -> int:
    record = services.voices.require(partner, name)
    if record.is_locked:
        raise VoiceLocked()
    removed = services.blobs.delete_prefix(
        keys.test_samples_prefix(partner, record.voice_id, validate_tts_type(tts_type))
    )
    info = record.embedding_info
    if info and info.get("tts_type") == tts_type and info.get("test_samples"):
        services.voices.update_unlocked(partner, name, {"embedding_info": {**info, "test_samples": []}})
    return removed
