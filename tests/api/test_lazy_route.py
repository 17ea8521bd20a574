"""LazyAPIRoute: a route declared with it is the route FastAPI would have built, built on first use.

The API's routers declare their routes with it (api/lazy_route.py); the OpenAPI export test and the API
tests check the built behaviour, these check what is set before the build against FastAPI's own build."""

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import PARTNER
from voice_onboarding.api import routes_speakers, routes_uploads, routes_voices
from voice_onboarding.api.app import create_app
from voice_onboarding.api.lazy_route import LazyAPIRoute

ROUTES = [route for module in (routes_voices, routes_speakers, routes_uploads) for route in module.router.routes]


def test_the_routers_declare_lazy_routes():
    assert ROUTES and all(isinstance(route, LazyAPIRoute) for route in ROUTES)


@pytest.mark.parametrize("declared", ROUTES, ids=lambda route: f"{sorted(route.methods)[0]} {route.path}")
def test_what_is_set_before_the_build_is_what_fastapi_builds(declared):
    path, endpoint, kwargs = declared.declaration
    lazy = LazyAPIRoute(path, endpoint, **kwargs)
    set_before_build = {k: v for k, v in vars(lazy).items() if k not in ("declaration", "built", "_building")}
    built = APIRoute(path, endpoint, **kwargs)
    for name, value in set_before_build.items():
        if name == "response_model" and isinstance(value, DefaultPlaceholder):
            continue  # declared as "from the return annotation": every build infers it the same way
        if name == "path_regex":
            assert value.pattern == built.path_regex.pattern
            continue
        assert value == getattr(built, name), name
    assert not lazy.built
    assert lazy.dependant is not None and lazy.built  # any built attribute builds it
    assert lazy.unique_id == built.unique_id


def test_requests_through_the_app_never_build_the_declared_routes(services, api_key):
    """The app declares the routers' routes again on itself (api/app.py add_routes); the routers' own
    declarations are never built (the saving: a route is built once, not twice)."""
    fresh = [LazyAPIRoute(*route.declaration[:2], **route.declaration[2]) for route in routes_voices.router.routes]
    original = routes_voices.router.routes[:]
    routes_voices.router.routes[:] = fresh
    try:
        client = TestClient(create_app(services), headers={"X-Api-Key": api_key})
        assert client.get(f"/api/voices/{PARTNER}").status_code == 200
        assert client.post(f"/api/voices/{PARTNER}/empty", data={"name": "lazy"}).status_code == 201
        assert client.get(f"/api/voices/{PARTNER}/lazy").json()["name"] == "lazy"
        assert "/api/voices/{partner}/{voice}" in client.get("/openapi.json").json()["paths"]
        assert not any(route.built for route in fresh)
    finally:
        routes_voices.router.routes[:] = original


def test_a_request_builds_only_the_route_it_matched(services, api_key):
    app = create_app(services)
    client = TestClient(app, headers={"X-Api-Key": api_key})
    assert client.get(f"/api/voices/{PARTNER}").status_code == 200
    built = [(sorted(r.methods), r.path) for r in app.router.routes if isinstance(r, LazyAPIRoute) and r.built]
    assert built == [(["GET"], "/api/voices/{partner}")]
    assert client.get(f"/api/voices/{PARTNER}/nobody").status_code == 404
    assert sum(isinstance(r, LazyAPIRoute) and r.built for r in app.router.routes) == 2


def test_a_route_on_the_app_itself_is_built_when_first_matched(services):
    app = create_app(services)
    health = next(route for route in app.router.routes if getattr(route, "path", None) == "/health")
    assert isinstance(health, LazyAPIRoute) and not health.built
    assert TestClient(app).get("/health").json()["status"] == "ok"
    assert health.built
