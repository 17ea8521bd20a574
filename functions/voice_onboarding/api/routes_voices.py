"""HTTP routes of voices-api.txt. Thin: parse, authorize, call services.voices, shape the response."""

import tempfile
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile, status
from fastapi.responses import RedirectResponse, Response

from voice_onboarding.api import mappers
from voice_onboarding.api.lazy_route import LazyAPIRoute
from voice_onboarding.api.schemas import (
    ErrorResponse,
    JobAccepted,
    Message,
    SampleUploaded,
    TestSampleFile,
    VoiceDetails,
    VoiceStatus,
    VoiceSummary,
)
from voice_onboarding.api.security import GpuClientDep, PartnerDep, ServicesDep
from voice_onboarding.api.uploads import spooled_upload
from voice_onboarding.content_disposition import content_disposition
from voice_onboarding.contract import quality
from voice_onboarding.contract.engines import DEFAULT_TTS_TYPE
from voice_onboarding.domain.errors import InvalidRequest
from voice_onboarding.services import cancel, uploads, voices

_ERRORS = {
    401: {"model": ErrorResponse, "description": "Invalid API key"},
    403: {"model": ErrorResponse, "description": "Access denied"},
    404: {"model": ErrorResponse, "description": "Voice not found"},
    # Documented once for every route: our own 422s carry a string detail, FastAPI's a list.
    422: {"model": ErrorResponse, "description": "Invalid input"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded"},
}
_LOCKED = {409: {"model": ErrorResponse, "description": "Voice is currently being processed"}}
_AUDIO_ERRORS = {
    413: {"model": ErrorResponse, "description": "File too large for a direct upload"},
    422: {"model": ErrorResponse, "description": "Invalid audio or parameters"},
}
OPUS = "audio/ogg"

router = APIRouter(prefix="/api/voices/{partner}", tags=["voices"], responses=_ERRORS, route_class=LazyAPIRoute)

VoiceName = Annotated[str, Path(min_length=1, max_length=255, description="Voice name")]
SampleIndex = Annotated[int, Path(ge=1, le=100_000, description="1-based sample index")]


@router.get("", response_model=list[VoiceSummary], summary="List voices")
def list_voices(services: ServicesDep, partner: PartnerDep) -> list[VoiceSummary]:
    return [mappers.voice_summary(r) for r in services.voices.list(partner)]


@router.post(
    "",
    response_model=VoiceDetails,
    status_code=status.HTTP_201_CREATED,
    summary="Create voice (with audio)",
    description="Uploading an audio file automatically triggers splitting and embedding.",
    responses={**_LOCKED, **_AUDIO_ERRORS},
)
def create_voice(
    services: ServicesDep,
    partner: PartnerDep,
    name: Annotated[str, Form(description="Voice name (1-255 chars)")],
    file: Annotated[UploadFile | None, File(description="Audio file to upload")] = None,
    creator_name: Annotated[str | None, Form(max_length=255)] = None,
    creator_email: Annotated[str | None, Form(max_length=320)] = None,
    upload_id: Annotated[str | None, Form(description="Id of a presigned upload, instead of `file`")] = None,
) -> VoiceDetails:
    if upload_id:
        voices.validate_voice_name(name)
        with uploads.staged_upload(services, partner, upload_id) as staged:
            record = voices.create_voice(
                services, partner, name, staged.path, staged.filename, creator_name, creator_email
            )
    elif file is None or (file.size == 0 and not file.filename):
        record = voices.create_voice(services, partner, name, creator_name=creator_name, creator_email=creator_email)
    else:
        presigned = uploads.endpoint(partner)
        cli = f"voice-onboarding voices create {partner} NAME FILE"
        with spooled_upload(file, services.settings.max_direct_upload_bytes, presigned, cli) as path:
            record = voices.create_voice(services, partner, name, path, file.filename, creator_name, creator_email)
    return mappers.voice_details(services, record)


@router.post(
    "/empty",
    response_model=VoiceDetails,
    status_code=status.HTTP_201_CREATED,
    summary="Create empty voice",
    responses={**_LOCKED, 422: _AUDIO_ERRORS[422]},
)
def create_empty_voice(
    services: ServicesDep,
    partner: PartnerDep,
    name: Annotated[str, Form(description="Voice name (1-255 chars)")],
    creator_name: Annotated[str | None, Form(max_length=255)] = None,
    creator_email: Annotated[str | None, Form(max_length=320)] = None,
) -> VoiceDetails:
    record = voices.create_voice(services, partner, name, creator_name=creator_name, creator_email=creator_email)
    return mappers.voice_details(services, record)


@router.get("/{voice}", response_model=VoiceDetails, summary="Get voice details")
def get_voice(services: ServicesDep, partner: PartnerDep, voice: VoiceName) -> VoiceDetails:
    return mappers.voice_details(services, services.voices.require(partner, voice))


@router.delete("/{voice}", response_model=Message, summary="Delete voice", responses=_LOCKED)
def delete_voice(services: ServicesDep, partner: PartnerDep, voice: VoiceName) -> Message:
    voices.delete_voice(services, partner, voice)
    return Message(detail="Voice deleted")


@router.put("/{voice}/name", response_model=VoiceDetails, summary="Rename voice", responses=_LOCKED)
def rename_voice(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    name: Annotated[str, Form(description="New voice name")],
) -> VoiceDetails:
    return mappers.voice_details(services, voices.rename_voice(services, partner, voice, name))


@router.post(
    "/{voice}/samples",
    response_model=SampleUploaded,
    status_code=status.HTTP_201_CREATED,
    summary="Upload sample",
    description="Upload a single audio sample; it is converted to opus 96 kbps mono.",
    responses={**_LOCKED, **_AUDIO_ERRORS},
)
def upload_sample(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    file: Annotated[UploadFile | None, File(description="Audio file")] = None,
    upload_id: Annotated[str | None, Form(description="Id of a presigned upload, instead of `file`")] = None,
) -> SampleUploaded:
    services.voices.require(partner, voice)  # 404 before reading a byte of audio
    if upload_id:
        with uploads.staged_upload(services, partner, upload_id) as staged:
            sample = voices.add_sample(services, partner, voice, staged.path)
    elif file is not None:
        presigned, cli = uploads.endpoint(partner), f"voice-onboarding samples upload {partner} {voice} FILE"
        with spooled_upload(file, services.settings.max_direct_upload_bytes, presigned, cli) as path:
            sample = voices.add_sample(services, partner, voice, path)
    else:
        raise InvalidRequest("Send the audio as `file` or name a presigned `upload_id`")
    return SampleUploaded(index=sample.index, duration=sample.duration, source_timestamp=sample.source_timestamp)


@router.get(
    "/{voice}/samples/{index}",
    response_class=Response,
    summary="Download sample",
    responses={200: {"content": {OPUS: {}}, "description": "Opus audio"}},
)
def download_sample(services: ServicesDep, partner: PartnerDep, voice: VoiceName, index: SampleIndex) -> Response:
    data = voices.get_sample_audio(services, partner, voice, index)
    return Response(data, media_type=OPUS, headers={"Content-Disposition": content_disposition(f"{index}.opus")})


@router.delete("/{voice}/samples/{index}", response_model=Message, summary="Delete sample", responses=_LOCKED)
def delete_sample(services: ServicesDep, partner: PartnerDep, voice: VoiceName, index: SampleIndex) -> Message:
    voices.delete_sample(services, partner, voice, index)
    return Message(detail="Sample deleted")


@router.get(
    "/{voice}/samples-bundle",
    response_class=Response,
    summary="Download sample bundle",
    description="ZIP with every sample as `{index}.opus` and a `voice_info.json` metadata file.",
    responses={
        200: {"content": {"application/zip": {}}, "description": "ZIP archive"},
        307: {"description": "Large bundle: redirect to a presigned S3 URL"},
    },
)
def samples_bundle(services: ServicesDep, partner: PartnerDep, voice: VoiceName) -> Response:
    limit = services.settings.max_inline_download_bytes
    with tempfile.SpooledTemporaryFile(max_size=limit) as spool:
        record = voices.write_samples_bundle(
            services,
            partner,
            voice,
            spool,
            lambda r: mappers.voice_details(services, r).model_dump(mode="json", exclude={"embedding_zip_url"}),
        )
        size = spool.tell()
        spool.seek(0)
        if size > limit:
            # Beyond API Gateway's response limit: park it in S3 and redirect to a presigned URL.
            url = voices.store_bundle(services, record, spool)
            return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
        data = spool.read()
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition(voices.bundle_filename(record))},
    )


