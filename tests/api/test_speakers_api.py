"""Every endpoint of speakers-api.txt against moto, plus train/adapters/catalog."""

import itertools
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests import audio_factory
from voice_onboarding.domain.jobs import JobKind
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services.gpu_jobs import CloneJob, TrainLoraJob

BASE = "/api/voice/models/speakers"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "reference": audio_factory.tone(folder / "ref.wav", 12.0),
        "reference_mp3": audio_factory.tone(folder / "ref.mp3", 12.0),
        "short": audio_factory.tone(folder / "short.wav", 9.0),
        "long": audio_factory.tone(folder / "long.wav", 61.0),
        "sample": audio_factory.tone(folder / "sample.wav", 13.0, 300),
        "tiny": audio_factory.tone(folder / "tiny.wav", 3.0),
        "ogg": audio_factory.tone(folder / "ref.ogg", 12.0),
    }


def _create(client, clips, name="aria-custom", clip="reference", **form):
    path = clips[clip]
    data = {"name": name, "language": "en-US", "description": "Custom US English sales voice", **form}
    return client.post(BASE, data=data, files={"reference_audio": (path.name, path.read_bytes(), "audio/wav")})


def _sample(client, clips, name="aria-custom", transcript="Hi, good morning! This is Aria.", clip="sample"):
    path = clips[clip]
    return client.post(
        f"{BASE}/{name}/dataset/sample",
        data={"transcript": transcript},
        files={"audio": (path.name, path.read_bytes(), "audio/wav")},
    )


def _finish_clone(services, dispatcher, output=None):
    job = next(j for j in dispatcher.jobs if j.kind == JobKind.CLONE)
    CloneJob.apply_result(services, job, output or {"tts_type": job.params["tts_type"], "embedding_dim": 256})
    return job


def test_create_speaker_as_seed_and_dispatches_clone(client, clips, dispatcher, services):
    response = _create(client, clips)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "aria-custom",
        "language": "en-US",
        "status": "created",
        "message": "Speaker created. Upload dataset samples and deploy to use in flows.",
    }
    job = dispatcher.jobs[-1]
    assert job.kind == JobKind.CLONE and job.name == "aria-custom"
    assert client.get(f"{BASE}/aria-custom").json()["status"] == "cloning"
    worker_input = CloneJob.build_input(services, job)
    assert worker_input["kind"] == "clone" and worker_input["reference_url"].startswith("http")


def test_list_and_get(client, clips, services, dispatcher):
    _create(client, clips)
    listed = client.get(BASE).json()
    assert len(listed) == 1
    item = listed[0]
    assert set(item) == {"name", "language", "description", "deployed", "voice_sample_uuid", "created_at"}
    assert item["deployed"] is False and item["voice_sample_uuid"] is None
    _finish_clone(services, dispatcher)
    details = client.get(f"{BASE}/aria-custom").json()
    assert details["status"] == "ready"
    assert 11.5 < details["reference_duration_seconds"] < 12.5


def test_reference_streams_the_clip(client, clips):
    _create(client, clips, clip="reference_mp3")
    response = client.get(f"{BASE}/aria-custom/reference")
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content == clips["reference_mp3"].read_bytes()


@pytest.mark.parametrize(
    ("form", "clip", "fragment"),
    [
        ({"name": "Aria"}, "reference", "lowercase"),
        ({"name": "aria--x"}, "reference", "lowercase"),
        ({"language": "english"}, "reference", "en-US"),
        ({}, "short", "10-60 seconds long (got 9.0 s)"),
        ({}, "long", "10-60 seconds"),
        ({}, "ogg", "WAV or MP3"),
    ],
)
def test_create_validation_is_422_and_writes_nothing(client, clips, form, clip, fragment, all_bucket_keys):
    response = _create(client, clips, clip=clip, **form)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert all_bucket_keys() == []
    assert client.get(BASE).json() == []


