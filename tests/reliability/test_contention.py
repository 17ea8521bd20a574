"""Contention is absorbed, not reported as a lock: 16 concurrent writers per operation, through the
HTTP API. Every 2xx is reflected exactly once (no lost or duplicated sample, no orphan object), a lost
race is retried (never a false 409 "being processed"), and only an exhausted retry budget answers
503 + Retry-After. A voice that really is processing still gets the seed's 409."""

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests import audio_factory
from tests.conftest import PARTNER
from voice_onboarding.domain.jobs import JobKind
from voice_onboarding.domain.voice import SampleRecord
from voice_onboarding.services import catalog, cleanup, speakers
from voice_onboarding.services.gpu_jobs import CloneJob
from voice_onboarding.storage import keys, optimistic

BASE = f"/api/voices/{PARTNER}"
SPEAKERS = "/api/voice/models/speakers"
WRITERS = 16
LATENCY_SECONDS = 0.01
LOCKED = {"detail": "Voice is currently being processed"}


def concurrently(calls: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run every call at once (released together by a barrier) and return the responses in order."""
    calls = list(calls)
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_absorbed(responses: list[Any], ok: int) -> list[Any]:
    """Each writer either succeeded or was told to retry later (503 + Retry-After); returns the 2xx."""
    for response in responses:
        assert response.status_code in (ok, 503), response.text
        if response.status_code == 503:
            assert response.headers["Retry-After"].isdigit()
    return [r for r in responses if r.status_code == ok]


def sample_objects(services: Any, voice_id: str) -> list[str]:
    return sorted(services.blobs.list_keys(keys.samples_prefix(PARTNER, voice_id)))


def staged_objects(services: Any) -> list[str]:
    return [k for k in services.blobs.list_keys("") if "/uploads/" in k or k.startswith("uploads/")]


def seed_samples(services: Any, name: str, count: int) -> Any:
    """A voice with `count` samples and their objects, written directly (fast)."""
    for _ in range(count):
        placed = services.voices.append_sample(PARTNER, name, SampleRecord(index=0, duration=1.0))
        record = services.voices.require(PARTNER, name)
        services.blobs.put_bytes(keys.sample_key(PARTNER, record.voice_id, placed.index), b"opus")
    return services.voices.require(PARTNER, name)


@pytest.fixture(autouse=True)
def network_latency(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto answers in microseconds; DynamoDB over the network takes milliseconds, which
    is what leaves room for races between a read and its conditional write. Put the room back."""
    for method in ("get_item", "update_item", "transact_write_items"):
        original = getattr(services.dynamodb, method)

        def slowed(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            time.sleep(LATENCY_SECONDS)
            return __original(*args, **kwargs)

        monkeypatch.setattr(services.dynamodb, method, slowed)


@pytest.fixture
def short_wav(tmp_path: Path) -> bytes:
    return audio_factory.tone(tmp_path / "short.wav", 0.5).read_bytes()


def _upload(client: Any, wav: bytes, voice: str = "v") -> Callable[[], Any]:
    return lambda: client.post(f"{BASE}/{voice}/samples", files={"file": ("a.wav", wav, "audio/wav")})


def test_16_concurrent_uploads_to_an_idle_voice_each_land_exactly_once(client, services, short_wav):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    created = assert_absorbed(concurrently(_upload(client, short_wav) for _ in range(WRITERS)), 201)
    indices = sorted(r.json()["index"] for r in created)
    assert len(set(indices)) == len(indices)  # no index handed out twice
    record = services.voices.require(PARTNER, "v")
    assert sorted(s.index for s in record.samples) == indices
    assert sample_objects(services, record.voice_id) == sorted(
        keys.sample_key(PARTNER, record.voice_id, i) for i in indices
    )
    assert staged_objects(services) == []
    # The moto-backed table absorbs 16 writers well within the retry budget.
    assert len(created) == WRITERS


def test_16_concurrent_sample_deletes(client, services):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    record = seed_samples(services, "v", WRITERS)
    deleted = assert_absorbed(
        concurrently(lambda i=i: client.delete(f"{BASE}/v/samples/{i}") for i in range(1, WRITERS + 1)), 200
    )
    assert len(deleted) == WRITERS
    assert services.voices.require(PARTNER, "v").samples == []
    assert sample_objects(services, record.voice_id) == []


def test_uploads_racing_deletes_never_resurrect_a_deleted_sample(client, services, short_wav):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    half = WRITERS // 2
    record = seed_samples(services, "v", half)
    deletes = [lambda i=i: client.delete(f"{BASE}/v/samples/{i}") for i in range(1, half + 1)]
    uploads = [_upload(client, short_wav) for _ in range(half)]
    responses = concurrently(itertools.chain(*zip(deletes, uploads, strict=True)))
    assert len(assert_absorbed(responses[0::2], 200)) == half
    created = assert_absorbed(responses[1::2], 201)
    uploaded = sorted(r.json()["index"] for r in created)
    assert len(created) == half and min(uploaded) > half  # indices are never reused
    # Exactly the uploads are listed, and exactly their audio is stored.
    final = services.voices.require(PARTNER, "v")
    assert sorted(s.index for s in final.samples) == uploaded
    assert sample_objects(services, record.voice_id) == sorted(
        keys.sample_key(PARTNER, record.voice_id, i) for i in uploaded
    )


@pytest.mark.parametrize("s3_delete_fails", [False, True], ids=["s3-up", "s3-delete-fails"])
def test_16_deletes_of_one_sample_racing_uploads_leave_no_orphan_and_no_marker(
    client, services, short_wav, monkeypatch, s3_delete_fails
):
    """One delete wins; the losers (404) clear only their own cleanup marker, never the winner's. So
    when the winner's S3 delete fails, its marker still covers the object and the sweeper removes it."""
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    record = seed_samples(services, "v", 2)
    doomed = keys.sample_key(PARTNER, record.voice_id, 1)
    outage = [s3_delete_fails]
    if s3_delete_fails:
        original = services.blobs.delete

        def delete(*keys_: str) -> None:
            if outage[0] and doomed in keys_:
                raise ClientError({"Error": {"Code": "ServiceUnavailable"}}, "DeleteObjects")
            original(*keys_)

        monkeypatch.setattr(services.blobs, "delete", delete)
    deletes = [lambda: client.delete(f"{BASE}/v/samples/1") for _ in range(WRITERS)]
    uploads = [_upload(client, short_wav) for _ in range(WRITERS)]
    responses = concurrently(itertools.chain(*zip(deletes, uploads, strict=True)))

    deleted = [r for r in responses[0::2] if r.status_code == 200]
    assert len(deleted) == 1
    assert all(r.status_code in (200, 404, 503) for r in responses[0::2])
    created = assert_absorbed(responses[1::2], 201)
    assert len(created) == WRITERS
    uploaded = sorted(r.json()["index"] for r in created)
    final = services.voices.require(PARTNER, "v")
    assert sorted(s.index for s in final.samples) == [2, *uploaded]  # nothing lost, nothing duplicated
    expected = sorted(keys.sample_key(PARTNER, record.voice_id, i) for i in [2, *uploaded])
    if s3_delete_fails:
        # The winner's marker is the one left, and it covers the object the failed delete left behind.
        assert [m.key for m in cleanup.pending(services)] == [doomed]
        assert sample_objects(services, record.voice_id) == sorted([doomed, *expected])
        outage[0] = False  # S3 is back when the sweeper runs
        assert cleanup.drain(services, grace_seconds=0) == [doomed]
    assert cleanup.pending(services) == []
    assert sample_objects(services, record.voice_id) == expected
    assert staged_objects(services) == []


def test_16_concurrent_preferred_sample_writes_each_count_once(client, services):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    before = seed_samples(services, "v", WRITERS)
    responses = concurrently(
        lambda i=i: client.put(f"{BASE}/v/preferred-sample", data={"sample_index": str(i)})
        for i in range(1, WRITERS + 1)
    )
    ok = assert_absorbed(responses, 200)
    assert len(ok) == WRITERS
    after = services.voices.require(PARTNER, "v")
    # Every accepted write is one version step (none lost, none applied twice); the last one stands.
    assert after.version - before.version == len(ok)
    assert after.preferred_sample_index in range(1, WRITERS + 1) and after.preferred_sample_manual


def test_preferred_sample_never_points_at_a_concurrently_deleted_sample(client, services):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    seed_samples(services, "v", WRITERS // 2)
    calls = []
    for i in range(1, WRITERS // 2 + 1):
        calls.append(lambda i=i: client.put(f"{BASE}/v/preferred-sample", data={"sample_index": str(i)}))
        calls.append(lambda i=i: client.delete(f"{BASE}/v/samples/{i}"))
    responses = concurrently(calls)
    for response in responses:  # a preferred write that lost to the delete is a plain 404
        assert response.status_code in (200, 404, 503), response.text
    final = services.voices.require(PARTNER, "v")
    assert final.samples == []
    assert final.preferred_sample_index is None


def test_16_concurrent_renames_of_one_voice_have_one_winner(client, services, short_wav):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    record = seed_samples(services, "v", 3)
    responses = concurrently(lambda i=i: client.put(f"{BASE}/v/name", data={"name": f"w{i}"}) for i in range(WRITERS))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [404] * (WRITERS - 1), [r.text for r in responses]
    [winner] = [r.json()["name"] for r in responses if r.status_code == 200]
    [voice] = services.voices.list(PARTNER)
    assert (voice.name, voice.voice_id, len(voice.samples)) == (winner, record.voice_id, 3)


def test_uploads_racing_a_rename_are_kept_by_the_renamed_voice(client, services, short_wav):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    calls = [_upload(client, short_wav) for _ in range(WRITERS - 1)]
    calls.insert(WRITERS // 2, lambda: client.put(f"{BASE}/v/name", data={"name": "w"}))
    responses = concurrently(calls)
    rename = responses.pop(WRITERS // 2)
    assert rename.status_code == 200, rename.text
    for response in responses:  # an upload that reached the old name after the rename: 404
        assert response.status_code in (201, 404, 503), response.text
    created = sorted(r.json()["index"] for r in responses if r.status_code == 201)
    voice = services.voices.require(PARTNER, "w")
    assert sorted(s.index for s in voice.samples) == created
    assert sample_objects(services, voice.voice_id) == sorted(
        keys.sample_key(PARTNER, voice.voice_id, i) for i in created
    )
    assert staged_objects(services) == []


@pytest.fixture
def conflicting_transactions(services: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DynamoDB cancels a transaction that touches an item another transaction is writing at that
    moment (TransactionConflict). moto never does, so emulate it on the client: overlapping
    transactions on one key conflict. Returns the conflicts raised."""
    original = services.dynamodb.transact_write_items
    in_flight: set[tuple[str, str]] = set()
    guard = threading.Lock()
    conflicts: list[str] = []

    def item_keys(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
        found = set()
        for item in items:
            (operation,) = item.values()
            key = operation.get("Key") or {k: operation["Item"][k] for k in ("PK", "SK")}
            found.add((key["PK"]["S"], key["SK"]["S"]))
        return found

    def transact_write_items(**kwargs: Any) -> Any:
        touched = item_keys(kwargs["TransactItems"])
        with guard:
            if touched & in_flight:
                conflicts.append(sorted(touched & in_flight)[0][1])
                reasons = [{"Code": "TransactionConflict"} for _ in kwargs["TransactItems"]]
                raise ClientError(
                    {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},
                    "TransactWriteItems",
                )
            in_flight.update(touched)
        try:
            return original(**kwargs)
        finally:
            with guard:
                in_flight.difference_update(touched)

    monkeypatch.setattr(services.dynamodb, "transact_write_items", transact_write_items)
    return conflicts


def test_16_concurrent_dataset_uploads_each_land_exactly_once(client, services, tmp_path, conflicting_transactions):
    reference = audio_factory.tone(tmp_path / "ref.wav", 12.0).read_bytes()
    clip = audio_factory.tone(tmp_path / "clip.wav", 5.5).read_bytes()
    created = client.post(
        SPEAKERS,
        data={"name": "aria", "language": "en-US"},
        files={"reference_audio": ("ref.wav", reference, "audio/wav")},
    )
    assert created.status_code == 201, created.text
    responses = concurrently(
        lambda i=i: client.post(
            f"{SPEAKERS}/aria/dataset/sample",
            data={"transcript": f"sentence {i}"},
            files={"audio": ("clip.wav", clip, "audio/wav")},
        )
        for i in range(WRITERS)
    )
    ok = assert_absorbed(responses, 201)
    assert len(ok) == WRITERS
    ids = sorted(r.json()["sample_id"] for r in ok)
    stored = services.speakers.list_samples(PARTNER, "aria")
    assert sorted(s.sample_id for s in stored) == ids
    assert sorted(s.transcript for s in stored) == sorted(f"sentence {i}" for i in range(WRITERS))
    speaker = services.speakers.require(PARTNER, "aria")
    audio = [k for k in services.blobs.list_keys(keys.speaker_prefix(PARTNER, speaker.speaker_id)) if "/dataset/" in k]
    assert sorted(audio) == sorted(s.object_key for s in stored)
    assert client.get(f"{SPEAKERS}/aria/dataset").json()["sample_count"] == WRITERS
    assert conflicting_transactions, "the emulated conflicts never happened: the test proves nothing"


def test_exhausted_retries_are_503_with_retry_after_not_409(client, services, short_wav, monkeypatch):
    """A race that never ends (every conditional append loses) runs out of budget: 503, nothing kept."""
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    monkeypatch.setattr(optimistic, "BUDGET_SECONDS", 0.2)
    original = services.dynamodb.update_item

    def always_loses(**kwargs: Any) -> Any:
        if "list_append" in kwargs.get("UpdateExpression", ""):
            original(  # someone else's write lands first ...
                TableName=kwargs["TableName"],
                Key=kwargs["Key"],
                UpdateExpression="SET next_sample_index = next_sample_index + :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        return original(**kwargs)  # ... so ours fails its condition

    monkeypatch.setattr(services.dynamodb, "update_item", always_loses)
    response = _upload(client, short_wav)()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert "retry" in response.json()["detail"]
    record = services.voices.require(PARTNER, "v")
    assert record.samples == [] and sample_objects(services, record.voice_id) == []
    assert staged_objects(services) == []


@pytest.mark.parametrize("job", ["splitting", "embedding"])
def test_a_really_locked_voice_is_409_on_every_sample_write(client, services, short_wav, job):
    assert client.post(f"{BASE}/empty", data={"name": "v"}).status_code == 201
    seed_samples(services, "v", 1)
    services.voices.start_job(PARTNER, "v", job)
    upload = _upload(client, short_wav)()
    assert (upload.status_code, upload.json()) == (409, LOCKED)
    delete = client.delete(f"{BASE}/v/samples/1")
    assert (delete.status_code, delete.json()) == (409, LOCKED)
    assert len(services.voices.require(PARTNER, "v").samples) == 1
    assert staged_objects(services) == []


@pytest.fixture
def ready_speaker(client, services, dispatcher, tmp_path) -> str:
    """A speaker named "aria" whose clone completed (deployable)."""
    reference = audio_factory.tone(tmp_path / "ref.wav", 12.0).read_bytes()
    created = client.post(
        SPEAKERS,
        data={"name": "aria", "language": "en-US"},
        files={"reference_audio": ("ref.wav", reference, "audio/wav")},
    )
    assert created.status_code == 201, created.text
    job = next(j for j in dispatcher.jobs if j.kind == JobKind.CLONE)
    CloneJob.apply_result(services, job, {"tts_type": "kyutai", "embedding_dim": 8, "reference_duration": 12.0})
    return "aria"


def test_16_concurrent_first_deploys_publish_one_entry_with_one_uuid(services, ready_speaker, conflicting_transactions):
    # Through the use case: the HTTP route allows 5 deploys a minute per key.
    results = concurrently(lambda: catalog.deploy(services, PARTNER, ready_speaker) for _ in range(WRITERS))
    uuids = {r.voice_sample_uuid for r in results}
    assert len(uuids) == 1 and all(r.deployed for r in results)
    assert [e.voice_sample_uuid for e in catalog.list_catalog(services)] == list(uuids)
    assert services.speakers.require(PARTNER, ready_speaker).voice_sample_uuid in uuids
    assert conflicting_transactions, "the emulated conflicts never happened: the test proves nothing"


def test_a_deploy_that_keeps_losing_its_race_is_503_with_retry_after(client, services, ready_speaker, monkeypatch):
    """Another deploy lands a new uuid between every read and write: the bounded retry gives up with 503."""
    monkeypatch.setattr(optimistic, "BUDGET_SECONDS", 0.2)
    original = services.dynamodb.transact_write_items

    def always_loses(**kwargs: Any) -> Any:
        services.speakers.update(PARTNER, ready_speaker, {"voice_sample_uuid": catalog.new_voice_sample_uuid()})
        return original(**kwargs)

    monkeypatch.setattr(services.dynamodb, "transact_write_items", always_loses)
    response = client.post(f"/api/voice/models/speakers/{ready_speaker}/deploy")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert catalog.list_catalog(services) == []
    assert not services.speakers.require(PARTNER, ready_speaker).deployed


def test_deploying_a_speaker_deleted_mid_race_is_404_not_a_retry(client, services, ready_speaker, monkeypatch):
    original = services.dynamodb.transact_write_items

    def deleted_first(**kwargs: Any) -> Any:
        monkeypatch.setattr(services.dynamodb, "transact_write_items", original)
        speakers.delete_speaker(services, PARTNER, ready_speaker)
        return original(**kwargs)

    monkeypatch.setattr(services.dynamodb, "transact_write_items", deleted_first)
    response = client.post(f"/api/voice/models/speakers/{ready_speaker}/deploy")
    assert response.status_code == 404, response.text
    assert catalog.list_catalog(services) == []
