"""Rate limits per API key and route: 5th ok, 6th 429 with Retry-After, next window ok."""

import pytest
from fastapi.testclient import TestClient

from voice_onboarding.api.rate_limit import retry_after_seconds

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


def _create_invalid(client):
    # An invalid name is refused after the limit is checked: counts without spooling audio.
    form = {"name": "Not Valid", "language": "en-US"}
    return client.post(BASE, data=form, files={"reference_audio": ("a.wav", b"x")})


def test_create_is_5_per_minute(client, services):
    clock = FakeClock(60 * 50_000 + 59.5)  # half a second before the window ends
    services.clock = clock
    assert [_create_invalid(client).status_code for _ in range(5)] == [422] * 5
    limited = _create_invalid(client)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    clock.now += 0.5  # the next window starts
    assert _create_invalid(client).status_code == 422


def test_sample_upload_is_30_per_minute(client, services):
    services.clock = FakeClock(60 * 60_000.0)
    url = f"{BASE}/ghost/dataset/sample"
    statuses = [client.post(url, data={"transcript": "hi"}).status_code for _ in range(31)]
    assert statuses == [404] * 30 + [429]  # refused requests count too (no such speaker here)


def test_counter_item_is_per_key_route_window_with_ttl(client, services, api_key):
    services.clock = FakeClock(60 * 70_000 + 5.0)
    _deploy(client)
    _deploy(client)
    key_id = services.api_keys.lookup(api_key).key_id
    item = services.dynamodb.get_item(
        TableName=services.settings.table_name,
        Key={"PK": {"S": f"RATE#{key_id}#speaker_deploy"}, "SK": {"S": f"WINDOW#{60 * 70_000}"}},
    )["Item"]
    assert item["count"] == {"N": "2"}
    assert int(item["ttl"]["N"]) > 60 * 70_000 + 60  # expires after its window, via the table's TTL


@pytest.mark.parametrize(("now", "expected"), [(120.0, 60), (120.2, 60), (179.0, 1), (179.9, 1), (150.5, 30)])
def test_retry_after_is_whole_seconds_to_the_window_end(now, expected):
    assert retry_after_seconds(now, int(now // 60) * 60) == expected