def test_duplicate_name_is_409(client, clips):
    assert _create(client, clips).status_code == 201
    response = _create(client, clips)
    assert response.status_code == 409
    assert response.json() == {"detail": "A speaker with this name already exists"}


def test_unknown_speaker_is_404_everywhere(client):
    for method, path in [
        ("get", ""),
        ("delete", ""),
        ("get", "/reference"),
        ("get", "/dataset"),
        ("delete", "/dataset"),
        ("post", "/deploy"),
        ("delete", "/deploy"),
        ("post", "/train"),
        ("get", "/adapters"),
    ]:
        response = getattr(client, method)(f"{BASE}/ghost{path}")
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Speaker not found"}


def test_dataset_upload_status_and_clear(client, clips, all_bucket_keys):
    _create(client, clips)
    assert client.get(f"{BASE}/aria-custom/dataset").json() == {
        "name": "aria-custom",
        "sample_count": 0,
        "total_duration_seconds": 0,
        "status": "empty",
    }
    response = _sample(client, clips)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sample_id"].startswith("smp_")
    assert 12.5 < body["duration_seconds"] < 13.5
    assert body["transcript"] == "Hi, good morning! This is Aria."
    for _ in range(4):
        _sample(client, clips)
    dataset = client.get(f"{BASE}/aria-custom/dataset").json()
    assert dataset["sample_count"] == 5 and dataset["status"] == "ready"
    assert 64 < dataset["total_duration_seconds"] < 68
    keys_before = len(all_bucket_keys())
    cleared = client.delete(f"{BASE}/aria-custom/dataset")
    assert cleared.json()["sample_count"] == 0 and cleared.json()["status"] == "empty"
    assert len(all_bucket_keys()) == keys_before - 5
    assert client.get(f"{BASE}/aria-custom").status_code == 200  # the speaker stays


def test_dataset_sample_validation(client, clips):
    _create(client, clips)
    assert _sample(client, clips, transcript="   ").json() == {"detail": "transcript must not be empty"}
    too_short = _sample(client, clips, clip="tiny")
    assert too_short.status_code == 422 and "5-30 seconds" in too_short.json()["detail"]
    assert _sample(client, clips, clip="long").status_code == 422
    assert client.get(f"{BASE}/aria-custom/dataset").json()["sample_count"] == 0


def test_deploy_requires_ready_then_publishes_stable_uuid(client, clips, services, dispatcher):
    _create(client, clips)
    not_ready = client.post(f"{BASE}/aria-custom/deploy")
    assert not_ready.status_code == 409
    _finish_clone(services, dispatcher)
    deployed = client.post(f"{BASE}/aria-custom/deploy").json()
    assert deployed["name"] == "aria-custom" and deployed["deployed"] is True
    uuid = deployed["voice_sample_uuid"]
    assert uuid.startswith("vs_")
    catalog = client.get("/api/voice/catalog").json()
    assert [c["voice_sample_uuid"] for c in catalog] == [uuid]
    undeployed = client.delete(f"{BASE}/aria-custom/deploy").json()
    assert undeployed["deployed"] is False
    assert client.get("/api/voice/catalog").json() == []
    assert client.get(f"{BASE}/aria-custom").status_code == 200
    assert client.post(f"{BASE}/aria-custom/deploy").json()["voice_sample_uuid"] == uuid


def test_delete_undeploys_and_leaves_nothing(client, clips, services, dispatcher, all_bucket_keys):
    _create(client, clips)
    _finish_clone(services, dispatcher)
    _sample(client, clips)
    client.post(f"{BASE}/aria-custom/deploy")
    assert client.delete(f"{BASE}/aria-custom").status_code == 200
    assert client.get("/api/voice/catalog").json() == []
    assert all_bucket_keys() == []
    items = services.dynamodb.scan(TableName=services.settings.table_name)["Items"]
    assert [i["entity"]["S"] for i in items if i.get("entity", {}).get("S") != "rate_limit"] == ["api_key"]


