"""LoRA training of a speaker: start a `train_lora` job on a ready dataset, list adapter versions."""

from typing import Any

from voice_onboarding.domain.engines import require_engine
from voice_onboarding.domain.errors import InvalidRequest, SpeakerBusy
from voice_onboarding.domain.jobs import JobKind
from voice_onboarding.domain.speaker import AdapterVersion, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.services.container import Services
from voice_onboarding.services.speaker_dataset import READY_MIN_SAMPLES, READY_MIN_SECONDS, dataset_status
from voice_onboarding.services.speakers import start_job
from voice_onboarding.storage.optimistic import retry_on_conflict

UNFINISHED_REASON = "Training did not finish"


def start_training(services: Services, owner: str, name: str, hyperparameters: dict[str, Any]) -> AdapterVersion:
    """New adapter version (next number, never reused) in_progress + the job. 409 while a clone or
    training runs; 422 unless the dataset is ready (or trained: retraining with new hyperparameters).
    A concurrent change of the speaker (a dataset clear, another deploy) re-reads and retries."""
    speaker, adapter = retry_on_conflict(lambda: _begin_training(services, owner, name, hyperparameters))
    params = {"tts_type": speaker.tts_type, "hyperparameters": hyperparameters, "adapter_version": adapter.version}
    start_job(services, speaker, JobKind.TRAIN_LORA, params)
    return adapter


def _begin_training(
    services: Services, owner: str, name: str, hyperparameters: dict[str, Any]
) -> tuple[SpeakerRecord, AdapterVersion]:
    speaker = services.speakers.require(owner, name)
    if speaker.is_busy:
        raise SpeakerBusy()
    if speaker.clone_status != JobStatus.COMPLETED:
        raise InvalidRequest("Speaker is not ready: voice cloning has not completed")
    require_engine(speaker.tts_type, train=True)
    samples = services.speakers.list_samples(owner, name)
    adapters = services.speakers.list_adapters(owner, name)
    if dataset_status(speaker, samples, adapters) not in ("ready", "trained"):
        raise InvalidRequest(
            f"Dataset not ready for training: need at least {READY_MIN_SAMPLES} samples and "
            f"{READY_MIN_SECONDS:g} s of audio (have {len(samples)} samples, "
            f"{sum(s.duration_seconds for s in samples):.1f} s)"
        )
    version = max(speaker.adapter_count, max((a.version for a in adapters), default=0)) + 1
    adapter = AdapterVersion(
        version=version,
        status=JobStatus.IN_PROGRESS,
        tts_type=speaker.tts_type,
        hyperparameters=hyperparameters,
        created_at=utc_now_iso(),
        dataset_sample_ids=[s.sample_id for s in samples],
        dataset_duration_seconds=round(sum(s.duration_seconds for s in samples), 2),
    )
    # Conditional on idle + the version we read (a dataset clear bumps it): one winner, no stale snapshot.
    services.speakers.begin_training(owner, name, speaker.version, adapter)
    return speaker, adapter


def list_adapters(services: Services, owner: str, name: str) -> list[AdapterVersion]:
    """Adapter versions, oldest first. A run the sweeper failed (speaker no longer training) shows as
    failed with the speaker's reason, not in_progress forever."""
    speaker = services.speakers.require(owner, name)
    adapters = services.speakers.list_adapters(owner, name)
    if speaker.training_status == JobStatus.IN_PROGRESS:
        return adapters
    return [
        a.model_copy(update={"status": JobStatus.FAILED, "error": speaker.training_error or UNFINISHED_REASON})
        if a.status == JobStatus.IN_PROGRESS
        else a
        for a in adapters
    ]
