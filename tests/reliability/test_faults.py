"""Injected DynamoDB/S3 throttling in create-with-audio, sample upload and delete: the client gets
503 + Retry-After, and nothing half-written remains (after the sweeper's cleanup drain at most)."""

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import PARTNER
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services import cleanup

BASE = f"/api/voices/{PARTNER}"


def _throttle(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, operation)


DYNAMO_THROTTLE = "ProvisionedThroughputExceededException"
S3_THROTTLE = "SlowDown"


def inject(
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
    method: str,
    code: str,
    when: Callable[[dict[str, Any]], bool] = lambda kwargs: True,
) -> list[dict[str, Any]]:
    """Make `client.method` fail with `code` for calls matching `when`; returns the failed calls."""
    original = getattr(client, method)
    failed: list[dict[str, Any]] = []

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if when(kwargs):
            failed.append(kwargs)
            raise _throttle(code, method)
        return original(*args, **kwargs)

    monkeypatch.setattr(client, method, faulty)
    return failed


def _sk(kwargs: dict[str, Any]) -> str:
    return (kwargs.get("Item") or kwargs.get("Key") or {}).get("SK", {}).get("S", "")


def is_voice_write(kwargs: dict[str, Any]) -> bool:
    return _sk(kwargs).startswith("VOICE#")


def assert_retry_later(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert "Traceback" not in response.text


def markers(services: Any) -> list[str]:
    return [m.key for m in cleanup.pending(services)]


def drain_later(services: Any) -> list[str]:
    """Run the sweeper's cleanup drain as if the grace period had passed."""
    now = services.clock()
    services.clock = lambda: now + cleanup.DEFAULT_GRACE_SECONDS + 1
    return cleanup.drain(services)


def _create_with_audio(client: Any, wav_tone: Any, name: str = "v") -> Any:
    return client.post(BASE, data={"name": name}, files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})


def _voice_with_sample(client: Any, wav_tone: Any) -> None:
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    response = client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    assert response.status_code == 201


# --- create with audio ------------------------------------------------------------------------------


def test_create_dynamo_throttled_leaves_no_audio(
    client, services, wav_tone, all_bucket_keys, all_voice_items, monkeypatch
):
    failed = inject(monkeypatch, services.dynamodb, "put_item", DYNAMO_THROTTLE, is_voice_write)
    assert_retry_later(_create_with_audio(client, wav_tone))
    assert failed
    assert all_bucket_keys() == [] and all_voice_items() == [] and markers(services) == []


def test_create_s3_throttled_leaves_no_item(client, services, wav_tone, all_bucket_keys, all_voice_items, monkeypatch):
    inject(monkeypatch, services.s3, "upload_file", S3_THROTTLE)
    assert_retry_later(_create_with_audio(client, wav_tone))
    assert all_bucket_keys() == [] and all_voice_items() == [] and markers(services) == []


def test_create_marker_throttled_writes_nothing(
    client, services, wav_tone, all_bucket_keys, all_voice_items, monkeypatch
):
    inject(monkeypatch, services.dynamodb, "put_item", DYNAMO_THROTTLE)
    assert_retry_later(_create_with_audio(client, wav_tone))
    assert all_bucket_keys() == [] and all_voice_items() == []


def test_create_rollback_failing_too_is_finished_by_the_sweeper(
    client, services, wav_tone, all_bucket_keys, all_voice_items, monkeypatch
):
    inject(monkeypatch, services.dynamodb, "put_item", DYNAMO_THROTTLE, is_voice_write)
    inject(monkeypatch, services.s3, "delete_objects", S3_THROTTLE)
    assert_retry_later(_create_with_audio(client, wav_tone))
    assert all_voice_items() == []
    assert len(all_bucket_keys()) == 1 and len(markers(services)) == 1  # orphan, but covered by a marker
    monkeypatch.undo()
    assert cleanup.drain(services) == []  # within the grace period: the create might still be running
    assert len(drain_later(services)) == 1
    assert all_bucket_keys() == [] and markers(services) == []


def test_retry_after_throttle_succeeds(client, services, wav_tone, monkeypatch):
    inject(monkeypatch, services.dynamodb, "put_item", DYNAMO_THROTTLE, is_voice_write)
    assert_retry_later(_create_with_audio(client, wav_tone))
    monkeypatch.undo()
    assert _create_with_audio(client, wav_tone).status_code == 201


# --- sample upload ----------------------------------------------------------------------------------


