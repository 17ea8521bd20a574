"""Every endpoint of voices-api.txt through the FastAPI app, against moto DynamoDB/S3."""

import io
import json
import zipfile
from pathlib import Path

from tests import audio_factory
from tests.conftest import OTHER_PARTNER, PARTNER

BASE = f"/api/voices/{PARTNER}"


def _create_empty(client, name="speaker-2", **form):
    response = client.post(f"{BASE}/empty", data={"name": name, **form})
    assert response.status_code == 201, response.text
    return response.json()


def _upload_sample(client, voice, path: Path):
    with path.open("rb") as handle:
        return client.post(f"{BASE}/{voice}/samples", files={"file": (path.name, handle, "audio/wav")})


def test_list_is_empty_then_shows_created_voices(client):
    assert client.get(BASE).json() == []
    _create_empty(client, "speaker-2", creator_name="John", creator_email="john@example.com")
    assert client.get(BASE).json() == [
        {
            "name": "speaker-2",
            "has_original": False,
            "sample_count": 0,
            "splitting_status": "idle",
            "embedding_status": "idle",
            "creator_name": "John",
            "creator_email": "john@example.com",
        }
    ]


def test_create_with_audio_stores_opus_original_and_starts_pipeline(client, dispatcher, services, wav_tone):
    with wav_tone.open("rb") as handle:
        response = client.post(
            BASE,
            data={"name": "speaker-1", "creator_name": "John", "creator_email": "john@example.com"},
            files={"file": ("recording.wav", handle, "audio/wav")},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["original_filename"] == "recording.opus"
    assert body["original_uploaded_name"] == "recording.wav"
    assert abs(body["original_duration"] - 3.0) < 0.2
    assert body["status"] == {"splitting": "in_progress", "embedding": "idle"}
    assert body["embedding_type"] == "kyutai"
    assert [job.kind.value for job in dispatcher.jobs] == ["split_and_embed"]
    job = dispatcher.jobs[0]
    assert (job.partner, job.name, job.params["max_samples"], job.params["sample_duration"]) == (
        PARTNER,
        "speaker-1",
        25,
        15,
    )
    original = services.blobs.get_bytes(f"{PARTNER}/{job.voice_id}/original.opus")
    assert original is not None and original[:4] == b"OggS"
    assert client.get(BASE).json()[0]["has_original"] is True


def test_details_have_every_seed_field(client):
    _create_empty(client, "speaker-2", creator_name="John", creator_email="john@example.com")
    body = client.get(f"{BASE}/speaker-2").json()
    for field in (
        "name",
        "original_filename",
        "original_uploaded_name",
        "original_duration",
        "status",
        "samples",
        "embedding_info",
        "embedding_type",
        "embedding_zip_url",
        "preferred_sample_index",
        "creator_name",
        "creator_email",
    ):
        assert field in body, field
    assert body["status"] == {"splitting": "idle", "embedding": "idle"}
    assert body["samples"] == []


def test_upload_download_delete_sample_as_opus(client, tmp_path, wav_tone):
    _create_empty(client)
    first = _upload_sample(client, "speaker-2", wav_tone)
    assert first.status_code == 201, first.text
    assert first.json()["index"] == 1
    second = _upload_sample(client, "speaker-2", audio_factory.tone(tmp_path / "b.mp3", 2.0, 330))
    assert second.json()["index"] == 2
    samples = client.get(f"{BASE}/speaker-2").json()["samples"]
    assert [s["index"] for s in samples] == [1, 2]
    assert abs(samples[1]["duration"] - 2.0) < 0.2

    audio = client.get(f"{BASE}/speaker-2/samples/1")
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/ogg"
    assert audio.content[:4] == b"OggS" and b"OpusHead" in audio.content[:200]

    assert client.delete(f"{BASE}/speaker-2/samples/1").status_code == 200
    assert client.get(f"{BASE}/speaker-2/samples/1").json() == {"detail": "Sample not found"}
    assert [s["index"] for s in client.get(f"{BASE}/speaker-2").json()["samples"]] == [2]
    # Indices are never reused: a new sample does not take the deleted one's place.
    assert _upload_sample(client, "speaker-2", wav_tone).json()["index"] == 3


def test_samples_bundle_zip(client, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    _upload_sample(client, "speaker-2", wav_tone)
    response = client.get(f"{BASE}/speaker-2/samples-bundle")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["1.opus", "2.opus", "voice_info.json"]
    info = json.loads(archive.read("voice_info.json"))
    assert info["name"] == "speaker-2" and len(info["samples"]) == 2
    assert archive.read("1.opus")[:4] == b"OggS"


def test_rename_moves_voice_and_keeps_samples(client, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    response = client.put(f"{BASE}/speaker-2/name", data={"name": "renamed"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "renamed"
    assert client.get(f"{BASE}/speaker-2").status_code == 404
    assert client.get(f"{BASE}/renamed/samples/1").content[:4] == b"OggS"


def test_rename_to_existing_name_conflicts(client):
    _create_empty(client, "a")
    _create_empty(client, "b")
    response = client.put(f"{BASE}/a/name", data={"name": "b"})
    assert response.status_code == 409
    assert response.json() == {"detail": "A voice with this name already exists"}
    assert {v["name"] for v in client.get(BASE).json()} == {"a", "b"}


def test_delete_voice_removes_item_and_audio(client, wav_tone, all_bucket_keys, all_voice_items):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    assert all_bucket_keys()
    response = client.delete(f"{BASE}/speaker-2")
    assert response.status_code == 200
    assert client.get(f"{BASE}/speaker-2").json() == {"detail": "Voice not found"}
    assert all_bucket_keys() == []
    assert all_voice_items() == []


def test_preferred_sample_set_and_clear(client, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    response = client.put(f"{BASE}/speaker-2/preferred-sample", data={"sample_index": "1"})
    assert response.status_code == 200
    assert response.json()["preferred_sample_index"] == 1
    cleared = client.put(f"{BASE}/speaker-2/preferred-sample", data={"sample_index": ""})
    assert cleared.json()["preferred_sample_index"] is None
    missing = client.put(f"{BASE}/speaker-2/preferred-sample", data={"sample_index": "9"})
    assert missing.status_code == 404 and missing.json() == {"detail": "Sample not found"}
    bad = client.put(f"{BASE}/speaker-2/preferred-sample", data={"sample_index": "one"})
    assert bad.status_code == 422


def test_deleting_preferred_sample_clears_preference(client, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    client.put(f"{BASE}/speaker-2/preferred-sample", data={"sample_index": "1"})
    client.delete(f"{BASE}/speaker-2/samples/1")
    assert client.get(f"{BASE}/speaker-2").json()["preferred_sample_index"] is None


def test_split_validates_parameters_and_requires_original(client, dispatcher, wav_tone):
    _create_empty(client)
    no_original = client.post(f"{BASE}/speaker-2/split", data={"max_samples": 30, "sample_duration": 10})
    assert no_original.status_code == 422
    assert no_original.json() == {"detail": "Voice has no original recording to split"}
    for bad in ({"max_samples": 0}, {"max_samples": 101}, {"sample_duration": 4}, {"sample_duration": 61}):
        assert client.post(f"{BASE}/speaker-2/split", data=bad).status_code == 422, bad
    assert dispatcher.jobs == []


def test_split_of_voice_with_original_queues_job(client, dispatcher, services, wav_tone):
    with wav_tone.open("rb") as handle:
        client.post(BASE, data={"name": "v"}, files={"file": ("r.wav", handle, "audio/wav")})
    # The create job holds the lock: a split now is refused.
    assert client.post(f"{BASE}/v/split").json() == {"detail": "Voice is currently being processed"}
    from voice_onboarding.domain.voice import JobStatus

    services.voices.finish_job(PARTNER, "v", "splitting", JobStatus.COMPLETED)
    response = client.post(f"{BASE}/v/split", data={"max_samples": 30, "sample_duration": 10})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == {"splitting": "in_progress", "embedding": "idle"}
    assert dispatcher.jobs[-1].kind.value == "split"
    assert dispatcher.jobs[-1].params == {"max_samples": 30, "sample_duration": 10}


def test_embed_requires_samples_and_uses_voice_embedding_type(client, dispatcher, wav_tone):
    _create_empty(client)
    assert client.post(f"{BASE}/speaker-2/embed").json() == {"detail": "Voice has no samples to embed"}
    _upload_sample(client, "speaker-2", wav_tone)
    response = client.post(f"{BASE}/speaker-2/embed")
    assert response.status_code == 202
    assert dispatcher.jobs[-1].params == {"tts_type": "kyutai"}
    assert client.get(f"{BASE}/speaker-2").json()["status"]["embedding"] == "in_progress"


def test_embed_tts_type_override(client, dispatcher, services, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    client.post(f"{BASE}/speaker-2/embed", data={"tts_type": "resemblyzer"})
    assert dispatcher.jobs[-1].params == {"tts_type": "resemblyzer"}
    assert client.post(f"{BASE}/other/embed", data={"tts_type": "../x"}).status_code == 404


def test_failed_dispatch_marks_status_failed_not_stuck(client, dispatcher, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    dispatcher.fail_with = RuntimeError("state machine unavailable")
    response = client.post(f"{BASE}/speaker-2/embed")
    assert response.status_code == 202
    details = client.get(f"{BASE}/speaker-2").json()
    assert details["status"]["embedding"] == "failed"
    assert "state machine unavailable" in details["status_reasons"]["embedding"]


def test_test_samples_list_download_delete(client, services, wav_tone):
    _create_empty(client)
    voice_id = services.voices.require(PARTNER, "speaker-2").voice_id
    prefix = f"{PARTNER}/{voice_id}/test/kyutai/"
    services.blobs.put_bytes(prefix + "test_1_1.opus", b"OggS-one")
    services.blobs.put_bytes(prefix + "test_1_2.opus", b"OggS-two")
    listed = client.get(f"{BASE}/speaker-2/test-samples").json()
    assert [(f["filename"], f["sample_index"], f["sentence_index"]) for f in listed] == [
        ("test_1_1.opus", 1, 1),
        ("test_1_2.opus", 1, 2),
    ]
    assert client.get(f"{BASE}/speaker-2/test-samples", params={"tts_type": "other"}).json() == []
    assert client.get(f"{BASE}/speaker-2/test-samples/test_1_2.opus").content == b"OggS-two"
    assert client.get(f"{BASE}/speaker-2/test-samples/nope.opus").status_code == 404
    assert client.delete(f"{BASE}/speaker-2/test-files/kyutai").status_code == 200
    assert client.get(f"{BASE}/speaker-2/test-samples").json() == []


def test_test_sample_filename_cannot_escape_folder(client, services):
    _create_empty(client)
    voice_id = services.voices.require(PARTNER, "speaker-2").voice_id
    services.blobs.put_bytes(f"{PARTNER}/{voice_id}/original.opus", b"secret")
    for sneaky in ("..%2F..%2Foriginal.opus", "..%2Foriginal.opus", ".hidden"):
        response = client.get(f"{BASE}/speaker-2/test-samples/{sneaky}")
        assert response.status_code == 404, sneaky
        assert response.content != b"secret"
    assert client.get(f"{BASE}/speaker-2/test-samples/x.opus", params={"tts_type": "../.."}).status_code == 422


def test_unknown_voice_is_404_on_every_voice_route(client):
    routes = [
        ("get", "/ghost"),
        ("delete", "/ghost"),
        ("put", "/ghost/name"),
        ("post", "/ghost/samples"),
        ("get", "/ghost/samples/1"),
        ("delete", "/ghost/samples/1"),
        ("get", "/ghost/samples-bundle"),
        ("post", "/ghost/split"),
        ("post", "/ghost/embed"),
        ("get", "/ghost/test-samples"),
        ("get", "/ghost/test-samples/test_1_1.opus"),
        ("delete", "/ghost/test-files/kyutai"),
        ("put", "/ghost/preferred-sample"),
    ]
    for method, path in routes:
        kwargs = {}
        if path.endswith("/name"):
            kwargs["data"] = {"name": "x"}
        if path.endswith("/samples"):
            kwargs["files"] = {"file": ("a.wav", b"RIFF", "audio/wav")}
        response = getattr(client, method)(f"{BASE}{path}", **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {"detail": "Voice not found"}, (method, path)


def test_openapi_documents_every_seed_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/voices/{partner}",
        "/api/voices/{partner}/empty",
        "/api/voices/{partner}/{voice}",
        "/api/voices/{partner}/{voice}/name",
        "/api/voices/{partner}/{voice}/samples",
        "/api/voices/{partner}/{voice}/samples/{index}",
        "/api/voices/{partner}/{voice}/samples-bundle",
        "/api/voices/{partner}/{voice}/split",
        "/api/voices/{partner}/{voice}/embed",
        "/api/voices/{partner}/{voice}/test-samples",
        "/api/voices/{partner}/{voice}/test-samples/{filename}",
        "/api/voices/{partner}/{voice}/test-files/{tts_type}",
        "/api/voices/{partner}/{voice}/preferred-sample",
    ):
        assert path in paths, path
    assert client.get("/docs").status_code == 200


def test_other_partner_exists_only_for_its_key(client, app, other_api_key):
    from fastapi.testclient import TestClient

    _create_empty(client, "mine")
    other = TestClient(app, headers={"X-Api-Key": other_api_key})
    assert other.get(f"/api/voices/{OTHER_PARTNER}").json() == []
    assert other.get(BASE).json() == {"detail": "Access denied"}
