"""Secrets and internals stay inside: API keys never reach the logs (header or query form, valid or
not), and no response body carries a traceback."""

import io
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import OTHER_PARTNER, PARTNER
from voice_onboarding.observability import logger as service_logger

BASE = f"/api/voices/{PARTNER}"
WRONG_KEY = "vk_this-key-does-not-exist-0123456789"


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything the service logs, as powertools formats it (JSON lines), at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(service_logger.registered_formatter)
    logging.getLogger(service_logger.name).addHandler(handler)
    previous = service_logger.log_level
    service_logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)  # anything else that reaches the root logger (boto, starlette)
    try:
        yield stream
    finally:
        service_logger.setLevel(previous)
        logging.getLogger(service_logger.name).removeHandler(handler)


def _exercise(app, api_key: str, wav_tone, monkeypatch) -> list[int]:
    header = TestClient(app, headers={"X-Api-Key": api_key}, raise_server_exceptions=False)
    query = TestClient(app, raise_server_exceptions=False)
    q = {"api_key": api_key}
    audio = wav_tone.read_bytes()
    statuses = [
        header.get(BASE).status_code,
        query.get(BASE, params=q).status_code,
        query.post(f"{BASE}/empty", params=q, data={"name": "v"}, headers={"Idempotency-Key": "i"}).status_code,
        query.post(f"{BASE}/empty", params=q, data={"name": "v"}, headers={"Idempotency-Key": "i"}).status_code,
        query.post(f"{BASE}/v/samples", params=q, files={"file": ("a.wav", audio, "audio/wav")}).status_code,
        query.get(f"{BASE}/missing", params=q).status_code,
        query.post(f"{BASE}/v/split", params={**q, "x": "1"}, data={"max_samples": "many"}).status_code,
        query.get(f"/api/voices/{OTHER_PARTNER}", params=q).status_code,
        query.get(BASE, params={"api_key": WRONG_KEY}).status_code,
        header.get(BASE, headers={"X-Api-Key": WRONG_KEY}).status_code,
        query.post(f"/api/uploads/{PARTNER}", params=q, json={"filename": "a.wav", "size_bytes": 5}).status_code,
    ]
    from voice_onboarding.api import mappers

    def crash(*args, **kwargs):
        raise RuntimeError("unexpected failure")

    monkeypatch.setattr(mappers, "voice_details", crash)
    statuses.append(query.get(f"{BASE}/v", params=q).status_code)
    return statuses


def test_api_keys_never_reach_the_logs(app, api_key, wav_tone, monkeypatch, captured_logs, caplog):
    statuses = _exercise(app, api_key, wav_tone, monkeypatch)
    assert {200, 201, 401, 403, 404, 422, 500} <= set(statuses)
    # The test's own HTTP client (httpx) logs the URLs it calls; that is the caller, not the service.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = captured_logs.getvalue() + "\n".join(r.getMessage() for r in server_side)
    # Non-vacuous: the request lines were captured, with the key's short id.
    assert logged.count('"message":"request"') >= len(statuses)
    assert '"key_id":"' in logged and "unhandled error" in logged
    for secret in (api_key, WRONG_KEY, api_key[3:20]):
        assert secret not in logged


def test_no_response_body_carries_a_traceback(app, api_key, wav_tone, monkeypatch):
    client = TestClient(app, headers={"X-Api-Key": api_key}, raise_server_exceptions=False)
    client.post(f"{BASE}/empty", data={"name": "v"})
    from voice_onboarding.api import mappers

    def crash(*args, **kwargs):
        raise ValueError("internal detail /work/main/functions/secret.py line 3")

    monkeypatch.setattr(mappers, "voice_details", crash)
    monkeypatch.setattr(mappers, "voice_summary", crash)
    for response in (
        client.get(f"{BASE}/v"),
        client.get(BASE),
        client.post(f"{BASE}/empty", data={"name": "w"}),
        client.put(f"{BASE}/v/name", data={"name": "w2"}),
    ):
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal server error"}
    # Validation errors and domain errors are plain too.
    for response in (
        client.post(f"{BASE}/v/split", data={"max_samples": "x"}),
        client.post(f"{BASE}/v/samples", files={"file": ("a.wav", b"garbage" * 50, "audio/wav")}),
        client.get(f"{BASE}/v/test-samples/..%2F..%2Fetc%2Fpasswd"),
    ):
        assert response.status_code < 500
        body = response.text
        assert "Traceback" not in body and 'File "' not in body and "/work/" not in body
