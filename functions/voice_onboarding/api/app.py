"""FastAPI application factory: routers, error mapping to the seed's {"detail": ...} body, request logs."""

import time
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from voice_onboarding import __version__
from voice_onboarding.api import routes_voices
from voice_onboarding.api.idempotency import idempotency_middleware
from voice_onboarding.domain.errors import DomainError, ServiceUnavailable
from voice_onboarding.observability import logger
from voice_onboarding.services.container import Services

# AWS errors that mean "try again shortly", not "your request is wrong".
RETRYABLE_AWS_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalError",
        "TransactionConflictException",
    }
)
RETRY_AFTER_SECONDS = "2"


def _error_response(error: Exception) -> JSONResponse:
    if isinstance(error, DomainError):
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in RETRYABLE_AWS_CODES:
        logger.warning("retryable AWS error", extra={"aws_error": error.response["Error"].get("Code")})
        return JSONResponse(
            {"detail": ServiceUnavailable.default_detail},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if isinstance(error, BotoCoreError):
        logger.warning("AWS connection error", extra={"aws_error": type(error).__name__})
        return JSONResponse(
            {"detail": ServiceUnavailable.default_detail},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    # Unknown failure: log the trace, never return it.
    logger.exception("unhandled error")
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def create_app(services: Services | None = None) -> FastAPI:
    app = FastAPI(
        title="Voice Onboarding API",
        version=__version__,
        description=(
            "Turn a recording of a speaker into a usable TTS voice: upload, split into samples, "
            "embed on a GPU, score, pick the best sample; zero-shot speakers, LoRA datasets and a "
            "voice catalog. Authenticate with the `X-Api-Key` header or the `api_key` query parameter."
        ),
    )
    app.state.services = services
    app.include_router(routes_voices.router)
    _register_optional_routers(app)
    _document_malformed_bodies(app)

    @app.exception_handler(DomainError)
    async def domain_error_handler(_: Request, error: DomainError) -> JSONResponse:
        return _error_response(error)

    # Registered before log_and_guard, so it runs inside it (errors still become clean responses).
    app.middleware("http")(idempotency_middleware)

    @app.middleware("http")
    async def log_and_guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception as error:  # noqa: BLE001 - last line of defence: no 500 page, no trace
            response = _error_response(error)
        # Path only: the query string may carry the api_key.
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "key_id": getattr(request.state, "key_id", None),
            },
        )
        return response

    @app.get("/health", tags=["ops"], summary="Liveness check")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def _document_malformed_bodies(app: FastAPI) -> None:
    """FastAPI answers an unparseable JSON or multipart body with 400 before any route runs; say so
    for every operation that takes a body (found by schemathesis' negative fuzzing)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("400", _MALFORMED_BODY)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_MALFORMED_BODY = {
    "description": "Malformed request body (unparseable JSON or multipart)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def _register_optional_routers(app: FastAPI) -> None:
    """Routers added by later capabilities register here, one line each."""
    from voice_onboarding.api import routes_speakers, routes_uploads

    app.include_router(routes_speakers.router)
    app.include_router(routes_uploads.router)
