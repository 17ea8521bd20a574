"""HTTP routes of speakers-api.txt. Speakers belong to the API key's owner tenant."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile, status
from fastapi.responses import Response

from voice_onboarding.api.rate_limit import rate_limit
from voice_onboarding.api.schemas import ErrorResponse, Message
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
from voice_onboarding.api.security import ApiKeyDep, ServicesDep
from voice_onboarding.api.uploads import spooled_upload
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.services import speakers

_ERRORS = {
    401: {"model": ErrorResponse, "description": "Invalid API key"},
    404: {"model": ErrorResponse, "description": "Speaker not found"},
    409: {"model": ErrorResponse, "description": "Conflict (exists, busy or not ready)"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded"},
}
CREATED_MESSAGE = "Speaker created. Upload dataset samples and deploy to use in flows."

router = APIRouter(prefix="/api/voice", tags=["speakers"], responses=_ERRORS)
SpeakerName = Annotated[str, Path(min_length=1, max_length=64, description="Speaker name")]


def _summary(record: SpeakerRecord) -> SpeakerSummary:
    return SpeakerSummary(
        name=record.name,
        language=record.language,
        description=record.description,
        deployed=record.deployed,
        voice_sample_uuid=record.voice_sample_uuid,
        created_at=record.created_at,
    )


def _details(record: SpeakerRecord) -> SpeakerDetails:
    return SpeakerDetails(
        **_summary(record).model_dump(),
        status=speakers.speaker_status(record),
        status_reason=record.clone_error,
        reference_duration_seconds=record.reference_duration,
        tts_type=record.tts_type,
        training_status=record.training_status.value,
        training_reason=record.training_error,
        adapters=[AdapterInfo.model_validate(a.model_dump(mode="json")) for a in record.adapters],
    )


@router.get("/models/speakers", response_model=list[SpeakerSummary], summary="List speakers")
def list_speakers(services: ServicesDep, api_key: ApiKeyDep) -> list[SpeakerSummary]:
    return [_summary(r) for r in services.speakers.list_for_owner(api_key.owner)]


@router.post(
    "/models/speakers",
    response_model=SpeakerCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create speaker (zero-shot clone)",
    description="Rate limit: 5/minute. Reference audio: WAV or MP3, 10-60 seconds of clean speech.",
    dependencies=[rate_limit("speaker_create", 5)],
)
def create_speaker(
    services: ServicesDep,
    api_key: ApiKeyDep,
    name: Annotated[str, Form(description="Unique; lowercase with hyphens")],
    language: Annotated[str, Form(description="e.g. en-US, hi-IN")],
    reference_audio: Annotated[UploadFile, File(description="WAV or MP3, 10-60 s")],
    description: Annotated[str | None, Form(max_length=500)] = None,
) -> SpeakerCreated:
    speakers.validate_name(name)
    speakers.validate_language(language)
    with spooled_upload(reference_audio, services.settings.max_direct_upload_bytes) as path:
        record = speakers.create_speaker(services, api_key.owner, name, language, description, path)
    return SpeakerCreated(name=record.name, language=record.language, status="created", message=CREATED_MESSAGE)


@router.get("/models/speakers/{name}", response_model=SpeakerDetails, summary="Get speaker")
def get_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> SpeakerDetails:
    return _details(services.speakers.require(api_key.owner, name))


@router.delete(
    "/models/speakers/{name}",
    response_model=Message,
    summary="Delete speaker",
    description="Deletes speaker and dataset; undeploys from the catalog first.",
)
def delete_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> Message:
    speakers.delete_speaker(services, api_key.owner, name)
    return Message(detail="Speaker deleted")


@router.get(
    "/models/speakers/{name}/reference",
    response_class=Response,
    summary="Reference audio",
    responses={200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "The reference clip"}},
)
def get_reference(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> Response:
    record = services.speakers.require(api_key.owner, name)
    data = services.blobs.get_bytes(record.reference_key) or b""
    extension = record.reference_key.rsplit(".", 1)[-1]
    return Response(
        data,
        media_type=record.reference_content_type,
        headers={"Content-Disposition": f'inline; filename="{name}-reference.{extension}"'},
    )


def _dataset_info(services: ServicesDep, owner: str, name: str) -> DatasetInfo:
    record = services.speakers.require(owner, name)
    samples = services.speakers.list_samples(owner, name)
    return DatasetInfo(
        name=name,
        sample_count=len(samples),
        total_duration_seconds=round(sum(s.duration_seconds for s in samples), 2),
        status=speakers.dataset_status(record, samples),
    )


@router.get("/models/speakers/{name}/dataset", response_model=DatasetInfo, summary="Dataset status")
def get_dataset(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DatasetInfo:
    return _dataset_info(services, api_key.owner, name)


@router.delete(
    "/models/speakers/{name}/dataset",
    response_model=DatasetInfo,
    summary="Clear dataset",
    description="Removes all uploaded samples. Does not delete the speaker.",
)
def clear_dataset(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DatasetInfo:
    speakers.clear_dataset(services, api_key.owner, name)
    return _dataset_info(services, api_key.owner, name)


@router.post(
    "/models/speakers/{name}/dataset/sample",
    response_model=DatasetSampleCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Upload dataset sample",
    description="Rate limit: 30/minute. Audio: WAV or MP3, 5-30 seconds, with its exact transcript.",
    dependencies=[rate_limit("dataset_sample", 30)],
)
def upload_dataset_sample(
    services: ServicesDep,
    api_key: ApiKeyDep,
    name: SpeakerName,
    audio: Annotated[UploadFile, File(description="WAV or MP3, 5-30 s")],
    transcript: Annotated[str, Form(description="Exact text spoken in the audio")],
) -> DatasetSampleCreated:
    services.speakers.require(api_key.owner, name)
    with spooled_upload(audio, services.settings.max_direct_upload_bytes) as path:
        sample = speakers.add_dataset_sample(services, api_key.owner, name, path, transcript)
    return DatasetSampleCreated(
        sample_id=sample.sample_id, duration_seconds=sample.duration_seconds, transcript=sample.transcript
    )


@router.post(
    "/models/speakers/{name}/deploy",
    response_model=DeployResult,
    summary="Deploy speaker",
    description="Rate limit: 5/minute. Publishes the speaker to the shared voice catalog.",
    dependencies=[rate_limit("deploy", 5)],
)
def deploy_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DeployResult:
    record = speakers.deploy(services, api_key.owner, name)
    return DeployResult(name=record.name, deployed=record.deployed, voice_sample_uuid=record.voice_sample_uuid)


@router.delete(
    "/models/speakers/{name}/deploy",
    response_model=DeployResult,
    summary="Undeploy speaker",
    description="Removes from the catalog. Does not delete the speaker or dataset.",
)
def undeploy_speaker(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> DeployResult:
    record = speakers.undeploy(services, api_key.owner, name)
    return DeployResult(name=record.name, deployed=record.deployed, voice_sample_uuid=record.voice_sample_uuid)


@router.post(
    "/models/speakers/{name}/train",
    response_model=TrainAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Train a LoRA adapter",
    description=(
        "Fine-tunes a LoRA adapter on the dataset (needs a `ready` dataset). Each run makes a new adapter "
        "version, stored with its hyperparameters and evaluation; see `GET .../adapters`."
    ),
)
def train_speaker(
    services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName, request: TrainRequest | None = None
) -> TrainAccepted:
    hyperparameters = (request or TrainRequest()).model_dump()
    adapter = speakers.start_training(services, api_key.owner, name, hyperparameters)
    return TrainAccepted(
        name=name, adapter_version=adapter.version, status=adapter.status.value, hyperparameters=hyperparameters
    )


@router.get("/models/speakers/{name}/adapters", response_model=list[AdapterInfo], summary="LoRA adapter versions")
def list_adapters(services: ServicesDep, api_key: ApiKeyDep, name: SpeakerName) -> list[AdapterInfo]:
    return _details(services.speakers.require(api_key.owner, name)).adapters


@router.get("/catalog", response_model=list[CatalogVoice], summary="Voice catalog (deployed speakers)")
def list_catalog(services: ServicesDep, api_key: ApiKeyDep) -> list[CatalogVoice]:
    return [CatalogVoice.model_validate(e.model_dump()) for e in services.speakers.catalog()]