def test_delete_while_cloning_is_409(client, clips):
    _create(client, clips)
    response = client.delete(f"{BASE}/aria-custom")
    assert response.status_code == 409
    assert client.get(f"{BASE}/aria-custom").status_code == 200


def test_training_flow_records_versioned_adapter(client, clips, services, dispatcher):
    _create(client, clips)
    _finish_clone(services, dispatcher)
    assert client.post(f"{BASE}/aria-custom/train").status_code == 422  # dataset empty
    for _ in range(5):
        _sample(client, clips)
    response = client.post(f"{BASE}/aria-custom/train", json={"rank": 4, "steps": 50})
    assert response.status_code == 202, response.text
    assert response.json()["adapter_version"] == 1
    assert client.post(f"{BASE}/aria-custom/train").status_code == 409  # already training
    assert client.get(f"{BASE}/aria-custom/dataset").json()["status"] == "training"
    job = dispatcher.jobs[-1]
    assert job.kind == JobKind.TRAIN_LORA and job.params["hyperparameters"]["rank"] == 4
    worker_input = TrainLoraJob.build_input(services, job)
    assert len(worker_input["dataset"]) == 5 and worker_input["dataset"][0]["transcript"]
    TrainLoraJob.apply_result(
        services, job, {"final_loss": 0.12, "loss_history": [1.0, 0.5, 0.12], "evaluation": {"speaker_similarity": 0.8}}
    )
    adapters = client.get(f"{BASE}/aria-custom/adapters").json()
    assert adapters[0]["version"] == 1 and adapters[0]["status"] == "completed"
    assert adapters[0]["hyperparameters"]["rank"] == 4 and adapters[0]["evaluation"]["speaker_similarity"] == 0.8
    assert client.get(f"{BASE}/aria-custom/dataset").json()["status"] == "trained"
    assert client.post(f"{BASE}/aria-custom/train").json()["adapter_version"] == 2


def test_failures_are_recorded(client, clips, services, dispatcher):
    _create(client, clips)
    job = dispatcher.jobs[-1]
    CloneJob.apply_failure(services, job, "kyutai engine unavailable: no weights")
    details = client.get(f"{BASE}/aria-custom").json()
    assert details["status"] == "failed" and "no weights" in details["status_reason"]
    assert services.speakers.require(job.partner, job.name).clone_status == JobStatus.FAILED


def test_speakers_are_scoped_to_the_key_owner(client, clips, app, other_api_key):
    _create(client, clips)
    other = TestClient(app, headers={"X-Api-Key": other_api_key})
    assert other.get(BASE).json() == []
    assert other.get(f"{BASE}/aria-custom").status_code == 404
    assert other.delete(f"{BASE}/aria-custom").status_code == 404


def test_requires_api_key(anon_client):
    assert anon_client.get(BASE).json() == {"detail": "Invalid API key"}


# --- format checks by content, limits named in the detail ------------------------------------------
def _create_bytes(client, data: bytes, filename: str, name="aria-custom"):
    return client.post(
        BASE,
        data={"name": name, "language": "en-US"},
        files={"reference_audio": (filename, data, "audio/wav")},
    )


def test_format_is_judged_by_content_not_filename(client, clips):
    disguised_ogg = _create_bytes(client, clips["ogg"].read_bytes(), "reference.wav")
    assert disguised_ogg.status_code == 422
    assert disguised_ogg.json()["detail"] == "Reference audio must be WAV or MP3 (found ogg/vorbis)"
    # WAV bytes under an .mp3 name are accepted, and stored (and served) as WAV.
    assert _create_bytes(client, clips["reference"].read_bytes(), "reference.mp3").status_code == 201
    reference = client.get(f"{BASE}/aria-custom/reference")
    assert reference.headers["content-type"] == "audio/wav"
    assert reference.content == clips["reference"].read_bytes()