def _accepted(record: voices.VoiceRecord, job: str, job_id: str) -> JobAccepted:
    return JobAccepted(
        name=record.name,
        job=job,
        job_id=job_id,
        status=VoiceStatus(splitting=record.splitting_status, embedding=record.embedding_status),
    )


SAMPLE_DURATION_RULE = (
    f"Target seconds per sample. Every sample lasts between {quality.MIN_LENGTH_FRACTION:g} and "
    f"{quality.MAX_LENGTH_FRACTION:g} times this ({quality.MAX_LENGTH_FRACTION:g} times is a hard cap: 15 gives "
    f"samples of {15 * quality.MIN_LENGTH_FRACTION:g} to {15 * quality.MAX_LENGTH_FRACTION:g} s), cut only inside "
    f"pauses, at least {quality.CUT_GUARD_SECONDS * 1000:.0f} ms from speech (in the middle of shorter pauses), "
    f"normalised to "
    f"{quality.LOUDNESS_TARGET_LUFS:g} LUFS and stored as Opus {quality.OPUS_BITRATE_KBPS} kb/s mono."
)


@router.post(
    "/{voice}/split",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue splitting job",
    description="Re-splits the original recording with custom parameters. Clears existing samples.",
    responses={**_LOCKED, 422: _AUDIO_ERRORS[422]},
)
def split_voice(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    max_samples: Annotated[int, Form(ge=1, le=100, description="Maximum samples to extract")] = 25,
    sample_duration: Annotated[int, Form(ge=5, le=60, description=SAMPLE_DURATION_RULE)] = 15,
) -> JobAccepted:
    record, job_id = voices.start_split(services, partner, voice, max_samples, sample_duration)
    return _accepted(record, "splitting", job_id)


