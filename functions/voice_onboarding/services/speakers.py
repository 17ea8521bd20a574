"""Speaker lifecycle: create (store the reference, start the zero-shot `clone` job), read, delete.

Dataset, training and catalog use cases live in speaker_dataset.py, speaker_training.py, catalog.py.
"""

import uuid
from pathlib import Path
from typing import Any

from voice_onboarding.domain.engines import require_engine
from voice_onboarding.domain.errors import SpeakerAlreadyExists
from voice_onboarding.domain.jobs import JobKind, OwnerType, SpeakerJob
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.observability import logger
from voice_onboarding.services import cleanup, executions, gpu_jobs
from voice_onboarding.services.container import Services
from voice_onboarding.services.speaker_validation import (
    REFERENCE_SECONDS,
    accepted_audio,
    validate_language,
    validate_name,
)
from voice_onboarding.storage import keys
from voice_onboarding.storage.catalog_repo import CatalogRepository

CREATED_MESSAGE = "Speaker created. Upload dataset samples and deploy to use in flows."
_SPEAKER_STATUS = {
    JobStatus.IDLE: "created",
    JobStatus.IN_PROGRESS: "cloning",
    JobStatus.COMPLETED: "ready",
    JobStatus.FAILED: "failed",
}


def speaker_status(speaker: SpeakerRecord) -> str:
    """created | cloning | ready | failed, from the clone job's state."""
    return _SPEAKER_STATUS[speaker.clone_status]


def start_job(services: Services, speaker: SpeakerRecord, kind: JobKind, params: dict[str, Any]) -> SpeakerJob:
    """Hand a clone/train_lora job to the pipeline. The caller already set the stage in_progress; if
    the hand-off fails the stage is failed with a reason, never left in_progress."""
    job = SpeakerJob(kind=kind, partner=speaker.owner, name=speaker.name, speaker_id=speaker.speaker_id, params=params)
    try:
        execution = services.dispatcher.start(job)
    except Exception as error:  # noqa: BLE001 - any failure to start must release the speaker
        logger.exception("speaker job start failed", extra={"kind": kind.value, "job_id": job.job_id})
        reason = f"Could not start {kind.value}: {type(error).__name__}"
        gpu_jobs.get_kind(kind.stages[0].gpu_kind or "").apply_failure(services, job, reason)
        return job
    executions.record_started(services, job, execution)
    return job


def create_speaker(
    services: Services, owner: str, name: str, language: str, description: str | None, reference: Path
) -> SpeakerRecord:
    validate_name(name)
    validate_language(language)
    require_engine(services.settings.default_tts_type, language=language)
    if services.speakers.get(owner, name) is not None:
        raise SpeakerAlreadyExists()
    audio = accepted_audio(reference, REFERENCE_SECONDS, "Reference audio")
    speaker_id = uuid.uuid4().hex
    reference_key = keys.speaker_reference_key(owner, speaker_id, audio.extension)
    now = utc_now_iso()
    record = SpeakerRecord(
        owner=owner,
        name=name,
        speaker_id=speaker_id,
        language=language,
        description=description or None,
        created_at=now,
        updated_at=now,
        reference_key=reference_key,
        reference_content_type=audio.content_type,
        reference_duration=audio.duration,
        tts_type=services.settings.default_tts_type,
        # in_progress from the first write: the job may report before this request returns.
        clone_status=JobStatus.IN_PROGRESS,
    )
    # Marker first (services/cleanup.py): the loser of a name race, or a failed write, leaves no audio.
    marker = cleanup.mark(services, reference_key, owner, speaker_id, owner_type=OwnerType.SPEAKER)
    with cleanup.written_under(services, marker):
        services.blobs.put_file(reference_key, reference, content_type=audio.content_type)
        services.speakers.create(record)  # conditional: the name race has one winner
    start_job(services, record, JobKind.CLONE, {"tts_type": record.tts_type})
    return record


def delete_speaker(services: Services, owner: str, name: str) -> None:
    """Undeploy, then remove the speaker, its dataset and adapters, and every S3 object under it.
    409 while a clone or training job runs (conditional delete)."""
    speaker = services.speakers.require(owner, name)
    catalog_keys = [CatalogRepository.key(speaker.voice_sample_uuid)] if speaker.voice_sample_uuid else []
    prefix = keys.speaker_prefix(owner, speaker.speaker_id)
    # Marker before the item goes (services/cleanup.py): if the S3 delete fails below, the sweeper
    # removes the objects; nothing is orphaned where no sweep looks.
    marker = cleanup.mark(services, prefix, owner, speaker.speaker_id, owner_type=OwnerType.SPEAKER)
    with cleanup.removing_owner(services, marker):  # busy or gone: the speaker (if any) keeps its objects
        # The catalog entry goes in the same transaction as the speaker: undeployed no later than deleted.
        services.speakers.delete(owner, name, speaker.speaker_id, extra_deletes=catalog_keys)
    services.speakers.delete_children(owner, name)
    if cleanup.delete_covered(services, marker) is None:
        return
    logger.info("speaker deleted", extra={"owner": owner, "speaker": name, "speaker_id": speaker.speaker_id})


def reference_filename(speaker: SpeakerRecord) -> str:
    return f"{speaker.name}-reference.{speaker.reference_key.rsplit('.', 1)[-1]}"


def reference_download(services: Services, speaker: SpeakerRecord) -> tuple[bytes | None, str | None]:
    """(bytes, None) for a clip small enough for a Lambda response, else (None, presigned URL)."""
    size = services.blobs.size(speaker.reference_key)
    if size is not None and size > services.settings.max_inline_download_bytes:
        url = services.blobs.presigned_get(
            speaker.reference_key, services.settings.presigned_url_ttl_seconds, reference_filename(speaker)
        )
        return None, url
    return services.blobs.get_bytes(speaker.reference_key) or b"", None
