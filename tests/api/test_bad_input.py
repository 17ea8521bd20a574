"""Bad input gets a clear 4xx with {"detail": ...} and leaves nothing half-written."""

from pathlib import Path

import pytest

from tests import audio_factory
from tests.conftest import PARTNER

BASE = f"/api/voices/{PARTNER}"


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    path.write_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
        + bytes.fromhex("1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082")
    )
    return path


@pytest.fixture
def corrupt_wav(tmp_path: Path, wav_tone: Path) -> Path:
    path = tmp_path / "corrupt.wav"
    data = wav_tone.read_bytes()
    path.write_bytes(data[:44] + bytes(reversed(data[44:2000])))  # header intact, garbage body
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio" * 3)
    return path


def _post_voice(client, name, path: Path | None, content=None):
    files = None
    if path is not None:
        files = {"file": (path.name, path.read_bytes() if content is None else content, "audio/wav")}
    return client.post(BASE, data={"name": name}, files=files)


def _assert_nothing_written(all_bucket_keys, all_voice_items):
    assert all_bucket_keys() == []
    assert all_voice_items() == []


def test_wrong_file_type_is_422(client, png_file, all_bucket_keys, all_voice_items):
    response = _post_voice(client, "v", png_file)
    assert response.status_code == 422
    assert "audio" in response.json()["detail"]
    _assert_nothing_written(all_bucket_keys, all_voice_items)


def test_corrupt_audio_is_422(client, corrupt_wav, all_bucket_keys, all_voice_items):
    response = _post_voice(client, "v", corrupt_wav)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], str)
    _assert_nothing_written(all_bucket_keys, all_voice_items)


def test_empty_file_is_422(client, tmp_path, all_bucket_keys, all_voice_items):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    response = client.post(BASE, data={"name": "v"}, files={"file": ("empty.wav", b"", "audio/wav")})
    assert response.status_code == 422
    assert response.json() == {"detail": "Uploaded file is empty"}
    _assert_nothing_written(all_bucket_keys, all_voice_items)


@pytest.mark.parametrize("name", ["", "   ", "x" * 256, "a/b", "tab\tname"])
def test_bad_names_are_422(client, name, all_voice_items):
    response = client.post(f"{BASE}/empty", data={"name": name})
    assert response.status_code == 422, response.text
    assert "detail" in response.json()
    assert all_voice_items() == []


def test_name_of_255_chars_is_accepted(client):
    assert client.post(f"{BASE}/empty", data={"name": "x" * 255}).status_code == 201


def test_duplicate_name_is_409_and_keeps_the_first(client, wav_tone, all_bucket_keys):
    assert _post_voice(client, "v", wav_tone).status_code == 201
    keys_after_first = all_bucket_keys()
    response = _post_voice(client, "v", wav_tone)
    assert response.status_code == 409
    assert response.json() == {"detail": "A voice with this name already exists"}
    assert all_bucket_keys() == keys_after_first
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 409


def test_missing_name_is_422(client):
    response = client.post(f"{BASE}/empty", data={})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_out_of_range_sample_index(client, wav_tone):
    client.post(f"{BASE}/empty", data={"name": "v"})
    client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    assert client.get(f"{BASE}/v/samples/2").json() == {"detail": "Sample not found"}
    assert client.delete(f"{BASE}/v/samples/99").status_code == 404
    assert client.get(f"{BASE}/v/samples/0").status_code == 422
    assert client.get(f"{BASE}/v/samples/abc").status_code == 422


def test_bad_sample_upload_leaves_voice_unchanged(client, png_file, all_bucket_keys):
    client.post(f"{BASE}/empty", data={"name": "v"})
    response = client.post(f"{BASE}/v/samples", files={"file": ("p.png", png_file.read_bytes(), "image/png")})
    assert response.status_code == 422
    assert client.get(f"{BASE}/v").json()["samples"] == []
    assert all_bucket_keys() == []


def test_upload_above_direct_limit_is_413_and_names_presigned_flow(client, services, tmp_path):
    services.settings.max_direct_upload_bytes = 10_000
    big = audio_factory.tone(tmp_path / "big.wav", 2.0)
    response = client.post(BASE, data={"name": "v"}, files={"file": ("big.wav", big.read_bytes(), "audio/wav")})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"POST /api/uploads/{PARTNER} for a presigned upload, then send its upload_id" in detail
    assert f"voice-onboarding voices create {PARTNER} NAME FILE" in detail
    client.post(f"{BASE}/empty", data={"name": "v"})
    sample = client.post(f"{BASE}/v/samples", files={"file": ("big.wav", big.read_bytes(), "audio/wav")})
    assert sample.status_code == 413
    assert f"voice-onboarding samples upload {PARTNER} v FILE" in sample.json()["detail"]


def test_sample_upload_while_locked_is_409(client, services, wav_tone, all_bucket_keys):
    client.post(f"{BASE}/empty", data={"name": "v"})
    services.voices.start_job(PARTNER, "v", "embedding")
    response = client.post(f"{BASE}/v/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")})
    assert response.status_code == 409
    assert response.json() == {"detail": "Voice is currently being processed"}
    assert all_bucket_keys() == []


def test_storage_throttling_is_503_with_retry_after(client, services, monkeypatch):
    from botocore.exceptions import ClientError

    def throttled(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "Query")

    monkeypatch.setattr(services.voices.db, "get_paginator", lambda name: type("P", (), {"paginate": throttled})())
    response = client.get(BASE)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "retry" in response.json()["detail"].lower()


def test_unexpected_error_is_500_without_trace(client, services, monkeypatch):
    monkeypatch.setattr(services.voices, "list", lambda partner: 1 / 0)
    response = client.get(BASE)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "Traceback" not in response.text and "ZeroDivision" not in response.text
