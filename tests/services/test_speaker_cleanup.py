"""Speakers keep the cleanup-marker invariant voices have (services/cleanup.py): every S3 object under a
speaker is owned by a live speaker item or covered by a marker the sweeper drains, whatever fails."""

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests import audio_factory
from tests.reliability.test_faults import S3_THROTTLE, drain_later, inject, markers
from voice_onboarding.domain.errors import SpeakerBusy
from voice_onboarding.domain.jobs import OwnerType
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services import cleanup, speaker_dataset, speakers
from voice_onboarding.storage import keys

OWNER = "my-partner"
DYNAMO_THROTTLE = "ProvisionedThroughputExceededException"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cleanup-clips")
    return {
        "reference": audio_factory.tone(folder / "ref.wav", 12.0),
        "sample": audio_factory.tone(folder / "sample.wav", 13.0, 330),
    }


def _create(services, clips, name="aria"):
    return speakers.create_speaker(services, OWNER, name, "en-US", None, clips["reference"])


def test_a_failed_create_leaves_no_reference_and_no_marker(services, clips, all_bucket_keys, monkeypatch):
    inject(
        monkeypatch, services.dynamodb, "put_item", DYNAMO_THROTTLE, lambda kw: kw["Item"]["SK"]["S"] == "SPEAKER#aria"
    )
    with pytest.raises(ClientError):
        _create(services, clips)
    monkeypatch.undo()
    assert services.speakers.get(OWNER, "aria") is None
    assert all_bucket_keys() == [] and markers(services) == []


def test_a_successful_create_and_sample_upload_leave_no_marker(services, clips, all_bucket_keys):
    record = _create(services, clips)
    sample = speaker_dataset.add_sample(services, OWNER, "aria", clips["sample"], "Hello there.")
    assert markers(services) == []
    assert set(all_bucket_keys()) == {record.reference_key, sample.object_key}
    drain_later(services)  # nothing to do: live objects stay
    assert set(all_bucket_keys()) == {record.reference_key, sample.object_key}


def test_a_sample_whose_item_write_fails_leaves_no_audio(services, clips, all_bucket_keys, monkeypatch):
    record = _create(services, clips)
    inject(monkeypatch, services.dynamodb, "transact_write_items", DYNAMO_THROTTLE)
    with pytest.raises(ClientError):
        speaker_dataset.add_sample(services, OWNER, "aria", clips["sample"], "Hello there.")
    monkeypatch.undo()
    assert all_bucket_keys() == [record.reference_key] and markers(services) == []


def test_delete_with_s3_failing_is_finished_by_the_sweeper(services, clips, all_bucket_keys, monkeypatch):
    record = _create(services, clips)
    services.speakers.update(OWNER, "aria", {"clone_status": JobStatus.COMPLETED.value})
    speaker_dataset.add_sample(services, OWNER, "aria", clips["sample"], "Hello there.")
    inject(monkeypatch, services.s3, "delete_objects", S3_THROTTLE)
    speakers.delete_speaker(services, OWNER, "aria")  # gone for the client: S3 is the sweeper's job now
    monkeypatch.undo()
    assert services.speakers.get(OWNER, "aria") is None
    assert all_bucket_keys() and markers(services) == [keys.speaker_prefix(OWNER, record.speaker_id)]
    drain_later(services)
    assert all_bucket_keys() == [] and markers(services) == []


def test_a_refused_delete_keeps_everything_and_leaves_no_marker(services, clips, all_bucket_keys):
    record = _create(services, clips)  # cloning: busy
    with pytest.raises(SpeakerBusy):
        speakers.delete_speaker(services, OWNER, "aria")
    assert markers(services) == [] and all_bucket_keys() == [record.reference_key]


def test_a_stale_marker_never_removes_a_live_speakers_objects(services, clips, all_bucket_keys):
    record = _create(services, clips)
    sample = speaker_dataset.add_sample(services, OWNER, "aria", clips["sample"], "Hello there.")
    # Markers an interrupted operation left behind, on objects the speaker still owns.
    prefix = keys.speaker_prefix(OWNER, record.speaker_id)
    cleanup.mark(services, prefix, OWNER, record.speaker_id, owner_type=OwnerType.SPEAKER)
    cleanup.mark(
        services, sample.object_key, OWNER, record.speaker_id, owner_type=OwnerType.SPEAKER, sample_id=sample.sample_id
    )
    drain_later(services)
    assert set(all_bucket_keys()) == {record.reference_key, sample.object_key} and markers(services) == []


def test_clearing_the_dataset_with_s3_failing_is_finished_by_the_sweeper(services, clips, all_bucket_keys, monkeypatch):
    record = _create(services, clips)
    speaker_dataset.add_sample(services, OWNER, "aria", clips["sample"], "Hello there.")
    inject(monkeypatch, services.s3, "delete_objects", S3_THROTTLE)
    assert speaker_dataset.clear(services, OWNER, "aria") == 1
    monkeypatch.undo()
    assert len(all_bucket_keys()) == 2 and len(markers(services)) == 1
    drain_later(services)  # the sample is no longer listed: its audio goes, the reference stays
    assert all_bucket_keys() == [record.reference_key] and markers(services) == []