def test_durations_name_the_limit_and_the_actual_value(client, clips):
    assert _create(client, clips, clip="long").json()["detail"] == (
        "Reference audio must be 10-60 seconds long (got 61.0 s)"
    )
    assert _create(client, clips, clip="short").json()["detail"] == (
        "Reference audio must be 10-60 seconds long (got 9.0 s)"
    )
    _create(client, clips)
    detail = _sample(client, clips, clip="tiny").json()["detail"]
    assert detail == "Dataset sample must be 5-30 seconds long (got 3.0 s)"


def test_not_audio_and_bad_language_or_transcript_are_422(client, clips, services):
    services.clock = itertools.count(1_000_000, 61).__next__  # a new rate-limit window per call
    assert _create_bytes(client, b"hello, not audio", "reference.wav").status_code == 422
    for language in ("en-us", "EN-US", "en", "english-US"):
        response = _create(client, clips, language=language)
        assert response.status_code == 422 and "en-US" in response.json()["detail"], language
    _create(client, clips)
    too_long = _sample(client, clips, transcript="a" * 1001)
    assert too_long.status_code == 422 and "1000 characters" in too_long.json()["detail"]
    assert _sample(client, clips, transcript="a" * 1000).status_code == 201


def test_speech_reference_from_espeak(client, tmp_path, espeak_ng):
    line = audio_factory.speech(tmp_path / "line.wav", audio_factory.SENTENCES[0])
    clip = audio_factory.concat(tmp_path / "speech.mp3", [line, line, line, line])
    response = client.post(
        BASE,
        data={"name": "spoken", "language": "en-US"},
        files={"reference_audio": ("speech.mp3", clip.read_bytes(), "audio/mpeg")},
    )
    assert response.status_code == 201, response.text
    assert client.get(f"{BASE}/spoken/reference").headers["content-type"] == "audio/mpeg"


def test_large_reference_redirects_to_s3(client, clips, services):
    _create(client, clips)
    services.settings.max_inline_download_bytes = 1000
    response = client.get(f"{BASE}/aria-custom/reference", follow_redirects=False)
    assert response.status_code == 307
    assert "reference.wav" in response.headers["location"]


# --- jobs lock the speaker ------------------------------------------------------------------------
def test_delete_and_clear_are_409_while_training(client, clips, services, dispatcher):
    _create(client, clips)
    _finish_clone(services, dispatcher)
    for _ in range(5):
        _sample(client, clips)
    assert client.post(f"{BASE}/aria-custom/train").status_code == 202
    assert client.delete(f"{BASE}/aria-custom").status_code == 409
    cleared = client.delete(f"{BASE}/aria-custom/dataset")
    assert cleared.status_code == 409 and cleared.json() == {"detail": "Speaker is currently being processed"}
    assert client.get(f"{BASE}/aria-custom/dataset").json()["sample_count"] == 5
    # Uploads stay open during training (the run trains on its snapshot).
    assert _sample(client, clips).status_code == 201


def test_train_validates_hyperparameters_and_readiness(client, clips, services, dispatcher):
    _create(client, clips)
    for _ in range(5):
        _sample(client, clips)
    not_cloned = client.post(f"{BASE}/aria-custom/train")
    assert not_cloned.status_code == 409  # the clone job still runs
    _finish_clone(services, dispatcher)
    for body in ({"rank": 0}, {"learning_rate": 0}, {"steps": 10**6}, {"dropout": 1.0}, {"ranks": 8}):
        assert client.post(f"{BASE}/aria-custom/train", json=body).status_code == 422, body
    accepted = client.post(f"{BASE}/aria-custom/train", json={"rank": 16}).json()
    assert accepted["status"] == "in_progress"
    assert accepted["hyperparameters"] == {
        "rank": 16, "alpha": 16, "learning_rate": 1e-3, "steps": 200, "dropout": 0.0, "seed": 0
    }  # fmt: skip
    details = client.get(f"{BASE}/aria-custom").json()
    assert details["training_status"] == "in_progress"
    assert details["adapters"][0]["dataset_sample_count"] == 5


