"""Domain records -> API response models (the routes' only translation step)."""

from voice_onboarding.api.schemas import (
    EmbeddingInfo,
    SampleInfo,
    StatusReasons,
    TestSampleFile,
    VoiceDetails,
    VoiceStatus,
    VoiceSummary,
)
from voice_onboarding.contract.gpu import parse_test_filename
from voice_onboarding.domain.voice import VoiceRecord
from voice_onboarding.services.container import Services


def voice_summary(record: VoiceRecord) -> VoiceSummary:
    return VoiceSummary(
        name=record.name,
        has_original=record.has_original,
        sample_count=len(record.samples),
        splitting_status=record.splitting_status,
        embedding_status=record.embedding_status,
        creator_name=record.creator_name,
        creator_email=record.creator_email,
    )


def voice_details(services: Services, record: VoiceRecord) -> VoiceDetails:
    zip_url = None
    if record.embedding_zip_key:
        zip_url = services.blobs.presigned_get(
            record.embedding_zip_key,
            services.settings.presigned_url_ttl_seconds,
            filename=f"{record.name}-{record.embedding_zip_key.rsplit('/', 1)[-1]}",
        )
    return VoiceDetails(
        name=record.name,
        original_filename=record.original_filename,
        original_uploaded_name=record.original_uploaded_name,
        original_duration=record.original_duration,
        status=VoiceStatus(splitting=record.splitting_status, embedding=record.embedding_status),
        samples=[
            SampleInfo(
                index=s.index,
                source_timestamp=s.source_timestamp,
                duration=s.duration,
                origin=s.origin.value,
                quality=s.quality,
            )
            for s in sorted(record.samples, key=lambda s: s.index)
        ],
        embedding_info=EmbeddingInfo.model_validate(record.embedding_info) if record.embedding_info else None,
        embedding_type=record.embedding_type,
        embedding_zip_url=zip_url,
        preferred_sample_index=record.preferred_sample_index,
        creator_name=record.creator_name,
        creator_email=record.creator_email,
        status_reasons=StatusReasons(splitting=record.splitting_error, embedding=record.embedding_error),
        progress=record.progress,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def test_sample_file(filename: str, tts_type: str) -> TestSampleFile:
    indices = parse_test_filename(filename)
    return TestSampleFile(
        filename=filename,
        tts_type=tts_type,
        sample_index=indices[0] if indices else None,
        sentence_index=indices[1] if indices else None,
    )


test_sample_file.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported by one
