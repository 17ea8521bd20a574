"""GPU job `train_lora`: dataset samples + transcripts -> a versioned LoRA adapter with its evaluation."""

from typing import Any

from voice_onboarding.domain.speaker import AdapterVersion, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys


def build_input(services: Services, job: PipelineJob) -> dict[str, Any]:
    speaker = services.speakers.require(job.partner, job.name)
    ttl = services.settings.presigned_url_ttl_seconds
    version = int(job.params["adapter_version"])
    samples = services.speakers.list_samples(job.partner, job.name)
    return {
        "kind": "train_lora",
        "tts_type": job.params.get("tts_type", speaker.tts_type),
        "dataset": [
            {"url": services.blobs.presigned_get(s.object_key, ttl), "transcript": s.transcript} for s in samples
        ],
        "hyperparameters": job.params.get("hyperparameters", {}),
        "outputs": {
            "adapter": services.blobs.presigned_put(keys.adapter_key(job.partner, speaker.speaker_id, version), ttl),
            "evaluation_audio": services.blobs.presigned_put(
                keys.adapter_evaluation_key(job.partner, speaker.speaker_id, version), ttl
            ),
        },
    }


def _with_adapter(speaker: SpeakerRecord, version: int, **changes: Any) -> list[dict[str, Any]]:
    adapters: list[AdapterVersion] = [
        a.model_copy(update=changes) if a.version == version else a for a in speaker.adapters
    ]
    return [a.model_dump(mode="json") for a in adapters]


def apply_result(services: Services, job: PipelineJob, output: dict[str, Any]) -> None:
    speaker = services.speakers.get(job.partner, job.name)
    if speaker is None or speaker.speaker_id != job.voice_id:
        return
    version = int(job.params["adapter_version"])
    adapters = _with_adapter(
        speaker,
        version,
        status=JobStatus.COMPLETED,
        adapter_key=keys.adapter_key(job.partner, speaker.speaker_id, version),
        final_loss=output.get("final_loss"),
        loss_history=output.get("loss_history"),
        evaluation=output.get("evaluation"),
        hyperparameters=output.get("hyperparameters") or job.params.get("hyperparameters", {}),
    )
    services.speakers.update(
        job.partner,
        job.name,
        {"training_status": JobStatus.COMPLETED.value, "training_error": None, "adapters": adapters},
    )


def apply_failure(services: Services, job: PipelineJob, reason: str) -> None:
    speaker = services.speakers.get(job.partner, job.name)
    if speaker is None or speaker.speaker_id != job.voice_id:
        return
    version = int(job.params.get("adapter_version", 0))
    adapters = _with_adapter(speaker, version, status=JobStatus.FAILED, error=reason[:300])
    services.speakers.update(
        job.partner,
        job.name,
        {"training_status": JobStatus.FAILED.value, "training_error": reason[:300], "adapters": adapters},
    )
