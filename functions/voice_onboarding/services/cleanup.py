"""Cleanup markers: how S3 and DynamoDB stay consistent without a transaction spanning both.

Invariant: every S3 object under a voice's or a speaker's prefix is owned by a live item, or covered
by a cleanup marker written *before* the first step that could leave it orphaned. A marker names an
S3 key (or prefix) and the voice or speaker that may own it; the operation that wrote it clears it (its
own marker only: two operations on one key, such as two deletes of one sample, hold one marker each). If a step
fails half-way (a throttle, a crashed Lambda), the marker stays and the scheduled sweeper drains it:
objects are deleted only if no live voice owns them, so a marker left behind by a successful
operation is harmless. Markers younger than a grace period are skipped, since their operation may
still be running."""

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from voice_onboarding.domain.jobs import OwnerType
from voice_onboarding.observability import logger
from voice_onboarding.services.container import Services
from voice_onboarding.storage.cleanup_repo import CleanupMarker

# Longer than any API Lambda can run (29 s timeout): an older marker's operation is over.
DEFAULT_GRACE_SECONDS = 15 * 60
AWS_ERRORS = (ClientError, BotoCoreError)


def mark(
    services: Services,
    key: str,
    partner: str,
    voice_id: str,
    sample_index: int | None = None,
    *,
    owner_type: OwnerType = OwnerType.VOICE,
    sample_id: str | None = None,
) -> CleanupMarker:
    """Cover `key` before a step that could orphan it; `voice_id` is the owner's id (a speaker_id when
    `owner_type` is a speaker). Returns the marker for `clear`/`rollback`."""
    marker = CleanupMarker(
        key=key,
        partner=partner,
        voice_id=voice_id,
        owner_type=owner_type,
        sample_index=sample_index,
        sample_id=sample_id,
        created_at=services.clock(),
    )
    services.cleanup.put(marker)
    return marker


def clear(services: Services, marker: CleanupMarker) -> None:
    services.cleanup.delete(marker)


def clear_quietly(services: Services, marker: CleanupMarker) -> None:
    """Clear after the operation succeeded or was rolled back; a marker left here is harmless."""
    try:
        clear(services, marker)
    except AWS_ERRORS as error:
        logger.warning("cleanup marker left for the sweeper", extra={"key": marker.key, "error": type(error).__name__})


def delete_objects(services: Services, key: str) -> int:
    """Delete the object `key`, or every object under it when it is a prefix; how many went."""
    if key.endswith("/"):
        return services.blobs.delete_prefix(key)
    services.blobs.delete(key)
    return 1


@contextmanager
def written_under(services: Services, marker: CleanupMarker) -> Iterator[None]:
    """The writes of an operation that `marker` covers: if any of them fails, what they wrote is
    deleted (rollback) and the error re-raised; once all succeeded, the marker is cleared."""
    try:
        yield
    except BaseException:
        rollback(services, marker)
        raise
    clear_quietly(services, marker)


@contextmanager
def removing_owner(services: Services, marker: CleanupMarker) -> Iterator[None]:
    """The item delete that orphans `marker`'s objects: if it fails (busy, gone, a lost race), the owner
    still owns its objects, so only our marker is cleared and the error re-raised."""
    try:
        yield
    except BaseException:
        clear_quietly(services, marker)  # ours only: a concurrent operation that won keeps its own
        raise


def delete_covered(services: Services, marker: CleanupMarker) -> int | None:
    """Once their owner is gone: delete the objects `marker` covers, then the marker; how many went.
    An S3 failure leaves both for the sweeper (logged) and answers None: the operation still succeeded."""
    try:
        removed = delete_objects(services, marker.key)
    except AWS_ERRORS as error:
        logger.warning("objects left for the sweeper", extra={"key": marker.key, "error": type(error).__name__})
        return None
    clear_quietly(services, marker)
    return removed


def rollback(services: Services, marker: CleanupMarker) -> None:
    """Delete what a failed operation wrote, then its marker. Best effort: if S3 or DynamoDB fails
    too, the marker stays and the sweeper finishes the job. Never raises (the caller re-raises)."""
    try:
        delete_objects(services, marker.key)
        clear(services, marker)
    except AWS_ERRORS as error:
        logger.warning("rollback deferred to the sweeper", extra={"key": marker.key, "error": type(error).__name__})


def pending(services: Services) -> list[CleanupMarker]:
    return services.cleanup.list()


def _still_owned(services: Services, marker: CleanupMarker) -> bool:
    if marker.owner_type == OwnerType.SPEAKER:
        speaker = next(
            (s for s in services.speakers.list_for_owner(marker.partner) if s.speaker_id == marker.voice_id), None
        )
        if speaker is None:
            return False
        if marker.sample_id is None:
            return True
        return any(s.sample_id == marker.sample_id for s in services.speakers.list_samples(speaker.owner, speaker.name))
    # By voice_id, not name: a renamed voice still owns its objects.
    live = next((v for v in services.voices.list(marker.partner) if v.voice_id == marker.voice_id), None)
    if live is None:
        return False
    return marker.sample_index is None or live.sample(marker.sample_index) is not None


def drain(services: Services, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[str]:
    """Finish every marker older than the grace period; returns the keys whose objects were deleted."""
    now = services.clock()
    deleted: list[str] = []
    for marker in pending(services):
        if now - marker.created_at < grace_seconds:
            continue
        owned = _still_owned(services, marker)
        if not owned:
            delete_objects(services, marker.key)
            deleted.append(marker.key)
        clear(services, marker)
    if deleted:
        logger.warning("cleaned up orphaned objects", extra={"count": len(deleted), "keys": deleted})
    return deleted
