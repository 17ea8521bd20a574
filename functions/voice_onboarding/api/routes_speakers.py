"""HTTP routes of speakers-api.txt (+ train, adapters, catalog). Speakers belong to the API key's
owner tenant (`ApiKeyRecord.owner`); handlers only translate HTTP to the services' use cases."""

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Path, UploadFile, status
from fastapi.responses import RedirectResponse, Response

from voice_onboarding.api.lazy_route import LazyAPIRoute
from voice_onboarding.api.rate_limit import rate_limit
from voice_onboarding.api.schemas import ErrorResponse, Message, UploadRequest, UploadTicket
from voice_onboarding.api.schemas_speakers import (
    AdapterInfo,
    CatalogVoice,
    DatasetInfo,
    DatasetSampleCreated,
    DeployResult,
    SpeakerCreated,
    SpeakerDetails,
    SpeakerSummary,
    TrainAccepted,
    TrainRequest,
)
from voice_onboarding.api.security import ApiKeyDep, GpuClientDep, ServicesDep
from voice_onboarding.api.uploads import spooled_upload
from voice_onboarding.content_disposition import content_disposition
from voice_onboarding.domain.errors import InvalidRequest
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.services import catalog, speaker_dataset, speaker_training, speakers, uploads
from voice_onboarding.services.speaker_validation import (
    MAX_DESCRIPTION_CHARS,
    MAX_TRANSCRIPT_CHARS,
    validate_language,
    validate_name,
)

_ERRORS = {
    401: {"model": ErrorResponse, "description": "Invalid API key"},
    404: {"model": ErrorResponse, "description": "Speaker not found"},
    422: {"model": ErrorResponse, "description": "Invalid input (the detail says which and why)"},
}
_TOO_LARGE = {413: {"model": ErrorResponse, "description": "File too large for a direct upload: use `upload_id`"}}
# Speakers' presigned uploads live in the owner tenant's upload area (the one /api/uploads/{owner} uses).
UPLOADS = "/api/voice/uploads"
_UPLOAD_ID_FORM = "Id of a presigned upload (`POST /api/voice/uploads`), instead of the file"
_CONFLICT = {409: {"model": ErrorResponse, "description": "A clone or training job is running"}}
_RATE_LIMITED = {429: {"model": ErrorResponse, "description": "Rate limit exceeded (see Retry-After)"}}

router = APIRouter(prefix="/api/voice", tags=["speakers"], responses=_ERRORS, route_class=LazyAPIRoute)
SpeakerName = Annotated[str, Path(min_length=1, max_length=64, description="Speaker name")]


def _summary(record: SpeakerRecord) -> SpeakerSummary:
    return SpeakerSummary.model_validate(record.model_dump(include=set(SpeakerSummary.model_fields)))


def _dataset(summary: speaker_dataset.DatasetSummary) -> DatasetInfo:
    return DatasetInfo(
        name=summary.name,
        sample_count=summary.sample_count,
        total_duration_seconds=summary.total_duration_seconds,
        status=summary.status,
    )


@router.get("/models/speakers", response_model=list[SpeakerSummary], summary="List speakers")
def list_speakers(services: ServicesDep, api_key: ApiKeyDep) -> list[SpeakerSummary]:
    return [_summary(r) for r in services.speakers.list_for_owner(api_key.owner)]


@router.post(
    "/uploads",
    response_model=UploadTicket,
    status_code=status.HTTP_201_CREATED,
    summary="Create a presigned upload (speakers)",
    description=(
        "For a reference clip or dataset sample above the direct upload limit (Lambda's ~6 MB payload): "
        "POST the file to `url` with `fields` (S3 refuses it above `max_bytes`), then create the speaker "
        "or add the sample with form field `upload_id` instead of the file. An upload is used once."
    ),
    responses={413: {"model": ErrorResponse, "description": "File too large"}},
)
def create_speaker_upload(services: ServicesDep, api_key: ApiKeyDep, request: UploadRequest) -> UploadTicket:
    ticket = uploads.create_upload(services, api_key.owner, request.filename, request.size_bytes, request.content_type)
    return UploadTicket.model_validate(ticket)


