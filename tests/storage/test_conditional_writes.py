"""Repositories against moto: the conditional writes and transactions the services rely on."""

from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from voice_onboarding.domain.errors import SpeakerBusy
from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.speaker import CatalogEntry, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, VoiceRecord, utc_now_iso
from voice_onboarding.storage import keys
from voice_onboarding.storage.catalog_repo import CatalogRepository
from voice_onboarding.storage.cleanup_repo import CleanupMarker
from voice_onboarding.storage.dynamo import conditional_update, serialize

PARTNER = "my-partner"


def _voice(services, name="v", voice_id="vid-1", **fields):
    now = utc_now_iso()
    record = VoiceRecord(partner=PARTNER, name=name, voice_id=voice_id, created_at=now, updated_at=now, **fields)
    services.voices.create(record)
    return record


def _speaker(services, name="aria", speaker_id="sid-1", **fields):
    now = utc_now_iso()
    record = SpeakerRecord(
        owner=PARTNER, name=name, speaker_id=speaker_id, language="en-US", created_at=now, updated_at=now,
        reference_key="ref.wav", reference_content_type="audio/wav", reference_duration=12.0, tts_type="kyutai",
        **fields,
    )  # fmt: skip
    services.speakers.create(record)
    return record


def test_voice_stage_update_lands_only_on_the_running_stage_of_the_same_voice(services):
    _voice(services, embedding_status=JobStatus.IN_PROGRESS)
    done = {Stage.EMBEDDING.status_field: JobStatus.COMPLETED.value}
    assert not services.voices.update_stage(PARTNER, "v", "vid-other", Stage.EMBEDDING, done)  # a namesake
    assert not services.voices.update_stage(PARTNER, "v", "vid-1", Stage.SPLITTING, done)  # not running
    assert not services.voices.update_stage(PARTNER, "ghost", "vid-1", Stage.EMBEDDING, done)  # no such voice
    assert services.voices.require(PARTNER, "v").embedding_status == JobStatus.IN_PROGRESS
    assert services.voices.update_stage(PARTNER, "v", "vid-1", Stage.EMBEDDING, done)
    assert services.voices.require(PARTNER, "v").embedding_status == JobStatus.COMPLETED
    assert not services.voices.update_stage(PARTNER, "v", "vid-1", Stage.EMBEDDING, done)  # finished: no second write


def test_speaker_stage_update_lands_only_on_the_running_stage_of_the_same_speaker(services):
    _speaker(services, clone_status=JobStatus.IN_PROGRESS)
    failed = {Stage.CLONE.status_field: JobStatus.FAILED.value, Stage.CLONE.error_field: "late"}
    assert not services.speakers.update_stage(PARTNER, "aria", "sid-other", Stage.CLONE, failed)
    assert not services.speakers.update_stage(PARTNER, "aria", "sid-1", Stage.TRAINING, failed)
    assert services.speakers.update_stage(PARTNER, "aria", "sid-1", Stage.CLONE, failed)
    stored = services.speakers.require(PARTNER, "aria")
    assert (stored.clone_status, stored.clone_error) == (JobStatus.FAILED, "late")


def test_a_voice_job_start_has_one_winner(services):
    _voice(services)
    services.voices.start_job(PARTNER, "v", Stage.SPLITTING)
    with pytest.raises(Exception, match="currently being processed"):
        services.voices.start_job(PARTNER, "v", Stage.EMBEDDING)
    stored = services.voices.require(PARTNER, "v")
    assert (stored.splitting_status, stored.embedding_status) == (JobStatus.IN_PROGRESS, JobStatus.IDLE)


def test_sweep_fails_a_stage_only_if_nothing_wrote_since_it_was_read(services):
    _voice(services, splitting_status=JobStatus.IN_PROGRESS)
    [seen] = [i for i in services.stages.owners() if i["entity"] == OwnerType.VOICE]
    services.voices.update(PARTNER, "v", {"progress": {"step": "still going"}})  # bumps the version
    assert not services.stages.fail(seen, Stage.SPLITTING, "stuck")
    assert services.voices.require(PARTNER, "v").splitting_status == JobStatus.IN_PROGRESS
    [fresh] = [i for i in services.stages.owners() if i["entity"] == OwnerType.VOICE]
    assert services.stages.fail(fresh, Stage.SPLITTING, "stuck")
    stored = services.voices.require(PARTNER, "v")
    assert (stored.splitting_status, stored.splitting_error, stored.progress) == (JobStatus.FAILED, "stuck", None)
    assert not services.stages.fail(fresh, Stage.SPLITTING, "stuck again")  # no longer running


