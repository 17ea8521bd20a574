"""Speaker use cases: zero-shot clone, LoRA dataset, training, and the shared voice catalog."""

import re
import secrets
import uuid
from pathlib import Path
from typing import Any

from voice_onboarding.audio.ffmpeg import AudioInfo, probe
from voice_onboarding.domain.errors import (
    InvalidAudio,
    InvalidRequest,
    SpeakerAlreadyExists,
    SpeakerBusy,
    SpeakerNotReady,
)
from voice_onboarding.domain.speaker import AdapterVersion, CatalogEntry, DatasetSample, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.observability import logger
from voice_onboarding.pipeline.jobs import JobKind, PipelineJob
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys

NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
REFERENCE_SECONDS = (10.0, 60.0)
DATASET_SAMPLE_SECONDS = (5.0, 30.0)
MAX_TRANSCRIPT_CHARS = 1000
# A LoRA run on fewer than this overfits to a handful of phrases; below it the dataset is "collecting".
READY_MIN_SAMPLES = 5
READY_MIN_SECONDS = 60.0
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {"rank": 8, "alpha": 16, "learning_rate": 1e-3, "steps": 200}
# (container names ffmpeg reports, codec) -> file extension and content type
_ACCEPTED_FORMATS = {"wav": ("wav", "audio/wav"), "mp3": ("mp3", "audio/mpeg")}


def validate_name(name: str) -> str:
    if not (1 <= len(name) <= 64 and NAME_PATTERN.match(name)):
        raise InvalidRequest("Speaker name must be lowercase letters and digits separated by single hyphens (max 64)")
    return name


def validate_language(language: str) -> str:
    if not LANGUAGE_PATTERN.match(language):
        raise InvalidRequest("language must look like en-US or hi-IN")
    return language


def _accepted_audio(path: Path, bounds: tuple[float, float], what: str) -> tuple[AudioInfo, str, str]:
    """WAV or MP3 only, judged by what ffmpeg decodes (not the filename), within `bounds` seconds."""
    info = probe(path)
    container = (info.container or "").split(",")[0]
    if container not in _ACCEPTED_FORMATS:
        raise InvalidAudio(f"{what} must be WAV or MP3 (got {container or info.codec})")
    low, high = bounds
    if info.duration is None or not low <= info.duration <= high:
        actual = "unknown" if info.duration is None else f"{info.duration:.1f} s"
        raise InvalidAudio(f"{what} must be {low:g}-{high:g} seconds long (got {actual})")
    extension, content_type = _ACCEPTED_FORMATS[container]
    return info, extension, content_type


def dataset_status(speaker: SpeakerRecord, samples: list[DatasetSample]) -> str:
    if speaker.training_status == JobStatus.IN_PROGRESS:
        return "training"
    if not samples:
        return "empty"
    total = sum(s.duration_seconds for s in samples)
    if len(samples) < READY_MIN_SAMPLES or total < READY_MIN_SECONDS:
        return "collecting"
    if speaker.training_status == JobStatus.COMPLETED:
        return "trained"
    return "ready"


def speaker_status(speaker: SpeakerRecord) -> str:
    return {
        JobStatus.IDLE: "created",
        JobStatus.IN_PROGRESS: "cloning",
        JobStatus.COMPLETED: "ready",
        JobStatus.FAILED: "failed",
    }[speaker.clone_status]


def _start_job(services: Services, speaker: SpeakerRecord, kind: JobKind, params: dict[str, Any]) -> str:
    job = PipelineJob(kind=kind, partner=speaker.owner, name=speaker.name, voice_id=speaker.speaker_id, params=params)
    field = "clone" if kind == JobKind.CLONE else "training"
    try:
        services.dispatcher.start(job)
    except Exception as error:  # noqa: BLE001 - a failed start must not leave the speaker busy
        logger.exception("speaker job start failed", extra={"kind": kind})
        services.speakers.update(
            speaker.owner,
            speaker.name,
            {f"{field}_status": JobStatus.FAILED.value, f"{field}_error": f"Could not start {kind.value}: {error}"},
        )
    return job.job_id


def create_speaker(
    services: Services, owner: str, name: str, language: str, description: str | None, reference: Path
) -> SpeakerRecord:
    validate_name(name)
    validate_language(language)
    if services.speakers.get(owner, name) is not None:
        raise SpeakerAlreadyExists()
    info, extension, content_type = _accepted_audio(reference, REFERENCE_SECONDS, "Reference audio")
    speaker_id = uuid.uuid4().hex
    reference_key = keys.speaker_reference_key(owner, speaker_id, extension)
    now = utc_now_iso()
    record = SpeakerRecord(
        owner=owner,
        name=name,
        speaker_id=speaker_id,
        language=language,
        description=description,
        created_at=now,
        updated_at=now,
        reference_key=reference_key,
        reference_content_type=content_type,
        reference_duration=round(info.duration or 0.0, 2),
        tts_type=services.settings.default_tts_type,
        clone_status=JobStatus.IN_PROGRESS,
    )
    services.blobs.put_file(reference_key, reference, content_type=content_type)
    try:
        services.speakers.create(record)
    except BaseException:
        services.blobs.delete(reference_key)  # lost the name race: no orphan audio
        raise
    _start_job(services, record, JobKind.CLONE, {"tts_type": record.tts_type})
    return record


