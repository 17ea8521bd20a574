"""GPU job `embed`: a voice's samples -> per-sample embeddings, test sentences, scores, embedding zip."""

from typing import Any, ClassVar

from pydantic import BaseModel

from voice_onboarding.contract.gpu import EmbedInput, EmbedOutputs, EmbedResult, SampleIn, test_filename
from voice_onboarding.domain.jobs import PipelineJob, Stage
from voice_onboarding.domain.voice import JobStatus, VoiceRecord, utc_now_iso
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs.base import GpuJobError, GpuJobKind, update_voice_stage
from voice_onboarding.storage import keys

# Fixed so scores are comparable across samples and runs; phonetically varied, ~4 s each.
TEST_SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
]


class EmbedParams(BaseModel):
    """An embed job's `params`."""

    tts_type: str | None = None  # None: the voice's embedding_type


# The part of a worker's score the voice keeps (embedding_info.sample_scores, the API's SampleScore).
_RECORDED_SCORE = {"sample_index", "score", "flagged", "reason"}


def _voice(services: Services, job: PipelineJob) -> VoiceRecord | None:
    voice = services.voices.get(job.partner, job.name)
    return voice if voice is not None and voice.voice_id == job.owner_id else None


def _tts_type(job: PipelineJob, voice: VoiceRecord) -> str:
    return EmbedParams.model_validate(job.params).tts_type or voice.embedding_type


def _remove_stale_test_files(services: Services, voice: VoiceRecord, tts_type: str, keep: set[str]) -> None:
    """Test files of an earlier run (e.g. of samples deleted since) would be listed as this run's."""
    prefix = keys.test_samples_prefix(voice.partner, voice.voice_id, tts_type)
    stale = [key for key in services.blobs.list_keys(prefix) if key[len(prefix) :] not in keep]
    services.blobs.delete(*stale)


class EmbedJob(GpuJobKind):
    stage: ClassVar[Stage] = Stage.EMBEDDING

    @classmethod
    def build_input(cls, services: Services, job: PipelineJob) -> dict[str, Any]:
        voice = _voice(services, job)
        if voice is None:
            raise GpuJobError("Voice no longer exists")
        if not voice.samples:
            raise GpuJobError("Voice has no samples to embed")
        life = cls.lifetimes()
        read_ttl, write_ttl = life.input_url_seconds, life.output_url_seconds
        tts_type = _tts_type(job, voice)
        test_prefix = keys.test_samples_prefix(job.partner, voice.voice_id, tts_type)
        samples = sorted(voice.samples, key=lambda s: s.index)
        test_outputs = {
            test_filename(s.index, n): services.blobs.presigned_put(test_prefix + test_filename(s.index, n), write_ttl)
            for s in samples
            for n in range(1, len(TEST_SENTENCES) + 1)
        }
        return EmbedInput(
            kind="embed",
            tts_type=tts_type,
            samples=[
                SampleIn(
                    index=s.index,
                    url=services.blobs.presigned_get(keys.sample_key(job.partner, voice.voice_id, s.index), read_ttl),
                    quality=s.quality,
                )
                for s in samples
            ],
            sentences=TEST_SENTENCES,
            outputs=EmbedOutputs(
                test_samples=test_outputs,
                embedding_zip=services.blobs.presigned_put(
                    keys.embedding_zip_key(job.partner, voice.voice_id, tts_type), write_ttl
                ),
            ),
        ).model_dump(mode="json")

    @classmethod
    def apply_result(cls, services: Services, job: PipelineJob, output: dict[str, Any]) -> None:
        result: EmbedResult = cls.parse_result(output)
        voice = _voice(services, job)
        if voice is None:
            return  # deleted while the job ran: nothing to record
        tts_type = result.tts_type
        preferred = result.preferred_sample_index
        if voice.preferred_sample_manual and voice.preferred_sample_index is not None:
            if voice.sample(voice.preferred_sample_index) is not None:
                preferred = voice.preferred_sample_index  # a user's choice beats the scores
        info = {
            "tts_type": tts_type,
            "last_update_status": "success",
            "last_update_time": utc_now_iso(),
            "test_samples": [t.model_dump() for t in result.test_samples],
            "sample_scores": [s.model_dump(include=_RECORDED_SCORE) for s in result.sample_scores],
        }
        recorded = update_voice_stage(
            services,
            job,
            cls.stage,
            {
                cls.stage.status_field: JobStatus.COMPLETED.value,
                cls.stage.error_field: None,
                "progress": None,
                "embedding_info": info,
                "embedding_type": tts_type,
                "embedding_zip_key": keys.embedding_zip_key(job.partner, voice.voice_id, tts_type),
                "preferred_sample_index": preferred,
            },
        )
        if recorded:
            _remove_stale_test_files(services, voice, tts_type, {t.filename for t in result.test_samples})

    @classmethod
    def apply_failure(cls, services: Services, job: PipelineJob, reason: str) -> None:
        voice = _voice(services, job)
        if voice is None:
            return
        tts_type = _tts_type(job, voice)
        previous = voice.embedding_info or {}
        # Scores of an earlier run of the same engine stay visible; another engine's would be mislabelled.
        info = previous if previous.get("tts_type") == tts_type else {"test_samples": [], "sample_scores": []}
        info = {**info, "tts_type": tts_type, "last_update_status": "failed", "last_update_time": utc_now_iso()}
        update_voice_stage(
            services,
            job,
            cls.stage,
            {
                cls.stage.status_field: JobStatus.FAILED.value,
                cls.stage.error_field: reason,
                "progress": None,
                "embedding_info": info,
            },
        )

    @classmethod
    def record_progress(cls, services: Services, job: PipelineJob, progress: dict[str, Any]) -> None:
        update_voice_stage(
            services, job, cls.stage, {"progress": {"job": cls.stage.value, **progress, "updated_at": utc_now_iso()}}
        )