@router.post(
    "/models/speakers",
    response_model=SpeakerCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create speaker (zero-shot clone)",
    description=(
        "Rate limit: 5/minute per API key. Stores the reference clip (WAV or MP3, 10-60 seconds of clean "
        "speech, checked by decoding it) and starts a zero-shot `clone` job; poll `GET .../{name}` until "
        "`status` is `ready` (or `failed`, with `status_reason`). Send the clip as `reference_audio`, or, "
        "above the direct upload limit, through `POST /api/voice/uploads` and name its `upload_id`."
    ),
    responses={409: {"model": ErrorResponse, "description": "Name taken"}, **_TOO_LARGE, **_RATE_LIMITED},
    dependencies=[rate_limit("speaker_create", 5)],
)
def create_speaker(
    services: ServicesDep,
    api_key: ApiKeyDep,
    name: Annotated[str, Form(description="Unique; lowercase letters/digits joined by single hyphens")],
    language: Annotated[str, Form(description="BCP-47 language-REGION, e.g. en-US, hi-IN")],
    reference_audio: Annotated[UploadFile | None, File(description="WAV or MP3, 10-60 s, clean speech")] = None,
    description: Annotated[str | None, Form(max_length=MAX_DESCRIPTION_CHARS)] = None,
    upload_id: Annotated[str | None, Form(description=_UPLOAD_ID_FORM)] = None,
) -> SpeakerCreated:
    # Cheap checks before the upload is spooled (or fetched from storage) and probed.
    validate_name(name)
    validate_language(language)
    if upload_id:
        with uploads.staged_upload(services, api_key.owner, upload_id) as staged:
            record = speakers.create_speaker(services, api_key.owner, name, language, description, staged.path)
    elif reference_audio is not None:
        cli = "voice-onboarding speakers create NAME LANGUAGE FILE"
        with spooled_upload(reference_audio, services.settings.max_direct_upload_bytes, UPLOADS, cli) as path:
            record = speakers.create_speaker(services, api_key.owner, name, language, description, path)
    else:
        raise InvalidRequest("Send the reference clip as `reference_audio` or name a presigned `upload_id`")
    return SpeakerCreated(
        name=record.name, language=record.language, status="created", message=speakers.CREATED_MESSAGE
    )


@router.get("/models/speakers/{name}", response_model=SpeakerDetails, summary="Get speaker")
def get_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> SpeakerDetails:
    record = services.speakers.require(api_key.owner, name)
    adapters = speaker_training.list_adapters(services, api_key.owner, name)
    return SpeakerDetails(
        **_summary(record).model_dump(),
        status=speakers.speaker_status(record),
        status_reason=record.clone_error,
        reference_duration_seconds=record.reference_duration,
        tts_type=record.tts_type,
        training_status=record.training_status.value,
        training_reason=record.training_error,
        progress=record.progress,
        adapters=[AdapterInfo.of(a) for a in adapters],
    )


@router.delete(
    "/models/speakers/{name}",
    response_model=Message,
    summary="Delete speaker",
    description="Deletes the speaker, its dataset and adapters (every stored file); undeploys from the catalog first.",
    responses=_CONFLICT,
)
def delete_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> Message:
    speakers.delete_speaker(services, api_key.owner, name)
    return Message(detail="Speaker deleted")