def delete_speaker(services: Services, owner: str, name: str) -> None:
    speaker = services.speakers.require(owner, name)
    if speaker.is_busy:
        raise SpeakerBusy()
    # Undeploy first: the catalog must never point at a speaker that is gone.
    if speaker.voice_sample_uuid:
        services.speakers.unpublish(speaker.voice_sample_uuid)
    speaker = services.speakers.delete(owner, name)
    services.speakers.delete_samples(owner, name, services.speakers.list_samples(owner, name))
    services.blobs.delete_prefix(keys.speaker_prefix(owner, speaker.speaker_id))


def add_dataset_sample(services: Services, owner: str, name: str, audio: Path, transcript: str) -> DatasetSample:
    speaker = services.speakers.require(owner, name)
    transcript = transcript.strip()
    if not transcript:
        raise InvalidRequest("transcript must not be empty")
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidRequest(f"transcript must be at most {MAX_TRANSCRIPT_CHARS} characters")
    info, extension, content_type = _accepted_audio(audio, DATASET_SAMPLE_SECONDS, "Dataset sample")
    sample_id = "smp_" + secrets.token_hex(6)
    object_key = keys.dataset_sample_key(owner, speaker.speaker_id, sample_id, extension)
    sample = DatasetSample(
        sample_id=sample_id,
        duration_seconds=round(info.duration or 0.0, 2),
        transcript=transcript,
        object_key=object_key,
        created_at=utc_now_iso(),
    )
    services.blobs.put_file(object_key, audio, content_type=content_type)
    try:
        services.speakers.add_sample(owner, name, sample)
    except BaseException:
        services.blobs.delete(object_key)
        raise
    return sample


def clear_dataset(services: Services, owner: str, name: str) -> int:
    speaker = services.speakers.require(owner, name)
    if speaker.training_status == JobStatus.IN_PROGRESS:
        raise SpeakerBusy()
    samples = services.speakers.list_samples(owner, name)
    services.speakers.delete_samples(owner, name, samples)
    services.blobs.delete(*[s.object_key for s in samples])
    return len(samples)


def start_training(services: Services, owner: str, name: str, hyperparameters: dict[str, Any]) -> AdapterVersion:
    speaker = services.speakers.require(owner, name)
    if speaker.is_busy:
        raise SpeakerBusy()
    samples = services.speakers.list_samples(owner, name)
    if dataset_status(speaker, samples) not in ("ready", "trained"):
        raise InvalidRequest(
            f"Dataset not ready for training: need at least {READY_MIN_SAMPLES} samples and "
            f"{READY_MIN_SECONDS:g} s of audio"
        )
    version = max((a.version for a in speaker.adapters), default=0) + 1
    adapter = AdapterVersion(
        version=version,
        status=JobStatus.IN_PROGRESS,
        tts_type=speaker.tts_type,
        hyperparameters=hyperparameters,
        created_at=utc_now_iso(),
    )
    # Conditional on idle + the version we read: two train requests can never both start.
    speaker = services.speakers.update(
        owner,
        name,
        {
            "training_status": JobStatus.IN_PROGRESS.value,
            "training_error": None,
            "adapters": [a.model_dump(mode="json") for a in [*speaker.adapters, adapter]],
        },
        require_idle=True,
        expected_version=speaker.version,
    )
    _start_job(
        services,
        speaker,
        JobKind.TRAIN_LORA,
        {
            "tts_type": speaker.tts_type,
            "hyperparameters": hyperparameters,
            "adapter_version": version,
        },
    )
    return adapter


def deploy(services: Services, owner: str, name: str) -> SpeakerRecord:
    speaker = services.speakers.require(owner, name)
    if speaker.clone_status != JobStatus.COMPLETED:
        raise SpeakerNotReady()
    voice_sample_uuid = speaker.voice_sample_uuid or "vs_" + secrets.token_hex(8)
    services.speakers.publish(
        CatalogEntry(
            voice_sample_uuid=voice_sample_uuid,
            name=speaker.name,
            language=speaker.language,
            description=speaker.description,
            owner=owner,
            deployed_at=utc_now_iso(),
        )
    )
    return services.speakers.update(owner, name, {"deployed": True, "voice_sample_uuid": voice_sample_uuid})


def undeploy(services: Services, owner: str, name: str) -> SpeakerRecord:
    speaker = services.speakers.require(owner, name)
    if speaker.voice_sample_uuid:
        services.speakers.unpublish(speaker.voice_sample_uuid)
    return services.speakers.update(owner, name, {"deployed": False})
