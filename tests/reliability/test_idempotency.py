"""Idempotency-Key: a retried POST replays the first answer and never makes a second voice or job."""

import pytest
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
    assert response.status_code == 409
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


def test_retried_multipart_upload_with_a_new_boundary_adds_one_sample(client, wav_tone):
    """httpx (like curl and browsers) picks a fresh multipart boundary per attempt."""
    client.post(f"{BASE}/empty", data={"name": "v"})
    audio = wav_tone.read_bytes()
    headers = {"Idempotency-Key": "sample-1"}
    first = client.post(f"{BASE}/v/samples", files={"file": ("a.wav", audio, "audio/wav")}, headers=headers)
    again = client.post(f"{BASE}/v/samples", files={"file": ("a.wav", audio, "audio/wav")}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(client.get(f"{BASE}/v").json()["samples"]) == 1
    other = client.post(f"{BASE}/v/samples", files={"file": ("a.wav", audio[:-2], "audio/wav")}, headers=headers)
    assert other.status_code == 409


def test_header_and_query_forms_of_one_key_share_records(client, anon_client, api_key):
    client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "k"})
    replay = anon_client.post(
        f"{BASE}/empty", params={"api_key": api_key}, data={"name": "v"}, headers={"Idempotency-Key": "k"}
    )
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"


def _store(services):
    from voice_onboarding.storage.idempotency_repo import IdempotencyStore

    return IdempotencyStore(services.dynamodb, services.settings.table_name)


def _fingerprint_of_create(name: str) -> str:
    from starlette.requests import Request

    from voice_onboarding.api.idempotency import request_fingerprint

    scope = {
        "type": "http",
        "method": "POST",
        "path": f"{BASE}/empty",
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    return request_fingerprint(Request(scope), f"name={name}".encode())


def test_concurrent_duplicate_is_409_until_the_first_finishes(client, services, api_key):
    from voice_onboarding.storage.api_keys_repo import hash_key

    # A first attempt is still running (claimed, not completed).
    assert _store(services).claim(hash_key(api_key), "busy", _fingerprint_of_create("v"), services.clock()) is None
    response = client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409 and response.headers["Retry-After"]
    assert client.get(BASE).json() == []


def test_claim_of_a_request_that_died_is_taken_over(client, services, api_key):
    from voice_onboarding.storage.api_keys_repo import hash_key
    from voice_onboarding.storage.idempotency_repo import IN_PROGRESS_EXPIRY_SECONDS

    now = services.clock()
    _store(services).claim(hash_key(api_key), "dead", _fingerprint_of_create("v"), now)
    services.clock = lambda: now + IN_PROGRESS_EXPIRY_SECONDS + 5
    response = client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "dead"})
    assert response.status_code == 201
    assert [v["name"] for v in client.get(BASE).json()] == ["v"]


def test_failing_record_update_still_answers_the_done_operation(client, services, monkeypatch):
    from botocore.exceptions import ClientError

    original = services.dynamodb.update_item

    def throttled(**kwargs):
        if kwargs["Key"]["PK"]["S"].startswith("IDEMPOTENCY#"):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "UpdateItem")
        return original(**kwargs)

    monkeypatch.setattr(services.dynamodb, "update_item", throttled)
    response = client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "x"})
    assert response.status_code == 201


def test_records_expire_after_a_day(client, services):
    client.post(f"{BASE}/empty", data={"name": "v"}, headers={"Idempotency-Key": "old"})
    items = services.dynamodb.scan(TableName=services.settings.table_name)["Items"]
    record = next(i for i in items if i["PK"]["S"].startswith("IDEMPOTENCY#"))
    assert int(record["ttl"]["N"]) - services.clock() == pytest.approx(24 * 3600, abs=5)
    assert "old" in record["PK"]["S"] and record["state"]["S"] == "completed"
