"""The API Lambda's cold start: what its import leaves for the first request, and that the lazily built
parts (speakers and uploads routers, the X-Ray tracer) still behave. Speed itself: benchmarks/api_load.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import PARTNER
from voice_onboarding.api.app import create_app
from voice_onboarding.observability import LazyTracer

REPO = Path(__file__).resolve().parents[2]


def _after_import(extra_env: dict[str, str], report: str = "sorted(sys.modules)") -> object:
    code = f"import sys, json, voice_onboarding.handlers.api as api; print(json.dumps({report}))"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}:{REPO}", **extra_env}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _modules_after_import(extra_env: dict[str, str]) -> set[str]:
    return set(_after_import(extra_env))  # type: ignore[arg-type]


def test_handler_import_leaves_xray_boto3_and_optional_routers_for_later():
    modules = _modules_after_import({"POWERTOOLS_TRACE_DISABLED": "false"})  # outside Lambda: tracing off
    assert "aws_xray_sdk.core" not in modules
    assert "boto3" not in modules
    assert "numpy" not in modules  # only audio work needs it
    assert "httpx" not in modules  # only a RunPod client needs it (the cancel endpoint's)
    assert "voice_onboarding.api.routes_speakers" not in modules
    assert "voice_onboarding.api.routes_uploads" not in modules


def test_handler_import_builds_no_route():
    """Routes are built on first use (api/lazy_route.py): by FastAPI, in the app's context, on the first
    request through their router, or, for the app's own routes, when first matched."""
    app_routes = "[(type(r).__name__, r.built) for r in api.app.router.routes if type(r).__name__.endswith('APIRoute')]"
    voices = _after_import({}, "[r.built for r in sys.modules['voice_onboarding.api.routes_voices'].router.routes]")
    routes = _after_import({}, app_routes)
    assert len(routes) == len(voices) + 1 and all(route == ["LazyAPIRoute", False] for route in routes)  # + /health
    assert voices and not any(voices)


def test_the_handlers_app_serves_the_committed_openapi_document_from_deferred_fastapi_models():
    """The handler imports FastAPI with its OpenAPI models' build deferred: built on the first document,
    which is the committed one (docs/openapi.json), and served over the Lambda handler."""
    report = (
        "{'deferred': not sys.modules['fastapi.openapi.models'].OpenAPI.__pydantic_complete__,"
        " 'document': __import__('infra.openapi_export').openapi_export.render(api.app.openapi())}"
    )
    after = _after_import({}, report)
    assert after["deferred"]  # type: ignore[index]
    # Equal as JSON: the lazily included routers' paths come after /health in the handler's document.
    assert json.loads(after["document"]) == json.loads((REPO / "docs" / "openapi.json").read_text())  # type: ignore[index]


def test_inside_lambda_with_tracing_the_handler_is_traced_from_import():
    modules = _modules_after_import({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"})
    assert "aws_xray_sdk.core" in modules


def test_lazy_tracer_passes_handlers_through_when_tracing_is_off(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tracer = LazyTracer("svc")

    def handler(event, context):
        return event

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert "tracer" not in tracer.__dict__  # never built


def test_lazy_routers_serve_their_first_request_and_the_schema_lists_every_route(services, api_key):
    lazy_app = create_app(services, lazy_routers=True)
    routes_before = len(lazy_app.routes)
    client = TestClient(lazy_app, headers={"X-Api-Key": api_key}, raise_server_exceptions=False)
    assert client.get(f"/api/voices/{PARTNER}").status_code == 200
    assert client.get("/api/voice/models/speakers").json() == []
    upload = client.post(f"/api/uploads/{PARTNER}", json={"filename": "a.wav", "size_bytes": 10_000_000})
    assert upload.status_code == 201, upload.text
    webhook = client.post("/api/gpu/webhook/job-1/embed?token=" + "x" * 43, json={"id": "r", "status": "COMPLETED"})
    assert webhook.status_code == 404  # the route is served (no such run)
    eager_paths = {getattr(route, "path", None) for route in create_app(services).routes}
    assert len(lazy_app.routes) > routes_before and {getattr(r, "path", None) for r in lazy_app.routes} == eager_paths
    schema_paths = set(create_app(services, lazy_routers=True).openapi()["paths"])
    assert schema_paths == set(create_app(services).openapi()["paths"])
    assert "/api/voice/models/speakers" in schema_paths
