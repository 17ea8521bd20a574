"""The split step: original.opus in S3 -> samples in S3 + one atomic update of the voice item.

New samples are uploaded under a staging prefix first; only after the voice item points at them are
they copied into place and the old ones removed. A failure at any point leaves the old samples and
item as they were, and no new objects behind."""

import tempfile
import uuid
from pathlib import Path

from voice_onboarding.audio.splitter import SplitResult, split_recording
from voice_onboarding.domain.voice import JobStatus, SampleOrigin, SampleRecord, utc_now_iso
from voice_onboarding.observability import logger
from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys

DEFAULT_MAX_SAMPLES = 25
DEFAULT_SAMPLE_DURATION = 15


def _progress(services: Services, job: PipelineJob, step: str) -> None:
    services.voices.update(
        job.partner, job.name, {"progress": {"job": "splitting", "step": step, "updated_at": utc_now_iso()}}
    )


def run_split(services: Services, job: PipelineJob) -> int:
    voice = services.voices.require(job.partner, job.name)
    max_samples = int(job.params.get("max_samples", DEFAULT_MAX_SAMPLES))
    sample_duration = int(job.params.get("sample_duration", DEFAULT_SAMPLE_DURATION))
    staging = f"{keys.voice_prefix(job.partner, voice.voice_id)}staging/split-{uuid.uuid4().hex}/"
    staged: list[str] = []
    with tempfile.TemporaryDirectory() as workdir:
        original = Path(workdir) / "original.opus"
        _progress(services, job, "downloading")
        services.blobs.download_file(keys.original_key(job.partner, voice.voice_id), original)
        _progress(services, job, "detecting speech")
        result: SplitResult = split_recording(original, Path(workdir) / "samples", max_samples, sample_duration)
        try:
            for number, sample in enumerate(result.samples, start=1):
                _progress(services, job, f"storing sample {number}/{len(result.samples)}")
                key = f"{staging}{sample.index}.opus"
                services.blobs.put_file(key, sample.path)
                staged.append(key)
            records = [
                SampleRecord(
                    index=s.index, source_timestamp=s.source_timestamp, duration=s.duration,
                    origin=SampleOrigin.SPLIT, quality=s.quality,
                ).model_dump(mode="json")
                for s in result.samples
            ]  # fmt: skip
            old_indices = {s.index for s in voice.samples}
            # Conditional on the voice still existing and being ours (not deleted and re-created).
            services.voices.update(
                job.partner,
                job.name,
                {
                    "samples": records,
                    "next_sample_index": len(records) + 1,
                    "preferred_sample_index": None,
                    "preferred_sample_manual": False,
                    "splitting_status": JobStatus.COMPLETED.value,
                    "splitting_error": None,
                    "progress": None,
                },
                condition="attribute_exists(PK) AND voice_id = :voice_id",
                condition_values={":voice_id": {"S": voice.voice_id}},
            )
        except BaseException:
            services.blobs.delete(*staged)
            raise
    for sample in result.samples:
        services.s3.copy_object(
            Bucket=services.blobs.bucket,
            Key=keys.sample_key(job.partner, voice.voice_id, sample.index),
            CopySource={"Bucket": services.blobs.bucket, "Key": f"{staging}{sample.index}.opus"},
        )
    stale = [keys.sample_key(job.partner, voice.voice_id, i) for i in old_indices if i > len(result.samples)]
    services.blobs.delete(*staged, *stale)
    logger.info(
        "split completed",
        extra={"voice": job.name, "samples": len(result.samples), "speech_seconds": result.speech_seconds},
    )
    return len(result.samples)
