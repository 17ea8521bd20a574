"""Lambda entry point of the API: API Gateway event -> mangum -> FastAPI."""

import gc
from typing import Any


def _import_fastapi_deferring_its_models() -> None:
    """FastAPI defines the pydantic models of the OpenAPI document at import (~20 ms of a cold start),
    used only when /openapi.json or /docs is served. Imported with pydantic's `defer_build` default on,
    they are built when a document is first generated (tests/handlers/test_cold_start.py checks it is
    unchanged). pydantic has no public switch for another package's models: `config_defaults` is its
    internal default config; a pydantic without it imports FastAPI as usual."""
    try:
        from pydantic._internal._config import config_defaults
    except ImportError:
        return
    config_defaults["defer_build"] = True
    try:
        import fastapi  # noqa: F401
    finally:
        config_defaults["defer_build"] = False


# The import below creates the app's long-lived objects (modules, classes, schemas, routes). A cyclic
# collection during it frees nothing and costs ~25 ms of every cold start; the objects are then frozen
# (gc.freeze), so later collections during requests do not walk them either.
gc.disable()
try:
    _import_fastapi_deferring_its_models()
    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum

    from voice_onboarding.api.app import create_app
    from voice_onboarding.handlers import composition
    from voice_onboarding.observability import logger, metrics, tracer

    app = create_app(services_factory=composition.services, lazy_routers=True)
    _asgi_handler = Mangum(app, lifespan="off")
finally:
    gc.enable()
gc.freeze()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # responses carry audio: keep them out of traces
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi_handler(event, context)  # type: ignore[arg-type]
