"""GPU job `clone`: reference clip -> voice conditioning for the speaker's engine."""

from typing import Any

from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.services.container import Services
from voice_onboarding.storage import keys


def build_input(services: Services, job: PipelineJob) -> dict[str, Any]:
    speaker = services.speakers.require(job.partner, job.name)
    ttl = services.settings.presigned_url_ttl_seconds
    tts_type = job.params.get("tts_type", speaker.tts_type)
    conditioning_key = keys.speaker_conditioning_key(job.partner, speaker.speaker_id, tts_type)
    return {
        "kind": "clone",
        "tts_type": tts_type,
        "reference_url": services.blobs.presigned_get(speaker.reference_key, ttl),
        "outputs": {"voice_conditioning": services.blobs.presigned_put(conditioning_key, ttl)},
    }


def apply_result(services: Services, job: PipelineJob, output: dict[str, Any]) -> None:
    speaker = services.speakers.get(job.partner, job.name)
    if speaker is None or speaker.speaker_id != job.voice_id:
        return  # deleted (or replaced) while the job ran: nothing to record
    tts_type = output.get("tts_type") or job.params.get("tts_type", speaker.tts_type)
    services.speakers.update(
        job.partner,
        job.name,
        {
            "clone_status": JobStatus.COMPLETED.value,
            "clone_error": None,
            "conditioning_key": keys.speaker_conditioning_key(job.partner, speaker.speaker_id, tts_type),
        },
    )


def apply_failure(services: Services, job: PipelineJob, reason: str) -> None:
    speaker = services.speakers.get(job.partner, job.name)
    if speaker is None or speaker.speaker_id != job.voice_id:
        return
    services.speakers.update(
        job.partner, job.name, {"clone_status": JobStatus.FAILED.value, "clone_error": reason[:300]}
    )
