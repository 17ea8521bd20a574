"""Presigned upload flow for files above the direct multipart limit."""

from fastapi import APIRouter, status

from voice_onboarding.api.lazy_route import LazyAPIRoute
from voice_onboarding.api.schemas import ErrorResponse, UploadRequest, UploadTicket
from voice_onboarding.api.security import PartnerDep, ServicesDep
from voice_onboarding.services import uploads

router = APIRouter(
    prefix="/api/uploads/{partner}",
    route_class=LazyAPIRoute,
    tags=["uploads"],
    responses={
        401: {"model": ErrorResponse, "description": "Invalid API key"},
        403: {"model": ErrorResponse, "description": "Access denied"},
        413: {"model": ErrorResponse, "description": "File too large"},
        422: {"model": ErrorResponse, "description": "Invalid input"},
    },
)


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
