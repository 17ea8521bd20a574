"""Stuck-job sweeper: a job whose progress has not moved for longer than its deadline is marked
failed, so no voice or speaker stays `in_progress` forever (a crashed Lambda, a lost execution)."""

from datetime import UTC, datetime
from typing import Any

from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.observability import logger
from voice_onboarding.services.container import Services

TIMED_OUT_REASON = "Timed out: no progress for {minutes} minutes"

# GPU jobs have their own deadline (the poll cancels a run past it, queue time included), and a kind
# may not write progress while it runs: never fail one before that deadline plus a margin.
_DEADLINE_MARGIN_SECONDS = 15 * 60


def stale_after(stage: Stage | str, configured: float) -> float:
    deadline = Stage(stage).timeout_seconds
    if deadline is None:
        return configured
    return max(configured, deadline + _DEADLINE_MARGIN_SECONDS)


def _epoch(stamp: Any) -> float | None:
    """ISO-8601 (with Z, an offset, or naive = UTC) to epoch seconds; None when unreadable, so one
    odd value written by another component cannot stop the sweep."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def last_activity(item: dict[str, Any]) -> float:
    """Latest of the item's `updated_at` and its `progress.updated_at`: any write is a sign of life."""
    progress = item.get("progress") if isinstance(item.get("progress"), dict) else {}
    stamps = [_epoch(item.get("updated_at")), _epoch(progress.get("updated_at"))]
    return max((s for s in stamps if s is not None), default=0.0)


def sweep(services: Services, stale_after_seconds: float | None = None) -> list[str]:
    """Fail every stale in-progress job; returns `entity:PK/SK:job` ids of what was failed."""
    if stale_after_seconds is None:
        stale_after_seconds = services.settings.sweeper_stale_after_seconds
    now = services.clock()
    failed: list[str] = []
    for item in services.stages.owners():
        idle = now - last_activity(item)
        for stage in Stage.of_owner(OwnerType(item["entity"])):
            if item.get(stage.status_field) != JobStatus.IN_PROGRESS.value:
                continue
            limit = stale_after(stage, stale_after_seconds)
            if idle < limit:
                continue
            if services.stages.fail(item, stage, TIMED_OUT_REASON.format(minutes=int(limit // 60))):
                failed.append(f"{item['entity']}:{item['PK']}/{item['SK']}:{stage.value}")
    if failed:
        logger.warning("swept stale jobs", extra={"count": len(failed), "jobs": failed})
    return failed