def test_speaker_delete_and_its_catalog_entry_go_together_or_not_at_all(services):
    _speaker(services, clone_status=JobStatus.COMPLETED)
    entry = CatalogEntry(voice_sample_uuid="vs_1", name="aria", language="en-US", owner=PARTNER, deployed_at="x")
    assert services.catalog.publish(entry, "sid-1")
    services.speakers.update(PARTNER, "aria", {"training_status": JobStatus.IN_PROGRESS.value})
    with pytest.raises(SpeakerBusy):  # busy: the transaction deletes neither
        services.speakers.delete(PARTNER, "aria", "sid-1", extra_deletes=[CatalogRepository.key("vs_1")])
    assert services.speakers.get(PARTNER, "aria") is not None and len(services.catalog.list()) == 1
    services.speakers.update(PARTNER, "aria", {"training_status": JobStatus.IDLE.value})
    services.speakers.delete(PARTNER, "aria", "sid-1", extra_deletes=[CatalogRepository.key("vs_1")])
    assert services.speakers.get(PARTNER, "aria") is None and services.catalog.list() == []


def test_idempotency_claim_has_one_owner_and_a_dead_claim_is_taken_over(services):
    store = services.idempotency
    assert store.claim("scope", "key-1", "hash-a", now=1000) is None
    assert store.claim("scope", "key-1", "hash-a", now=1001)["state"] == "in_progress"
    store.complete("scope", "key-1", 201, "application/json", b'{"ok": true}')
    replay = store.claim("scope", "key-1", "hash-a", now=1002)
    assert (replay["state"], replay["status_code"]) == ("completed", Decimal(201))
    assert store.claim("scope", "key-2", "hash-b", now=1000) is None
    assert store.claim("scope", "key-2", "hash-b", now=1000 + 3600) is None  # the first request died


def test_cleanup_markers_round_trip_and_markers_stored_before_speakers_read_as_voice_markers(services):
    services.cleanup.put(CleanupMarker(key="p/v/", partner=PARTNER, voice_id="vid", created_at=1.0))
    services.cleanup.put(
        CleanupMarker(key="p/s/", partner=PARTNER, voice_id="sid", owner_type=OwnerType.SPEAKER, created_at=2.0)
    )
    services.dynamodb.put_item(  # written by a version without owner_type
        TableName=services.settings.table_name,
        Item={
            "PK": {"S": keys.CLEANUP_PK}, "SK": {"S": "p/old/"}, "key": {"S": "p/old/"},
            "partner": {"S": PARTNER}, "voice_id": {"S": "old"}, "created_at": {"N": "3"},
        },
    )  # fmt: skip
    by_key = {m.key: m for m in services.cleanup.list()}
    assert by_key["p/v/"].owner_type == OwnerType.VOICE and by_key["p/s/"].owner_type == OwnerType.SPEAKER
    assert by_key["p/old/"].owner_type == OwnerType.VOICE
    services.cleanup.delete(by_key["p/v/"])
    assert sorted(by_key) == ["p/old/", "p/s/", "p/v/"] and {m.key for m in services.cleanup.list()} == {
        "p/old/",
        "p/s/",
    }


def test_conditional_update_answers_none_for_a_failed_condition_and_raises_anything_else(services):
    _voice(services)
    key = {"PK": serialize(keys.tenant_pk(PARTNER)), "SK": serialize(keys.voice_sk("v"))}
    table, db = services.settings.table_name, services.dynamodb
    write = {"TableName": table, "Key": key, "UpdateExpression": "SET creator_name = :n", "ReturnValues": "ALL_NEW"}
    locked = {":n": serialize("x"), ":ip": serialize(JobStatus.IN_PROGRESS.value)}
    refused = conditional_update(
        db.update_item, **write, ConditionExpression="splitting_status = :ip", ExpressionAttributeValues=locked
    )
    assert refused is None and services.voices.require(PARTNER, "v").creator_name is None
    done = conditional_update(
        db.update_item, **write, ConditionExpression="splitting_status <> :ip", ExpressionAttributeValues=locked
    )
    assert done["Attributes"]["creator_name"] == {"S": "x"}
    with pytest.raises(ClientError, match="ResourceNotFound"):
        conditional_update(
            db.put_item, TableName="no-such-table", Item=key, ConditionExpression="attribute_not_exists(PK)"
        )
