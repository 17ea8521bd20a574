"""Presigned upload flow for files above the direct multipart limit."""

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from voice_onboarding.api.schemas import ErrorResponse
from voice_onboarding.api.security import PartnerDep, ServicesDep
from voice_onboarding.services import uploads

router = APIRouter(
    prefix="/api/uploads/{partner}",
    tags=["uploads"],
    responses={
        401: {"model": ErrorResponse, "description": "Invalid API key"},
        403: {"model": ErrorResponse, "description": "Access denied"},
        413: {"model": ErrorResponse, "description": "File too large"},
        422: {"model": ErrorResponse, "description": "Invalid input"},
    },
)


class UploadRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$", max_length=127, examples=["audio/wav"]
    )
    size_bytes: int = Field(gt=0, description="Exact size of the file to upload (at most `max_bytes`)")


class UploadTicket(BaseModel):
    upload_id: str
    url: str = Field(description="POST the file here as multipart/form-data with `fields` first, then `file`")
    fields: dict[str, Any]
    expires_in: int = Field(description="Seconds the presigned POST stays valid")
    expires_at: int = Field(description="Unix time the presigned POST expires")
    max_bytes: int = Field(description="S3 refuses bodies above this size")


@router.post(
    "",
    response_model=UploadTicket,
    status_code=status.HTTP_201_CREATED,
    summary="Create a presigned upload",
    description=(
        "For files above the direct upload limit: POST the file to `url` with `fields`, then create a voice "
        "(`POST /api/voices/{partner}` with form field `upload_id`) or add a sample the same way."
    ),
)
def create_upload(services: ServicesDep, partner: PartnerDep, request: UploadRequest) -> UploadTicket:
    ticket = uploads.create_upload(services, partner, request.filename, request.size_bytes, request.content_type)
    return UploadTicket.model_validate(ticket)
