"""Rate limits per API key and route: 5th ok, 6th 429 with Retry-After, next window ok."""

from fastapi.testclient import TestClient

BASE = "/api/voice/models/speakers"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _deploy(client):
    # Deploy on an unknown speaker still counts (an authenticated call): the limit is checked first.
    return client.post(f"{BASE}/ghost/deploy")


def test_boundary_and_next_window(client, services):
    clock = FakeClock(60 * 16_667 + 20.0)  # 20 s into a minute window
    services.clock = clock
    for _ in range(5):
        assert _deploy(client).status_code == 404
    limited = _deploy(client)
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Rate limit exceeded"}
    assert limited.headers["Retry-After"] == "40"
    clock.now += 40
    assert _deploy(client).status_code == 404


def test_limits_are_per_key_and_per_route(client, services, app, api_key):
    services.clock = FakeClock(2_000_000.0)
    for _ in range(6):
        _deploy(client)
    assert _deploy(client).status_code == 429
    key2, _ = services.api_keys.create("second", ["my-partner"])
    other = TestClient(app, headers={"X-Api-Key": key2})
    assert _deploy(other).status_code == 404
    # A different route keeps its own budget.
    assert client.post(f"{BASE}/ghost/dataset/sample", data={"transcript": "x"}).status_code != 429


def test_unauthenticated_calls_do_not_consume_budget(anon_client, client, services):
    services.clock = FakeClock(3_000_000.0)
    for _ in range(10):
        assert anon_client.post(f"{BASE}/ghost/deploy").status_code == 401
    assert _deploy(client).status_code == 404
