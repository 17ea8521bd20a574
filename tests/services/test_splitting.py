"""The split step against moto: samples land in S3 and on the voice; re-split replaces; failures
leave the previous samples intact and no new objects behind."""

import pytest

from tests import audio_factory
from tests.conftest import PARTNER
from voice_onboarding.audio.splitter import SplitError
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.pipeline.jobs import JobKind, PipelineJob
from voice_onboarding.services.splitting import run_split


def _create(client, path, name="v"):
    response = client.post(
        f"/api/voices/{PARTNER}", data={"name": name}, files={"file": (path.name, path.read_bytes(), "audio/wav")}
    )
    assert response.status_code == 201, response.text


def _job(services, name="v", **params) -> PipelineJob:
    voice = services.voices.require(PARTNER, name)
    return PipelineJob(kind=JobKind.SPLIT, partner=PARTNER, name=name, voice_id=voice.voice_id, params=params)


def _sample_keys(all_bucket_keys):
    return [k for k in all_bucket_keys() if "/samples/" in k]


def test_split_stores_samples_and_completes(client, services, speech_recording, all_bucket_keys):
    _create(client, speech_recording.path)
    count = run_split(services, _job(services, max_samples=25, sample_duration=8))
    assert count >= 4
    details = client.get(f"/api/voices/{PARTNER}/v").json()
    assert details["status"]["splitting"] == "completed"
    assert details["progress"] is None
    assert [s["index"] for s in details["samples"]] == list(range(1, count + 1))
    assert all(s["origin"] == "split" and s["quality"]["speech_ratio"] > 0.5 for s in details["samples"])
    assert len(_sample_keys(all_bucket_keys)) == count
    assert not [k for k in all_bucket_keys() if "/staging/" in k]
    assert client.get(f"/api/voices/{PARTNER}/v/samples/1").content[:4] == b"OggS"


def test_resplit_replaces_old_samples(client, services, speech_recording, all_bucket_keys):
    _create(client, speech_recording.path)
    first = run_split(services, _job(services, max_samples=25, sample_duration=5))
    second = run_split(services, _job(services, max_samples=2, sample_duration=8))
    assert first > second == 2
    details = client.get(f"/api/voices/{PARTNER}/v").json()
    assert [s["index"] for s in details["samples"]] == [1, 2]
    assert len(_sample_keys(all_bucket_keys)) == 2


def test_failed_split_keeps_previous_samples_and_leaves_nothing_new(
    client, services, speech_recording, all_bucket_keys, tmp_path
):
    _create(client, speech_recording.path)
    run_split(services, _job(services, max_samples=3, sample_duration=8))
    before = all_bucket_keys()
    samples_before = client.get(f"/api/voices/{PARTNER}/v").json()["samples"]
    # Replace the original with silence: the next split must fail cleanly.
    voice = services.voices.require(PARTNER, "v")
    silent = audio_factory.silence(tmp_path / "silent.opus", 20)
    services.blobs.put_file(f"{PARTNER}/{voice.voice_id}/original.opus", silent)
    with pytest.raises(SplitError, match="silent"):
        run_split(services, _job(services, max_samples=3, sample_duration=8))
    assert all_bucket_keys() == before
    assert client.get(f"/api/voices/{PARTNER}/v").json()["samples"] == samples_before


def test_voice_deleted_during_split_gets_no_samples(client, services, speech_recording, all_bucket_keys):
    _create(client, speech_recording.path)
    job = _job(services, max_samples=3, sample_duration=8)
    services.voices.finish_job(PARTNER, "v", "splitting", JobStatus.COMPLETED)
    client.delete(f"/api/voices/{PARTNER}/v")
    with pytest.raises(Exception):  # noqa: B017 - VoiceNotFound from the repository
        run_split(services, job)
    assert all_bucket_keys() == []
