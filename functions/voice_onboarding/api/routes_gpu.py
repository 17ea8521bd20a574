"""RunPod's webhook: a GPU run ended. Authenticated by the run's unguessable per-job secret (RunPod cannot
send headers), not by an API key; internal, so kept out of the public OpenAPI document."""

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from voice_onboarding.api.security import ServicesDep
from voice_onboarding.services.gpu_jobs import runs

router = APIRouter()


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
