"""Cleanup markers in the table (one partition, `CLEANUP`): see services/cleanup.py for the invariant."""

from typing import Any

from pydantic import BaseModel

from voice_onboarding.domain.jobs import OwnerType
from voice_onboarding.storage.dynamo import from_item, serialize, to_item
from voice_onboarding.storage.keys import CLEANUP_PK


class CleanupMarker(BaseModel):
    key: str  # exact S3 key, or a prefix when it ends with "/"
    partner: str
    # The id of the voice or speaker that may own the objects (voice_id / speaker_id); the field name
    # predates speakers and is kept for markers already stored.
    voice_id: str
    owner_type: OwnerType = OwnerType.VOICE
    # Object markers for one voice sample: the object stays while the voice still lists this index.
    sample_index: int | None = None
    # Object markers for one speaker dataset sample: kept while the speaker still lists this sample.
    sample_id: str | None = None
    created_at: float


class CleanupRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def put(self, marker: CleanupMarker) -> None:
        item = {"PK": CLEANUP_PK, "SK": marker.key, "entity": "cleanup", **marker.model_dump(mode="json")}
        self.db.put_item(TableName=self.table, Item=to_item(item))

    def delete(self, key: str) -> None:
        self.db.delete_item(TableName=self.table, Key={"PK": serialize(CLEANUP_PK), "SK": serialize(key)})

    def list(self) -> list[CleanupMarker]:
        markers: list[CleanupMarker] = []
        for page in self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": serialize(CLEANUP_PK)},
            ConsistentRead=True,
        ):
            markers.extend(CleanupMarker.model_validate(from_item(item)) for item in page.get("Items", []))
        return markers
