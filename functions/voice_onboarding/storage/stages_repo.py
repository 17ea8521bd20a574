"""Job stages across voices and speakers, as the stuck-job sweeper reads and fails them."""

from collections.abc import Iterator
from typing import Any

from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.storage.dynamo import conditional_update, from_item, serialize, update_expression


class StageRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def owners(self) -> Iterator[dict[str, Any]]:
        """Every voice and speaker item (plain values). A full scan is fine at this table's size and a
        5-minute schedule; a sparse GSI on "in_progress" would be the next step if it grows."""
        for page in self.db.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="entity IN (:voice, :speaker)",
            ExpressionAttributeValues={
                ":voice": serialize(OwnerType.VOICE.value),
                ":speaker": serialize(OwnerType.SPEAKER.value),
            },
        ):
            yield from (from_item(raw) for raw in page.get("Items", []))

    def fail(self, item: dict[str, Any], stage: Stage, reason: str) -> bool:
        """Mark `stage` of the owner `item` failed, only if it still runs and the item's `version` is
        the one read (a job that just made progress is left alone). False if not written."""
        expression, names, values = update_expression(
            {stage.status_field: JobStatus.FAILED.value, stage.error_field: reason, "progress": None}
        )
        values[":seen"] = serialize(item.get("version", 0))
        values[":ip"] = serialize(JobStatus.IN_PROGRESS.value)
        names["#job"] = stage.status_field
        written = conditional_update(
            self.db.update_item,
            TableName=self.table,
            Key={"PK": serialize(item["PK"]), "SK": serialize(item["SK"])},
            UpdateExpression=expression,
            ConditionExpression="#job = :ip AND (attribute_not_exists(#version) OR #version = :seen)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return written is not None