@router.post(
    "/{voice}/embed",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue embedding job",
    description="Submits the voice samples for embedding generation on the GPU worker.",
    responses={**_LOCKED, 422: _AUDIO_ERRORS[422]},
)
def embed_voice(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    tts_type: Annotated[str | None, Form(description="TTS type override")] = None,
    tts_type_query: Annotated[str | None, Query(alias="tts_type", include_in_schema=False)] = None,
) -> JobAccepted:
    record, job_id = voices.start_embed(services, partner, voice, tts_type or tts_type_query)
    return _accepted(record, "embedding", job_id)


@router.get("/{voice}/test-samples", response_model=list[TestSampleFile], summary="Get test samples")
def list_test_samples(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    tts_type: Annotated[str, Query(description="TTS type")] = DEFAULT_TTS_TYPE,
) -> list[TestSampleFile]:
    return [mappers.test_sample_file(f, tts_type) for f in voices.list_test_samples(services, partner, voice, tts_type)]


@router.get(
    "/{voice}/test-samples/{filename}",
    response_class=Response,
    summary="Download test sample",
    responses={200: {"content": {OPUS: {}}, "description": "Opus audio"}},
)
def download_test_sample(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    filename: str,
    tts_type: Annotated[str, Query(description="TTS type folder")] = DEFAULT_TTS_TYPE,
) -> Response:
    data = voices.get_test_sample(services, partner, voice, filename, tts_type)
    return Response(data, media_type=OPUS, headers={"Content-Disposition": content_disposition(filename)})


@router.delete("/{voice}/test-files/{tts_type}", response_model=Message, summary="Delete test files", responses=_LOCKED)
def delete_test_files(services: ServicesDep, partner: PartnerDep, voice: VoiceName, tts_type: str) -> Message:
    removed = voices.delete_test_files(services, partner, voice, tts_type)
    return Message(detail=f"Deleted {removed} test files")


@router.put("/{voice}/preferred-sample", response_model=VoiceDetails, summary="Set preferred sample")
def set_preferred_sample(
    services: ServicesDep,
    partner: PartnerDep,
    voice: VoiceName,
    sample_index: Annotated[str | None, Form(description="Sample index; empty clears it")] = None,
) -> VoiceDetails:
    index: int | None = None
    if sample_index is not None and sample_index.strip():
        try:
            index = int(sample_index)
        except ValueError as error:
            raise InvalidRequest("sample_index must be an integer or empty") from error
    return mappers.voice_details(services, voices.set_preferred_sample(services, partner, voice, index))


@router.post(
    "/{voice}/cancel",
    response_model=Message,
    summary="Cancel the running job",
    description=(
        "Stops the voice's running split or embedding (its pipeline execution and its GPU run) and marks "
        'that stage `failed` with the reason "cancelled"; the voice is unlocked. Earlier samples, test samples '
        "and embeddings are kept. 409 when no job is running."
    ),
    responses={409: {"model": ErrorResponse, "description": "No job is running"}},
)
def cancel_voice_job(services: ServicesDep, partner: PartnerDep, voice: VoiceName, gpu: GpuClientDep) -> Message:
    cancel.cancel(services, gpu, partner, voice, cancel.VOICE_KINDS)
    return Message(detail="Job cancelled")
