"""The split step: original.opus in S3 -> samples in S3 + one conditional update of the voice item.

Order of writes, and why:
1. New samples are uploaded to a staging prefix under `uploads/` (the bucket's lifecycle rule expires
   it, so even a Lambda killed mid-upload leaves nothing behind for long). Old samples whose index
   the new set does not reuse get cleanup markers (services/cleanup.py) before anything changes.
2. ONE conditional update replaces `samples`, `next_sample_index`, clears the preferred sample and
   sets `splitting_status` completed. It is the commit point: it only applies while the voice still
   exists with the same voice_id and this job still holds the `in_progress` lock (the sweeper may
   have failed it meanwhile). Any failure before it (SplitError, S3, a lost condition) deletes the
   staged objects and re-raises: the old samples and the item stay exactly as they were.
3. After the commit the staged objects are copied over the final keys `samples/{i}.opus` (server-side,
   fast) and staging plus stale old samples are deleted. The keys are fixed by the storage layout, so
   a short window remains where the item already lists the new samples while some final keys still
   hold old audio; uploading to the final keys before the commit would instead destroy the old samples
   on a failed split, which is worse. A crash inside the window is repaired by re-splitting."""

import tempfile
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from voice_onboarding.audio.splitter import SplitResult, split_recording
from voice_onboarding.domain.jobs import Stage, VoiceJob
from voice_onboarding.domain.voice import JobStatus, SampleOrigin, SampleRecord, utc_now_iso
from voice_onboarding.observability import logger
from voice_onboarding.services import cleanup
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys
from voice_onboarding.storage.cleanup_repo import CleanupMarker

DEFAULT_MAX_SAMPLES = 25
DEFAULT_SAMPLE_DURATION = 15


class SplitSuperseded(Exception):
    """The voice was deleted, re-created, or its split job ended (e.g. the sweeper failed it) meanwhile."""


def _update(services: Services, job: VoiceJob, fields: dict[str, Any]) -> None:
    """Writes by this job only land while the voice is the one the job was started for and still splitting."""
    if not services.voices.update_stage(job.partner, job.name, job.voice_id, Stage.SPLITTING, fields):
        raise SplitSuperseded("Voice was deleted or its split job ended while splitting")


def _progress(services: Services, job: VoiceJob, step: str) -> None:
    _update(services, job, {"progress": {"job": Stage.SPLITTING.value, "step": step, "updated_at": utc_now_iso()}})


def _staging_key(job: VoiceJob, token: str, index: int) -> str:
    return keys.sample_staging_key(job.partner, f"split-{token}/{index}")


def _records(result: SplitResult) -> list[dict[str, Any]]:
    return [
        SampleRecord(
            index=s.index, source_timestamp=s.source_timestamp, duration=s.duration,
            origin=SampleOrigin.SPLIT, quality=s.quality,
        ).model_dump(mode="json")
        for s in result.samples
    ]  # fmt: skip


def _discard(services: Services, staged: list[str]) -> None:
    """Roll back staged uploads without masking the original error (lifecycle expiry is the backstop)."""
    try:
        services.blobs.delete(*staged)
    except (ClientError, BotoCoreError) as error:
        logger.warning("staged samples left for lifecycle expiry", extra={"error": type(error).__name__})


def run_split(services: Services, job: VoiceJob) -> int:
    """Split the voice's original into samples; returns how many. SplitError propagates (the state
    machine's failure handler stores its message); this function never writes `failed` itself."""
    voice = services.voices.require(job.partner, job.name)
    if voice.voice_id != job.voice_id:
        raise SplitSuperseded("Voice was deleted or its split job ended while splitting")
    max_samples = int(job.params.get("max_samples") or DEFAULT_MAX_SAMPLES)
    sample_duration = int(job.params.get("sample_duration") or DEFAULT_SAMPLE_DURATION)
    token = f"{job.job_id}-{uuid.uuid4().hex[:8]}"  # unique per attempt: a retried Lambda never collides
    staged: list[str] = []
    with tempfile.TemporaryDirectory() as workdir:
        original = Path(workdir) / "original.opus"
        _progress(services, job, "downloading")
        services.blobs.download_file(keys.original_key(job.partner, job.voice_id), original)
        result = split_recording(
            original,
            Path(workdir) / "samples",
            max_samples,
            sample_duration,
            progress=lambda step: _progress(services, job, step),
        )
        count = len(result.samples)
        stale = {
            i: keys.sample_key(job.partner, job.voice_id, i) for i in {s.index for s in voice.samples} if i > count
        }
        markers: list[CleanupMarker] = []
        try:
            _progress(services, job, f"storing {count} samples")
            for sample in result.samples:
                staged.append(_staging_key(job, token, sample.index))
                services.blobs.put_file(staged[-1], sample.path)
            for index, key in stale.items():
                markers.append(cleanup.mark(services, key, job.partner, job.voice_id, sample_index=index))
            _update(
                services,
                job,
                {
                    "samples": _records(result),
                    "next_sample_index": count + 1,
                    # Indices are reused by the new samples: an old choice would point at different audio.
                    "preferred_sample_index": None,
                    "preferred_sample_manual": False,
                    Stage.SPLITTING.status_field: JobStatus.COMPLETED.value,
                    Stage.SPLITTING.error_field: None,
                    "progress": None,
                },
            )
        except BaseException:
            _discard(services, staged)
            for marker in markers:
                cleanup.clear_quietly(services, marker)  # the old samples are still listed: they stay
            raise
    for sample, staged_key in zip(result.samples, staged, strict=True):
        services.blobs.copy(staged_key, keys.sample_key(job.partner, job.voice_id, sample.index), "audio/ogg")
    services.blobs.delete(*staged, *stale.values())
    for marker in markers:
        cleanup.clear_quietly(services, marker)
    logger.info(
        "split completed",
        extra={
            "voice": job.name,
            "samples": count,
            "speech_seconds": result.speech_seconds,
            "recording_seconds": result.recording_duration,
        },
    )
    return count
