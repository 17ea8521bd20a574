"""Uploads beyond Lambda's payload limit go through presigned S3 POSTs; large bundles redirect."""

import requests

from tests import audio_factory
from tests.conftest import PARTNER

BASE = f"/api/voices/{PARTNER}"


def _presigned_upload(client, path):
    ticket = client.post(f"/api/uploads/{PARTNER}", json={"filename": path.name, "size_bytes": path.stat().st_size})
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    # The client's own upload straight to S3 (moto intercepts `requests` under mock_aws).
    with path.open("rb") as handle:
        response = requests.post(body["url"], data=body["fields"], files={"file": (path.name, handle)}, timeout=30)
    assert response.status_code in (200, 204), response.text
    return body


def test_create_voice_from_presigned_upload(client, services, tmp_path, all_bucket_keys):
    recording = audio_factory.tone(tmp_path / "long.wav", 20.0)
    ticket = _presigned_upload(client, recording)
    assert ["content-length-range", 1, services.settings.max_presigned_upload_bytes] in [
        list(c) if isinstance(c, list | tuple) else c for c in _policy_conditions(ticket)
    ]
    response = client.post(BASE, data={"name": "big", "upload_id": ticket["upload_id"]})
    assert response.status_code == 201, response.text
    assert abs(response.json()["original_duration"] - 20.0) < 0.3
    assert response.json()["original_uploaded_name"] == "long.wav"  # carried through S3 metadata
    # The staged object is gone once used.
    assert not [k for k in all_bucket_keys() if k.startswith("uploads/")]
    assert client.post(BASE, data={"name": "again", "upload_id": ticket["upload_id"]}).status_code == 404


def _policy_conditions(ticket):
    import base64
    import json

    return json.loads(base64.b64decode(ticket["fields"]["policy"]))["conditions"]


def test_add_sample_from_presigned_upload(client, tmp_path):
    client.post(f"{BASE}/empty", data={"name": "v"})
    ticket = _presigned_upload(client, audio_factory.tone(tmp_path / "s.wav", 4.0))
    response = client.post(f"{BASE}/v/samples", data={"upload_id": ticket["upload_id"]})
    assert response.status_code == 201, response.text
    assert response.json()["index"] == 1


def test_non_audio_upload_is_sniffed_and_discarded(client, tmp_path, all_bucket_keys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 100)
    ticket = _presigned_upload(client, junk)
    response = client.post(BASE, data={"name": "v", "upload_id": ticket["upload_id"]})
    assert response.status_code == 422
    assert all_bucket_keys() == []


def test_upload_request_above_cap_is_413(client, services):
    too_big = services.settings.max_presigned_upload_bytes + 1
    response = client.post(f"/api/uploads/{PARTNER}", json={"filename": "x.wav", "size_bytes": too_big})
    assert response.status_code == 413


def test_unknown_or_malformed_upload_id(client):
    assert client.post(BASE, data={"name": "v", "upload_id": "up_" + "a" * 24}).status_code == 404
    assert client.post(BASE, data={"name": "v", "upload_id": "../../etc"}).status_code == 422


def test_uploads_are_partner_scoped(app, other_api_key):
    from fastapi.testclient import TestClient

    intruder = TestClient(app, headers={"X-Api-Key": other_api_key})
    response = intruder.post(f"/api/uploads/{PARTNER}", json={"filename": "x.wav", "size_bytes": 10})
    assert response.json() == {"detail": "Access denied"}


def test_large_bundle_redirects_to_presigned_url(client, services, wav_tone):
    client.post(f"{BASE}/empty", data={"name": "v"})
    client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    services.settings.max_inline_download_bytes = 100
    response = client.get(f"{BASE}/v/samples-bundle", follow_redirects=False)
    assert response.status_code == 307
    location = response.headers["location"]
    downloaded = requests.get(location, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content[:2] == b"PK"
    # Built into S3 under the voice's bundles/ prefix, one object per voice however often it is fetched.
    client.get(f"{BASE}/v/samples-bundle", follow_redirects=False)
    assert len([k for k in services.blobs.list_keys(f"{PARTNER}/") if "/bundles/" in k]) == 1
    client.delete(f"{BASE}/v")
    assert list(services.blobs.list_keys(f"{PARTNER}/")) == []


def test_oversized_staged_object_is_refused_and_removed(client, services, all_bucket_keys):
    """S3 enforces the policy's content-length-range (moto does not); the API checks the size again."""
    services.settings.max_presigned_upload_bytes = 1000
    ticket = client.post(f"/api/uploads/{PARTNER}", json={"filename": "a.wav", "size_bytes": 900}).json()
    response = requests.post(ticket["url"], data=ticket["fields"], files={"file": ("a.wav", b"x" * 5000)}, timeout=30)
    assert response.status_code in (200, 204)
    assert client.post(BASE, data={"name": "v", "upload_id": ticket["upload_id"]}).status_code == 413
    assert all_bucket_keys() == []
    assert client.get(f"{BASE}/v").status_code == 404


def test_content_type_is_bound_in_the_policy(client):
    ticket = client.post(
        f"/api/uploads/{PARTNER}", json={"filename": "a.wav", "size_bytes": 10, "content_type": "audio/wav"}
    ).json()
    assert ticket["fields"]["Content-Type"] == "audio/wav"
    assert {"Content-Type": "audio/wav"} in _policy_conditions(ticket)
    assert ticket["expires_at"] > ticket["expires_in"]
    bad = client.post(f"/api/uploads/{PARTNER}", json={"filename": "a.wav", "size_bytes": 10, "content_type": "x"})
    assert bad.status_code == 422


def test_direct_upload_above_the_cap_names_the_presigned_endpoint(client, services, wav_tone):
    services.settings.max_direct_upload_bytes = 1000
    response = client.post(BASE, data={"name": "v"}, files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    assert response.status_code == 413
    assert f"POST /api/uploads/{PARTNER}" in response.json()["detail"]


def test_abandoned_uploads_expire_by_lifecycle_rule():
    from infra.provisioning import bucket_lifecycle_rules

    rules = [r for r in bucket_lifecycle_rules() if r.get("Status") == "Enabled"]
    assert any(r.get("Prefix") == "uploads/" and r.get("ExpirationInDays", 99) <= 2 for r in rules)


def test_small_bundle_is_inline(client, wav_tone):
    client.post(f"{BASE}/empty", data={"name": "v"})
    client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    response = client.get(f"{BASE}/v/samples-bundle", follow_redirects=False)
    assert response.status_code == 200 and response.content[:2] == b"PK"