def test_sample_dynamo_throttled_leaves_no_object(client, services, wav_tone, all_bucket_keys, monkeypatch):
    client.post(f"{BASE}/empty", data={"name": "v"})
    inject(monkeypatch, services.dynamodb, "update_item", DYNAMO_THROTTLE, is_voice_write)
    assert_retry_later(client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")}))
    monkeypatch.undo()
    assert all_bucket_keys() == []
    assert client.get(f"{BASE}/v").json()["samples"] == []


def test_sample_copy_throttled_takes_the_sample_back(client, services, wav_tone, all_bucket_keys, monkeypatch):
    client.post(f"{BASE}/empty", data={"name": "v"})
    inject(monkeypatch, services.s3, "copy_object", S3_THROTTLE)
    assert_retry_later(client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")}))
    monkeypatch.undo()
    assert all_bucket_keys() == []
    assert client.get(f"{BASE}/v").json()["samples"] == []


def test_sample_staging_delete_failing_is_left_to_the_lifecycle_rule(
    client, services, wav_tone, all_bucket_keys, monkeypatch
):
    client.post(f"{BASE}/empty", data={"name": "v"})
    inject(monkeypatch, services.dynamodb, "update_item", DYNAMO_THROTTLE, is_voice_write)
    inject(monkeypatch, services.s3, "delete_objects", S3_THROTTLE)
    assert_retry_later(client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")}))
    # Only the staged copy is left, under the prefix the bucket's lifecycle rule expires.
    assert [k.startswith(f"uploads/{PARTNER}/staging/") for k in all_bucket_keys()] == [True]


# --- delete voice / sample --------------------------------------------------------------------------


def test_delete_dynamo_throttled_keeps_voice_and_audio(client, services, wav_tone, all_bucket_keys, monkeypatch):
    _voice_with_sample(client, wav_tone)
    before = all_bucket_keys()
    inject(monkeypatch, services.dynamodb, "delete_item", DYNAMO_THROTTLE, is_voice_write)
    assert_retry_later(client.delete(f"{BASE}/v"))
    monkeypatch.undo()
    assert client.get(f"{BASE}/v").status_code == 200
    assert all_bucket_keys() == before
    drain_later(services)  # even a stale marker never removes a live voice's audio
    assert all_bucket_keys() == before and markers(services) == []


def test_delete_s3_throttled_is_finished_by_the_sweeper(client, services, wav_tone, all_bucket_keys, monkeypatch):
    _voice_with_sample(client, wav_tone)
    inject(monkeypatch, services.s3, "delete_objects", S3_THROTTLE)
    # The voice is gone for the client; a retry would only see 404, so this is a success.
    assert client.delete(f"{BASE}/v").status_code == 200
    monkeypatch.undo()
    assert client.get(f"{BASE}/v").status_code == 404
    assert all_bucket_keys() and markers(services)
    drain_later(services)
    assert all_bucket_keys() == [] and markers(services) == []


def test_delete_throttled_on_lookup_is_503(client, services, wav_tone, monkeypatch):
    _voice_with_sample(client, wav_tone)
    inject(monkeypatch, services.dynamodb, "get_item", DYNAMO_THROTTLE, is_voice_write)
    assert_retry_later(client.delete(f"{BASE}/v"))


def test_delete_sample_dynamo_throttled_keeps_sample(client, services, wav_tone, all_bucket_keys, monkeypatch):
    _voice_with_sample(client, wav_tone)
    before = all_bucket_keys()
    inject(monkeypatch, services.dynamodb, "update_item", DYNAMO_THROTTLE, is_voice_write)
    assert_retry_later(client.delete(f"{BASE}/v/samples/1"))
    monkeypatch.undo()
    drain_later(services)
    assert all_bucket_keys() == before
    assert client.get(f"{BASE}/v/samples/1").status_code == 200


def test_delete_sample_s3_throttled_is_finished_by_the_sweeper(
    client, services, wav_tone, all_bucket_keys, monkeypatch
):
    _voice_with_sample(client, wav_tone)
    inject(monkeypatch, services.s3, "delete_objects", S3_THROTTLE)
    assert client.delete(f"{BASE}/v/samples/1").status_code == 200
    monkeypatch.undo()
    assert all_bucket_keys()
    drain_later(services)
    assert all_bucket_keys() == [] and markers(services) == []
    assert client.get(f"{BASE}/v").json()["samples"] == []


def test_stale_marker_of_a_renamed_voice_keeps_its_audio(client, services, wav_tone, all_bucket_keys):
    """A create whose marker was never cleared must not lose its audio, even after a rename."""
    response = _create_with_audio(client, wav_tone)
    assert response.status_code == 201
    record = services.voices.require(PARTNER, "v")
    services.voices.finish_job(PARTNER, "v", "splitting", JobStatus.COMPLETED)
    cleanup.mark(services, f"{PARTNER}/{record.voice_id}/", PARTNER, record.voice_id)
    assert client.put(f"{BASE}/v/name", data={"name": "renamed"}).status_code == 200
    before = all_bucket_keys()
    assert drain_later(services) == []
    assert all_bucket_keys() == before and markers(services) == []


def test_voice_deleted_during_a_sample_upload_leaves_no_object(
    client, services, wav_tone, all_bucket_keys, monkeypatch
):
    client.post(f"{BASE}/empty", data={"name": "v"})
    original = services.s3.copy_object

    def delete_first(**kwargs):
        assert client.delete(f"{BASE}/v").status_code == 200  # a concurrent delete wins the race
        return original(**kwargs)

    monkeypatch.setattr(services.s3, "copy_object", delete_first)
    response = client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    assert response.status_code == 404
    assert all_bucket_keys() == [] and markers(services) == []
