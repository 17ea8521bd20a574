"""Cleanup markers in the table (one partition, `CLEANUP`): see services/cleanup.py for the invariant.

One item per operation (`SK = {key}#{marker_id}`): two operations covering the same key (two deletes of
one sample) each write and clear their own marker, so the one that finishes first never clears the
other's cover. Markers stored before marker ids existed have `SK = key` and are read and cleared the same.
"""

import uuid
from typing import Any

from pydantic import BaseModel, Field

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
    # Which operation wrote it (absent on markers stored before ids existed).
    marker_id: str | None = Field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def sort_key(self) -> str:
        return f"{self.key}#{self.marker_id}" if self.marker_id else self.key


class CleanupRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def put(self, marker: CleanupMarker) -> None:
        """Never overwrites: a marker is only ever written by the operation that owns it."""
        item = {"PK": CLEANUP_PK, "SK": marker.sort_key, "entity": "cleanup", **marker.model_dump(mode="json")}
        self.db.put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(SK)")

    def delete(self, marker: CleanupMarker) -> None:
        """This marker only; another operation's marker for the same key stays."""
        self.db.delete_item(TableName=self.table, Key={"PK": serialize(CLEANUP_PK), "SK": serialize(marker.sort_key)})

    def list(self) -> list[CleanupMarker]:
        markers: list[CleanupMarker] = []
        for page in self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": serialize(CLEANUP_PK)},
            ConsistentRead=True,
        ):
            # No stored marker_id: an old marker, keyed by its S3 key alone (not a fresh id).
            markers.extend(
                CleanupMarker.model_validate({"marker_id": None, **from_item(item)}) for item in page.get("Items", [])
            )
        return markers
