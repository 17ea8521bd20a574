"""The LoRA dataset of a speaker: samples (audio + transcript), their status, clearing.

Dataset status, from the samples and the training state:
    empty       no samples
    collecting  fewer than READY_MIN_SAMPLES samples or less than READY_MIN_SECONDS of audio in total
    ready       enough to train (and not exactly the set the latest completed adapter was trained on)
    training    a train_lora job is running
    trained     the latest completed adapter was trained on exactly the current samples
"""

import secrets
from dataclasses import dataclass
from pathlib import Path

from voice_onboarding.domain.jobs import OwnerType
from voice_onboarding.domain.speaker import AdapterVersion, DatasetSample, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.observability import logger
from voice_onboarding.services import cleanup
from voice_onboarding.services.container import Services
from voice_onboarding.services.speaker_validation import DATASET_SAMPLE_SECONDS, accepted_audio, validate_transcript
from voice_onboarding.storage import keys
from voice_onboarding.storage.cleanup_repo import CleanupMarker

# Below these a LoRA run overfits to a handful of phrases and its held-out evaluation means little.
READY_MIN_SAMPLES = 5
READY_MIN_SECONDS = 60.0


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    sample_count: int
    total_duration_seconds: float
    status: str


def dataset_status(speaker: SpeakerRecord, samples: list[DatasetSample], adapters: list[AdapterVersion]) -> str:
    if speaker.training_status == JobStatus.IN_PROGRESS:
        return "training"
    if not samples:
        return "empty"
    if len(samples) < READY_MIN_SAMPLES or sum(s.duration_seconds for s in samples) < READY_MIN_SECONDS:
        return "collecting"
    completed = [a for a in adapters if a.status == JobStatus.COMPLETED]
    if completed and set(completed[-1].dataset_sample_ids) == {s.sample_id for s in samples}:
        return "trained"
    return "ready"


def summary(services: Services, owner: str, name: str) -> DatasetSummary:
    speaker = services.speakers.require(owner, name)
    samples = services.speakers.list_samples(owner, name)
    adapters = services.speakers.list_adapters(owner, name)
    return DatasetSummary(
        name=name,
        sample_count=len(samples),
        total_duration_seconds=round(sum(s.duration_seconds for s in samples), 2),
        status=dataset_status(speaker, samples, adapters),
    )


def add_sample(services: Services, owner: str, name: str, audio: Path, transcript: str) -> DatasetSample:
    """Store one sample. Allowed while training runs: a run trains on its own snapshot of sample ids."""
    speaker = services.speakers.require(owner, name)
    text = validate_transcript(transcript)
    accepted = accepted_audio(audio, DATASET_SAMPLE_SECONDS, "Dataset sample")
    sample_id = "smp_" + secrets.token_hex(6)
    object_key = keys.dataset_sample_key(owner, speaker.speaker_id, sample_id, accepted.extension)
    sample = DatasetSample(
        sample_id=sample_id,
        duration_seconds=accepted.duration,
        transcript=text,
        object_key=object_key,
        created_at=utc_now_iso(),
    )
    # Marker first (services/cleanup.py): if the item write fails, the audio cannot outlive it.
    with cleanup.written_under(services, _mark(services, object_key, speaker.owner, speaker.speaker_id, sample_id)):
        services.blobs.put_file(object_key, audio, content_type=accepted.content_type)
        services.speakers.add_sample(owner, name, speaker.speaker_id, sample)  # 404 if deleted meanwhile
    return sample


def _mark(services: Services, key: str, owner: str, speaker_id: str, sample_id: str) -> CleanupMarker:
    return cleanup.mark(services, key, owner, speaker_id, owner_type=OwnerType.SPEAKER, sample_id=sample_id)


def clear(services: Services, owner: str, name: str) -> int:
    """Remove every sample (items and audio); the speaker and its adapters stay. 409 while training."""
    speaker = services.speakers.lock_dataset(owner, name)
    samples = services.speakers.list_samples(owner, name)
    # Exactly these objects, not the prefix: a sample uploaded concurrently keeps its audio. Each is
    # marked before its item goes, so a failed S3 delete leaves it to the sweeper, not orphaned.
    markers = [_mark(services, s.object_key, owner, speaker.speaker_id, s.sample_id) for s in samples]
    services.speakers.delete_samples(owner, name, samples)
    try:
        services.blobs.delete(*[s.object_key for s in samples])
    except cleanup.AWS_ERRORS as error:
        logger.warning(
            "dataset objects left for the sweeper", extra={"count": len(samples), "error": type(error).__name__}
        )
        return len(samples)
    for marker in markers:
        cleanup.clear_quietly(services, marker)
    return len(samples)
