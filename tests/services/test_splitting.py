"""The split step against moto: samples land in S3 and on the voice in one update; re-split replaces;
failures leave the previous samples intact and no new objects behind; a superseded job writes nothing."""

import subprocess
import uuid

import pytest

from tests import audio_factory
from tests.conftest import PARTNER
from voice_onboarding.audio.ffmpeg import ffmpeg_exe
from voice_onboarding.audio.splitter import SplitError
from voice_onboarding.domain.jobs import JobKind, VoiceJob
from voice_onboarding.domain.voice import JobStatus, VoiceRecord, utc_now_iso
from voice_onboarding.services import splitting
from voice_onboarding.services.splitting import SplitSuperseded, run_split
from voice_onboarding.storage import keys


@pytest.fixture(scope="module")
def original(speech_recording, tmp_path_factory):
    """The known speech recording stored as the API stores an original (opus 96k mono), made once."""
    target = tmp_path_factory.mktemp("original") / "original.opus"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(speech_recording.path), "-ac", "1", "-c:a", "libopus", "-b:a", "96k",
         str(target)],
        check=True,
    )  # fmt: skip
    return target


def _create(services, original, name="v"):
    """A voice as the API leaves it after an upload: original in S3, splitting in_progress (the lock)."""
    now = utc_now_iso()
    voice = VoiceRecord(
        partner=PARTNER, name=name, voice_id=uuid.uuid4().hex, created_at=now, updated_at=now,
        original_filename="recording.opus", splitting_status=JobStatus.IN_PROGRESS,
    )  # fmt: skip
    services.blobs.put_file(keys.original_key(PARTNER, voice.voice_id), original)
    services.voices.create(voice)


def _job(services, name="v", **params) -> VoiceJob:
    voice = services.voices.require(PARTNER, name)
    return VoiceJob(kind=JobKind.SPLIT, partner=PARTNER, name=name, voice_id=voice.voice_id, params=params)


def _resplit(services, name="v", **params) -> int:
    """As the API's /split does: take the lock, then run the job."""
    services.voices.start_job(PARTNER, name, "splitting")
    return run_split(services, _job(services, name, **params))


def _first_key(services):
    return keys.sample_key(PARTNER, services.voices.require(PARTNER, "v").voice_id, 1)


def _sample_keys(all_bucket_keys):
    return [k for k in all_bucket_keys() if "/samples/" in k]


def _cleanup_markers(all_items):
    return [i for i in all_items() if i["PK"]["S"] == "CLEANUP"]


@pytest.fixture
def all_items(services):
    def _items():
        return services.dynamodb.scan(TableName=services.settings.table_name)["Items"]

    return _items


def test_split_stores_samples_and_completes(services, original, all_bucket_keys, monkeypatch):
    _create(services, original)
    steps: list[str | None] = []
    update = splitting._update

    def recording_update(services_, job, fields):
        steps.append((fields.get("progress") or {}).get("step"))
        return update(services_, job, fields)

    monkeypatch.setattr(splitting, "_update", recording_update)
    count = run_split(services, _job(services, max_samples=25, sample_duration=8))
    assert count >= 5
    assert steps[:3] == ["downloading", "decoding", "detecting speech"]
    assert any(s and s.startswith("cutting") for s in steps) and steps[-1] is None  # the final update clears it
    voice = services.voices.require(PARTNER, "v")
    assert voice.splitting_status == JobStatus.COMPLETED and voice.splitting_error is None
    assert voice.progress is None and voice.next_sample_index == count + 1
    assert [s.index for s in voice.samples] == list(range(1, count + 1))
    for sample in voice.samples:
        assert sample.origin == "split" and sample.quality["speech_ratio"] > 0.5
        assert 0.6 * 8 <= sample.duration <= 1.4 * 8 + 0.2
        assert sample.source_timestamp is not None
    expected = sorted(keys.sample_key(PARTNER, voice.voice_id, i) for i in range(1, count + 1))
    assert _sample_keys(all_bucket_keys) == expected
    assert not [k for k in all_bucket_keys() if "staging" in k]
    assert services.blobs.get_bytes(_first_key(services))[:4] == b"OggS"


