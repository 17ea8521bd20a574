"""GPU job `train_lora`: a speaker's dataset snapshot + transcripts -> a versioned LoRA adapter.

Each run owns `adapters/v{n}/` in S3 (adapter.zip, evaluation.opus, metadata.json with the
hyperparameters and evaluation) and the table item `SPEAKER#{name}#ADAPTER#{n}`; the speaker's
`training_status` and the adapter item are updated together, only while that training still runs.
"""

import json
from typing import Any, ClassVar

from pydantic import BaseModel

from voice_onboarding.contract.gpu import DatasetItem, TrainLoraInput, TrainLoraResult, TrainOutputs
from voice_onboarding.domain.jobs import PipelineJob, Stage
from voice_onboarding.domain.speaker import AdapterVersion
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.services.container import Services
from voice_onboarding.services.gpu_jobs.base import GpuJobError, GpuJobKind, job_speaker, running_speaker
from voice_onboarding.storage import keys

MAX_REASON_CHARS = 300


class TrainLoraParams(BaseModel):
    """A train_lora job's `params`."""

    tts_type: str | None = None  # None: the speaker's tts_type
    hyperparameters: dict[str, Any] | None = None  # None: the adapter item's
    adapter_version: int = 0


def _params(job: PipelineJob) -> TrainLoraParams:
    return TrainLoraParams.model_validate(job.params)


def _adapter(services: Services, job: PipelineJob) -> AdapterVersion:
    version = _params(job).adapter_version
    adapter = services.speakers.get_adapter(job.partner, job.name, version)
    if adapter is None:
        raise GpuJobError(f"Adapter version {version} no longer exists")
    return adapter


class TrainLoraJob(GpuJobKind):
    stage: ClassVar[Stage] = Stage.TRAINING

    @classmethod
    def build_input(cls, services: Services, job: PipelineJob) -> dict[str, Any]:
        speaker = running_speaker(services, job)
        adapter = _adapter(services, job)
        # Train on the snapshot taken when the run started, not on whatever was uploaded since.
        by_id = {s.sample_id: s for s in services.speakers.list_samples(job.partner, job.name)}
        missing = [i for i in adapter.dataset_sample_ids if i not in by_id]
        if missing:
            raise GpuJobError(f"{len(missing)} dataset samples were removed after training started")
        if not adapter.dataset_sample_ids:
            raise GpuJobError("The dataset is empty")
        life = cls.lifetimes()
        read_ttl, write_ttl = life.input_url_seconds, life.output_url_seconds
        params = _params(job)
        version = params.adapter_version
        return TrainLoraInput(
            kind="train_lora",
            tts_type=params.tts_type or speaker.tts_type,
            dataset=[
                DatasetItem(
                    url=services.blobs.presigned_get(by_id[i].object_key, read_ttl), transcript=by_id[i].transcript
                )
                for i in adapter.dataset_sample_ids
            ],
            hyperparameters=params.hyperparameters or adapter.hyperparameters,
            outputs=TrainOutputs(
                adapter=services.blobs.presigned_put(
                    keys.adapter_key(job.partner, speaker.speaker_id, version), write_ttl
                ),
                evaluation_audio=services.blobs.presigned_put(
                    keys.adapter_evaluation_key(job.partner, speaker.speaker_id, version), write_ttl
                ),
            ),
        ).model_dump(mode="json")

    @classmethod
    def apply_result(cls, services: Services, job: PipelineJob, output: dict[str, Any]) -> None:
        result: TrainLoraResult = cls.parse_result(output)
        params = _params(job)
        version = params.adapter_version
        adapter = services.speakers.get_adapter(job.partner, job.name, version)
        hyperparameters = result.hyperparameters or params.hyperparameters or {}
        metadata_key = keys.adapter_metadata_key(job.partner, job.owner_id, version)
        metadata = {
            "version": version,
            "tts_type": result.tts_type or params.tts_type,
            "hyperparameters": hyperparameters,
            "evaluation": result.evaluation,
            "final_loss": result.final_loss,
            "loss_history": result.loss_history,
            "dataset_sample_ids": adapter.dataset_sample_ids if adapter else [],
            "completed_at": utc_now_iso(),
        }
        services.blobs.put_bytes(metadata_key, json.dumps(metadata, indent=2).encode(), "application/json")
        recorded = services.speakers.finish_training(
            job.partner,
            job.name,
            job.owner_id,
            version,
            {cls.stage.status_field: JobStatus.COMPLETED.value, cls.stage.error_field: None, "progress": None},
            {
                "status": JobStatus.COMPLETED.value,
                "adapter_key": keys.adapter_key(job.partner, job.owner_id, version),
                "metadata_key": metadata_key,
                "hyperparameters": hyperparameters,
                "final_loss": result.final_loss,
                "loss_history": result.loss_history,
                "evaluation": result.evaluation,
                "error": None,
            },
        )
        if not recorded and job_speaker(services, job) is None:
            # Deleted while training: the worker's uploads landed after the delete swept the prefix.
            services.blobs.delete_prefix(keys.adapter_prefix(job.partner, job.owner_id, version))

    @classmethod
    def apply_failure(cls, services: Services, job: PipelineJob, reason: str) -> None:
        reason = reason[:MAX_REASON_CHARS]
        speaker_fields = {
            cls.stage.status_field: JobStatus.FAILED.value,
            cls.stage.error_field: reason,
            "progress": None,
        }
        if not services.speakers.finish_training(
            job.partner,
            job.name,
            job.owner_id,
            _params(job).adapter_version,
            speaker_fields,
            {"status": JobStatus.FAILED.value, "error": reason},
        ):
            # No adapter item to fail with it (a malformed job): the speaker must still leave `training`.
            services.speakers.update_stage(job.partner, job.name, job.owner_id, cls.stage, speaker_fields)

    @classmethod
    def record_progress(cls, services: Services, job: PipelineJob, progress: dict[str, Any]) -> None:
        services.speakers.update_stage(
            job.partner,
            job.name,
            job.owner_id,
            cls.stage,
            {"progress": {"job": cls.stage.value, **progress, "updated_at": utc_now_iso()}},
        )
