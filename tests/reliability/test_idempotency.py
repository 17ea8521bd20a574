"""Idempotency-Key: a retried POST replays the first answer and never makes a second voice or job."""

from fastapi.testclient import TestClient

from tests.conftest import PARTNER

BASE = f"/api/voices/{PARTNER}"


def test_retried_create_returns_first_response_and_one_voice(client):
    headers = {"Idempotency-Key": "create-1"}
    first = client.post(f"{BASE}/empty", data={"name": "v"}, headers=headers)
    again = client.post(f"{BASE}/empty", data={"name": "v"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(client.get(BASE).json()) == 1


def test_without_the_header_a_duplicate_is_a_conflict(client):
    client.post(f"{BASE}/empty", data={"name": "v"})
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 409


def test_retried_job_submission_starts_one_job(client, dispatcher, wav_tone):
    client.post(f"{BASE}/empty", data={"name": "v"})
    client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    headers = {"Idempotency-Key": "embed-1"}
    first = client.post(f"{BASE}/v/embed", headers=headers)
    second = client.post(f"{BASE}/v/embed", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert len(dispatcher.jobs) == 1


def test_same_key_with_a_different_request_is_rejected(client):
    client.post(f"{BASE}/empty", data={"name": "a"}, headers={"Idempotency-Key": "k"})
    response = client.post(f"{BASE}/empty", data={"name": "b"}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert "different request" in response.json()["detail"]
    assert [v["name"] for v in client.get(BASE).json()] == ["a"]


def test_keys_are_scoped_per_api_key(client, app, services):
    key2, _ = services.api_keys.create("second", [PARTNER])
    second = TestClient(app, headers={"X-Api-Key": key2})
    client.post(f"{BASE}/empty", data={"name": "a"}, headers={"Idempotency-Key": "shared"})
    response = second.post(f"{BASE}/empty", data={"name": "b"}, headers={"Idempotency-Key": "shared"})
    assert response.status_code == 201 and response.json()["name"] == "b"


def test_server_errors_are_not_replayed(client, services, monkeypatch):
    from voice_onboarding.services import voices

    original = voices.create_voice
    monkeypatch.setattr(voices, "create_voice", lambda *a, **k: 1 / 0)
    assert client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "r"}).status_code == 500
    monkeypatch.setattr(voices, "create_voice", original)
    assert client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "r"}).status_code == 201