def test_resplit_replaces_old_samples_and_forgets_the_preferred_one(services, original, all_bucket_keys, all_items):
    _create(services, original)
    first = run_split(services, _job(services, max_samples=25, sample_duration=5))
    services.voices.update(PARTNER, "v", {"preferred_sample_index": first, "preferred_sample_manual": True})
    old_first = services.blobs.get_bytes(_first_key(services))
    second = _resplit(services, max_samples=2, sample_duration=15)
    assert first > second == 2
    voice = services.voices.require(PARTNER, "v")
    assert [s.index for s in voice.samples] == [1, 2] and voice.next_sample_index == 3
    assert voice.preferred_sample_index is None and voice.preferred_sample_manual is False
    assert all(s.duration >= 0.6 * 15 for s in voice.samples)
    assert len(_sample_keys(all_bucket_keys)) == 2
    assert services.blobs.get_bytes(_first_key(services)) != old_first  # the key now holds new audio
    assert not _cleanup_markers(all_items)  # markers for the removed samples were cleared once they were gone


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: audio_factory.silence(p / "silent.wav", 20), "silent"),
        (lambda p: audio_factory.noise(p / "noise.wav", 20), "noise"),
        (lambda p: audio_factory.speech(p / "short.wav", "Hello there."), "too short"),
        (lambda p: (p / "junk.opus").write_bytes(b"OggS" + b"\x01" * 300) and p / "junk.opus", "could not be decoded"),
    ],
    ids=["silence", "noise", "too-short", "undecodable"],
)
def test_failed_resplit_keeps_previous_samples_and_leaves_nothing_new(
    services, original, all_bucket_keys, all_items, tmp_path, make, reason
):
    _create(services, original)
    run_split(services, _job(services, max_samples=3, sample_duration=8))
    before_keys = all_bucket_keys()
    before_audio = {k: services.blobs.get_bytes(k) for k in _sample_keys(all_bucket_keys)}
    samples_before = services.voices.require(PARTNER, "v").samples
    # Replace the original directly (the API would refuse these): the next split must fail cleanly.
    voice = services.voices.require(PARTNER, "v")
    services.blobs.put_file(keys.original_key(PARTNER, voice.voice_id), make(tmp_path))
    services.voices.start_job(PARTNER, "v", "splitting")
    with pytest.raises(SplitError, match=reason):
        run_split(services, _job(services, max_samples=3, sample_duration=15))
    assert all_bucket_keys() == before_keys
    assert {k: services.blobs.get_bytes(k) for k in before_audio} == before_audio
    after = services.voices.require(PARTNER, "v")
    assert after.samples == samples_before
    # Not written here: the pipeline's failure handler turns the exception into `failed` + reason.
    assert after.splitting_status == JobStatus.IN_PROGRESS
    assert not _cleanup_markers(all_items)


def test_s3_failure_after_staging_rolls_the_staged_objects_back(services, original, all_bucket_keys, monkeypatch):
    _create(services, original)
    before = all_bucket_keys()
    put_file = services.blobs.put_file
    calls = []

    def flaky_put(key, path, content_type="audio/ogg"):
        calls.append(key)
        if len(calls) == 3:
            raise RuntimeError("S3 is down")
        put_file(key, path, content_type)

    monkeypatch.setattr(services.blobs, "put_file", flaky_put)
    with pytest.raises(RuntimeError, match="S3 is down"):
        run_split(services, _job(services, max_samples=5, sample_duration=8))
    assert all_bucket_keys() == before
    assert services.voices.require(PARTNER, "v").samples == []


def test_a_job_the_sweeper_already_failed_writes_nothing(services, original, all_bucket_keys):
    _create(services, original)
    job = _job(services, max_samples=3, sample_duration=8)
    services.voices.finish_job(PARTNER, "v", "splitting", JobStatus.FAILED, error="timed out")
    before = all_bucket_keys()
    with pytest.raises(SplitSuperseded):
        run_split(services, job)
    assert all_bucket_keys() == before
    voice = services.voices.require(PARTNER, "v")
    assert voice.samples == [] and voice.splitting_status == JobStatus.FAILED


def test_voice_deleted_and_recreated_under_the_same_name_is_not_touched(client, services, original, all_bucket_keys):
    _create(services, original)
    job = _job(services, max_samples=3, sample_duration=8)
    services.voices.finish_job(PARTNER, "v", "splitting", JobStatus.COMPLETED)
    assert client.delete(f"/api/voices/{PARTNER}/v").status_code == 200
    _create(services, original)  # new voice_id, in_progress again
    before = all_bucket_keys()
    with pytest.raises(SplitSuperseded):
        run_split(services, job)
    assert all_bucket_keys() == before
    assert services.voices.require(PARTNER, "v").samples == []
