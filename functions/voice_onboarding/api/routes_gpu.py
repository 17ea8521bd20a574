"""Internal routes of the GPU runs, kept out of the public OpenAPI document and authenticated by the
run's unguessable per-job secret, not by an API key:

- RunPod's webhook (a run ended): the secret in the query string (RunPod cannot send headers);
- the worker's callbacks (contract.gpu.WorkerCallback): progress, which is the run's heartbeat, and
  fresh upload URLs for the job's own outputs; the secret as `Authorization: Bearer`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from voice_onboarding.api.security import ServicesDep
from voice_onboarding.services.gpu_jobs import callbacks, runs

router = APIRouter()


class WorkerProgress(BaseModel):
    step: str = Field(min_length=1, max_length=500, description="The worker's current step")


class UploadUrlRequest(BaseModel):
    output: str = Field(min_length=1, max_length=300, description="contract.gpu.output_name of the output")


class UploadUrl(BaseModel):
    url: str
    expires_in: int


class ProgressRecorded(BaseModel):
    outcome: str = "recorded"


@router.post("/api/gpu/webhook/{job_id}/{stage}", include_in_schema=False)
def gpu_webhook(
    job_id: str,
    stage: str,
    services: ServicesDep,
    token: str = Query(..., min_length=16, max_length=200),
    body: dict[str, Any] = Body(...),
) -> JSONResponse:
    try:
        outcome = runs.deliver_webhook(services, job_id, stage, token, body)
    except runs.WebhookRejected:
        return JSONResponse({"detail": "Not found"}, status_code=404)
    except ValueError:  # not a RunPod status body
        return JSONResponse({"detail": "Invalid webhook body"}, status_code=422)
    return JSONResponse({"outcome": outcome}, status_code=200)


AuthorizationHeader = Annotated[str | None, Header(alias="Authorization")]


def _secret(authorization: str | None) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _refused(error: Exception) -> JSONResponse:
    if isinstance(error, callbacks.RunOver):
        return JSONResponse({"detail": str(error)}, status_code=409)
    return JSONResponse({"detail": str(error)}, status_code=403)


@router.post("/api/gpu/jobs/{job_id}/{stage}/progress", include_in_schema=False, response_model=None)
def worker_progress(
    job_id: str, stage: str, body: WorkerProgress, services: ServicesDep, authorization: AuthorizationHeader = None
) -> ProgressRecorded | JSONResponse:
    try:
        callbacks.report_progress(services, job_id, stage, _secret(authorization), body.step)
    except (callbacks.CallbackRejected, callbacks.RunOver) as error:
        return _refused(error)
    return ProgressRecorded()


@router.post("/api/gpu/jobs/{job_id}/{stage}/upload-url", include_in_schema=False, response_model=None)
def worker_upload_url(
    job_id: str, stage: str, body: UploadUrlRequest, services: ServicesDep, authorization: AuthorizationHeader = None
) -> UploadUrl | JSONResponse:
    try:
        signed = callbacks.upload_url(services, job_id, stage, _secret(authorization), body.output)
    except (callbacks.CallbackRejected, callbacks.RunOver) as error:
        return _refused(error)
    return UploadUrl(**signed)