def test_every_route_requires_an_api_key(anon_client, app):
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/voice/"):
            continue
        for method in route.methods - {"HEAD"}:
            response = anon_client.request(method, path.replace("{name}", "aria-custom"))
            assert response.status_code == 401, (method, path)
            assert response.json() == {"detail": "Invalid API key"}


# --- presigned uploads (clips above the direct limit) ----------------------------------------------
def _staged(client, services, data: bytes, filename="big.wav") -> str:
    """What a client does through POST /api/voice/uploads: the ticket, then the file in storage under
    the ticket's key (the presigned POST itself goes over HTTP in tests/client/test_cli_local_stack.py)."""
    ticket = client.post("/api/voice/uploads", json={"filename": filename, "size_bytes": len(data)})
    assert ticket.status_code == 201, ticket.text
    services.blobs.put_bytes(ticket.json()["fields"]["key"], data, content_type="audio/wav")
    return ticket.json()["upload_id"]


def test_reference_and_dataset_sample_by_upload_id(client, clips, services, dispatcher, all_bucket_keys):
    upload_id = _staged(client, services, clips["reference"].read_bytes())
    form = {"name": "aria-custom", "language": "en-US", "upload_id": upload_id}
    created = client.post(BASE, data=form)
    assert created.status_code == 201, created.text
    assert client.get(f"{BASE}/aria-custom/reference").content == clips["reference"].read_bytes()
    assert [j.kind for j in dispatcher.jobs] == [JobKind.CLONE]
    sample_id = _staged(client, services, clips["sample"].read_bytes())
    sample = client.post(f"{BASE}/aria-custom/dataset/sample", data={"transcript": "Hi.", "upload_id": sample_id})
    assert sample.status_code == 201, sample.text
    assert sample.json()["duration_seconds"] == pytest.approx(13.0, abs=0.1)
    assert not [key for key in all_bucket_keys() if key.startswith("uploads/")]  # staged files are used up
    again = client.post(f"{BASE}/aria-custom/dataset/sample", data={"transcript": "Hi.", "upload_id": sample_id})
    assert again.status_code == 404
    assert again.json() == {"detail": "Upload not found: POST the file to the presigned URL first"}


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (None, 422, "reference_audio` or name a presigned `upload_id"),
        (b"RIFF not really a wav" * 1000, 422, "not a supported audio file"),
        ("short", 422, "10-60 seconds long (got 9.0 s)"),
        ("up_doesnotexist0123456789", 404, "Upload not found"),
        ("../../voices/x", 422, "upload_id is not valid"),
    ],
)
def test_bad_upload_ids_write_no_speaker(client, clips, services, all_bucket_keys, data, status, fragment):
    form = {"name": "aria-custom", "language": "en-US"}
    if isinstance(data, bytes) or data == "short":
        form["upload_id"] = _staged(client, services, data if isinstance(data, bytes) else clips["short"].read_bytes())
    elif data is not None:
        form["upload_id"] = data
    response = client.post(BASE, data=form)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    assert client.get(BASE).json() == [] and all_bucket_keys() == []  # nothing half-written, nothing staged left


def test_direct_upload_above_the_limit_is_413_naming_the_presigned_route(client, clips, services):
    services.settings.max_direct_upload_bytes = 100_000
    response = _create(client, clips)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "POST /api/voice/uploads for a presigned upload, then send its upload_id" in detail
    assert "voice-onboarding speakers create" in detail
    assert client.get(BASE).json() == []
    services.settings.max_direct_upload_bytes = 10_000_000
    assert _create(client, clips).status_code == 201
    services.settings.max_direct_upload_bytes = 100_000
    sample = _sample(client, clips)
    assert sample.status_code == 413 and "voice-onboarding dataset upload" in sample.json()["detail"]
