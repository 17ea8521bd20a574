"""Stuck-job sweeper: a job whose progress has not moved for longer than its deadline is marked
failed, so no voice or speaker stays `in_progress` forever (a crashed Lambda, a lost execution)."""

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.observability import logger
from voice_onboarding.services.container import Services
from voice_onboarding.storage.dynamo import from_item, is_conditional_failure, serialize, update_expression

# Longer than the state machine's own task timeouts, so the sweeper only catches what they missed.
DEFAULT_STALE_AFTER_SECONDS = 3 * 3600
TIMED_OUT_REASON = "Timed out: no progress for {minutes} minutes"

_JOB_FIELDS = {"voice": ("splitting", "embedding"), "speaker": ("clone", "training")}


def _last_activity(item: dict[str, Any]) -> float:
    stamps = [item.get("updated_at"), (item.get("progress") or {}).get("updated_at")]
    parsed = [datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() for s in stamps if s]
    return max(parsed, default=0.0)


def sweep(services: Services, stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS) -> list[str]:
    """Fail every stale in-progress job; returns `entity:PK/SK:job` ids of what was failed."""
    now = services.clock()
    failed: list[str] = []
    reason = TIMED_OUT_REASON.format(minutes=int(stale_after_seconds // 60))
    paginator = services.dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=services.settings.table_name,
        # A full scan is fine at this table's size and a 5-minute schedule; a sparse GSI on
        # "in_progress" would be the next step if it grows.
        FilterExpression="entity IN (:voice, :speaker)",
        ExpressionAttributeValues={":voice": serialize("voice"), ":speaker": serialize("speaker")},
    ):
        for raw in page.get("Items", []):
            item = from_item(raw)
            if now - _last_activity(item) < stale_after_seconds:
                continue
            for job in _JOB_FIELDS[item["entity"]]:
                if item.get(f"{job}_status") != JobStatus.IN_PROGRESS.value:
                    continue
                if _fail(services, raw, job, reason, item.get("version", 0)):
                    failed.append(f"{item['entity']}:{item['PK']}/{item['SK']}:{job}")
    if failed:
        logger.warning("swept stale jobs", extra={"count": len(failed), "jobs": failed})
    return failed


def _fail(services: Services, raw: dict[str, Any], job: str, reason: str, version: int) -> bool:
    expression, names, values = update_expression(
        {f"{job}_status": JobStatus.FAILED.value, f"{job}_error": reason, "progress": None}
    )
    values[":seen"] = serialize(version)
    values[":ip"] = serialize(JobStatus.IN_PROGRESS.value)
    names["#job"] = f"{job}_status"
    try:
        # Conditional on the version we read: a job that just made progress is left alone.
        services.dynamodb.update_item(
            TableName=services.settings.table_name,
            Key={"PK": raw["PK"], "SK": raw["SK"]},
            UpdateExpression=expression,
            ConditionExpression="#job = :ip AND (attribute_not_exists(#version) OR #version = :seen)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if is_conditional_failure(error):
            return False
        raise
    return True
