"""FastAPI application factory: routers, error mapping to the seed's {"detail": ...} body, request logs."""

import importlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from voice_onboarding import __version__
from voice_onboarding.api import routes_voices
from voice_onboarding.api.idempotency import idempotency_middleware
from voice_onboarding.api.lazy_route import LazyAPIRoute
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
_Next = Callable[[Request], Awaitable[Response]]


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


def create_app(
    services: Services | None = None,
    services_factory: Callable[[], Services] | None = None,
    lazy_routers: bool = False,
) -> FastAPI:
    """The API on `services`, or on what `services_factory` returns on first use (neither: the app
    serves only its OpenAPI document, e.g. for `make openapi`). `lazy_routers` (the Lambda handler): the
    speakers and uploads routers are built on the first request under their prefix (or the first OpenAPI
    export), which keeps their route construction out of the cold start of a Lambda that may never serve
    them."""
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
    app.state.services_factory = services_factory
    add_routes(app, routes_voices.router)
    optional = _OptionalRouters(app)
    if not lazy_routers:
        optional.include()
    _document_malformed_bodies(app, optional)

    @app.exception_handler(DomainError)
    async def domain_error_handler(_: Request, error: DomainError) -> JSONResponse:
        return _error_response(error)

    # Registered before log_and_guard, so it runs inside it (errors still become clean responses).
    app.middleware("http")(idempotency_middleware)

    if lazy_routers:

        @app.middleware("http")
        async def include_on_first_use(request: Request, call_next: _Next) -> Response:
            # Routing happens after the middlewares, so routes added here serve this very request.
            optional.include(request.url.path)
            return await call_next(request)

    @app.middleware("http")
    async def log_and_guard(request: Request, call_next: _Next) -> Response:
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

    app.router.route_class = LazyAPIRoute  # the app's own routes too (voice_onboarding/api/lazy_route.py)

    @app.get("/health", tags=["ops"], summary="Liveness check")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def _document_malformed_bodies(app: FastAPI, optional: "_OptionalRouters") -> None:
    """FastAPI answers an unparseable JSON or multipart body with 400 before any route runs; say so
    for every operation that takes a body (found by schemathesis' negative fuzzing)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        optional.include()  # the schema documents every route, built or not
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("400", _MALFORMED_BODY)
        _document_links(schema)
        _optional_files_as_files(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


VOICE = "/api/voices/{partner}/{voice}"
SPEAKER = "/api/voice/models/speakers/{name}"
# OpenAPI links: which response names the resource that later operations address. Clients see how
# calls chain; the stateful fuzzer (tests/reliability/test_stateful_fuzz.py) follows them to create
# voices, samples and speakers and then call every operation on them.
_LINKS: list[tuple[str, str, str, str, dict[str, str]]] = [
    # (producer method, producer path, status, consumers' path prefix, parameters)
    (
        "post",
        "/api/voices/{partner}",
        "201",
        VOICE,
        {"partner": "$request.path.partner", "voice": "$response.body#/name"},
    ),
    (
        "post",
        "/api/voices/{partner}/empty",
        "201",
        VOICE,
        {"partner": "$request.path.partner", "voice": "$response.body#/name"},
    ),
    ("put", f"{VOICE}/name", "200", VOICE, {"partner": "$request.path.partner", "voice": "$response.body#/name"}),
    (
        "post",
        f"{VOICE}/samples",
        "201",
        f"{VOICE}/samples/{{index}}",
        {"partner": "$request.path.partner", "voice": "$request.path.voice", "index": "$response.body#/index"},
    ),
    ("post", "/api/voice/models/speakers", "201", SPEAKER, {"name": "$response.body#/name"}),
]


def _optional_files_as_files(schema: dict[str, Any]) -> None:
    """An optional upload (`UploadFile | None`) is documented by FastAPI as anyOf[binary, null]; a
    multipart part can only be present or absent, and generators (schemathesis, client codegen) only
    send a part as a file when its schema is the binary string itself. Document it as that."""
    for component in schema.get("components", {}).get("schemas", {}).values():
        for name, prop in component.get("properties", {}).items():
            variants = prop.get("anyOf") or []
            binary = [v for v in variants if v.get("contentMediaType") == "application/octet-stream"]
            if len(variants) == 2 and binary and {"type": "null"} in variants:
                rest = {k: v for k, v in prop.items() if k != "anyOf"}
                component["properties"][name] = {**binary[0], **rest}


def _document_links(schema: dict[str, Any]) -> None:
    paths = schema.get("paths", {})
    for method, path, status, prefix, parameters in _LINKS:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for target, item in paths.items():
            if not target.startswith(prefix):
                continue
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                used = {name: value for name, value in parameters.items() if "{" + name + "}" in target}
                links[operation["operationId"]] = {"operationId": operation["operationId"], "parameters": used}


_MALFORMED_BODY = {
    "description": "Malformed request body (unparseable JSON or multipart)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Serve `router`'s routes from the app. A router of `LazyAPIRoute`s (api/lazy_route.py) is declared
    again on the app itself, route by route, unbuilt: each is built when it first matches, so a cold
    start's first request builds its own route alone, where an included router has FastAPI build all of
    its routes in the app's context on the first request through it. The app adds no prefix or setting to
    its routers; as an include does, it is the routes' dependency-overrides provider."""
    if not all(isinstance(route, LazyAPIRoute) for route in router.routes):
        app.include_router(router)
        return
    for route in router.routes:
        path, endpoint, declared = route.declaration
        app.router.routes.append(LazyAPIRoute(path, endpoint, **{**declared, "dependency_overrides_provider": app}))


class _OptionalRouters:
    """Routers added by later capabilities, one line each: path prefix -> module with a `router`."""

    ROUTERS = {
        "/api/voice/": "voice_onboarding.api.routes_speakers",
        "/api/uploads/": "voice_onboarding.api.routes_uploads",
        "/api/gpu/": "voice_onboarding.api.routes_gpu",
    }

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.pending = dict(self.ROUTERS)

    def include(self, path: str | None = None) -> None:
        """Include the routers serving `path` (None: all) that are not included yet."""
        if not self.pending:
            return
        for prefix, module in list(self.pending.items()):
            if path is None or path.startswith(prefix):
                add_routes(self.app, importlib.import_module(module).router)
                del self.pending[prefix]