@router.get(
    "/models/speakers/{name}/reference",
    response_class=Response,
    summary="Reference audio",
    description="Streams the reference clip the speaker was created from, in its uploaded format.",
    responses={
        200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "The reference clip"},
        307: {"description": "Clip above the response size limit: redirect to a presigned S3 URL"},
    },
)
def get_reference(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> Response:
    record = services.speakers.require(api_key.owner, name)
    data, url = speakers.reference_download(services, record)
    if url is not None:
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    return Response(
        data,
        media_type=record.reference_content_type,
        headers={"Content-Disposition": content_disposition(speakers.reference_filename(record), "inline")},
    )


@router.get("/models/speakers/{name}/dataset", response_model=DatasetInfo, summary="Dataset status")
def get_dataset(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DatasetInfo:
    return _dataset(speaker_dataset.summary(services, api_key.owner, name))


@router.delete(
    "/models/speakers/{name}/dataset",
    response_model=DatasetInfo,
    summary="Clear dataset",
    description="Removes all uploaded samples. Does not delete the speaker (nor its trained adapters).",
    responses=_CONFLICT,
)
def clear_dataset(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DatasetInfo:
    speaker_dataset.clear(services, api_key.owner, name)
    return _dataset(speaker_dataset.summary(services, api_key.owner, name))


@router.post(
    "/models/speakers/{name}/dataset/sample",
    response_model=DatasetSampleCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Upload dataset sample",
    description=(
        "Rate limit: 30/minute per API key. Audio: WAV or MP3, 5-30 seconds, with the exact transcript "
        f"(at most {MAX_TRANSCRIPT_CHARS} characters). Allowed during training: a run trains on the samples "
        "present when it started. Send the audio as `audio`, or, above the direct upload limit, through "
        "`POST /api/voice/uploads` and name its `upload_id`."
    ),
    responses={**_TOO_LARGE, **_RATE_LIMITED},
    dependencies=[rate_limit("dataset_sample", 30)],
)
def upload_dataset_sample(
    services: ServicesDep,
    api_key: ApiKeyDep,
    name: SpeakerName,
    transcript: Annotated[str, Form(description="Exact text spoken in the audio")],
    audio: Annotated[UploadFile | None, File(description="WAV or MP3, 5-30 s")] = None,
    upload_id: Annotated[str | None, Form(description=_UPLOAD_ID_FORM)] = None,
) -> DatasetSampleCreated:
    services.speakers.require(api_key.owner, name)  # 404 before reading a byte of audio
    if upload_id:
        with uploads.staged_upload(services, api_key.owner, upload_id) as staged:
            sample = speaker_dataset.add_sample(services, api_key.owner, name, staged.path, transcript)
    elif audio is not None:
        cli = "voice-onboarding dataset upload NAME FILE TRANSCRIPT"
        with spooled_upload(audio, services.settings.max_direct_upload_bytes, UPLOADS, cli) as path:
            sample = speaker_dataset.add_sample(services, api_key.owner, name, path, transcript)
    else:
        raise InvalidRequest("Send the audio as `audio` or name a presigned `upload_id`")
    return DatasetSampleCreated(
        sample_id=sample.sample_id, duration_seconds=sample.duration_seconds, transcript=sample.transcript
    )


@router.post(
    "/models/speakers/{name}/deploy",
    response_model=DeployResult,
    summary="Deploy speaker",
    description=(
        "Rate limit: 5/minute per API key. Publishes the speaker to the shared voice catalog. Needs a "
        "completed clone (`status: ready`, else 409). The `voice_sample_uuid` is assigned at the first "
        "deploy and kept across undeploy/redeploy."
    ),
    responses={409: {"model": ErrorResponse, "description": "Speaker not ready"}, **_RATE_LIMITED},
    dependencies=[rate_limit("speaker_deploy", 5)],
)
def deploy_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DeployResult:
    record = catalog.deploy(services, api_key.owner, name)
    return DeployResult(name=record.name, deployed=record.deployed, voice_sample_uuid=record.voice_sample_uuid)


@router.delete(
    "/models/speakers/{name}/deploy",
    response_model=DeployResult,
    summary="Undeploy speaker",
    description="Removes from the catalog. Does not delete the speaker or dataset; the uuid is kept for a redeploy.",
)
def undeploy_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DeployResult:
    record = catalog.undeploy(services, api_key.owner, name)
    return DeployResult(name=record.name, deployed=record.deployed, voice_sample_uuid=record.voice_sample_uuid)


@router.post(
    "/models/speakers/{name}/train",
    response_model=TrainAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Train a LoRA adapter",
    description=(
        "Starts a `train_lora` job on the dataset as it is now (needs a `ready` or `trained` dataset and a "
        "`ready` speaker, else 422; 409 while a clone or training runs). Each run makes the next adapter "
        "version, stored with its hyperparameters and evaluation: see `GET .../adapters`. The body is "
        "optional; omitted hyperparameters take their defaults."
    ),
    responses=_CONFLICT,
)
def train_speaker(
    services: ServicesDep,
    api_key: ApiKeyDep,
    name: SpeakerName,
    hyperparameters: Annotated[TrainRequest | None, Body()] = None,
) -> TrainAccepted:
    chosen = (hyperparameters or TrainRequest()).model_dump()
    adapter = speaker_training.start_training(services, api_key.owner, name, chosen)
    return TrainAccepted(
        name=name, adapter_version=adapter.version, status=adapter.status.value, hyperparameters=chosen
    )


@router.get(
    "/models/speakers/{name}/adapters",
    response_model=list[AdapterInfo],
    summary="LoRA adapter versions",
    description="Every training run, oldest first, with its hyperparameters, losses and evaluation.",
)
def list_adapters(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> list[AdapterInfo]:
    return [AdapterInfo.of(a) for a in speaker_training.list_adapters(services, api_key.owner, name)]


@router.get(
    "/catalog",
    response_model=list[CatalogVoice],
    summary="Voice catalog",
    description="Every deployed speaker (all tenants: the catalog is shared), by name.",
)
def list_catalog(services: ServicesDep, api_key: ApiKeyDep) -> list[CatalogVoice]:
    return [CatalogVoice.model_validate(e.model_dump()) for e in catalog.list_catalog(services)]


@router.post(
    "/models/speakers/{name}/cancel",
    response_model=Message,
    summary="Cancel the running job",
    description=(
        "Stops the speaker's running clone or LoRA training (its pipeline execution and its GPU run) and marks "
        'it `failed` with the reason "cancelled"; the speaker is unlocked. The reference clip, the dataset and '
        "earlier adapters are kept. 409 when no job is running."
    ),
    responses={409: {"model": ErrorResponse, "description": "No job is running"}},
)
def cancel_speaker_job(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName, gpu: GpuClientDep) -> Message:
    from voice_onboarding.services import cancel

    cancel.cancel(services, gpu, api_key.owner, name, cancel.SPEAKER_KINDS)
    return Message(detail="Job cancelled")
