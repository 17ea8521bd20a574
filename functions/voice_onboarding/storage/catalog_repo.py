"""The shared voice catalog (`PK=CATALOG`, `SK=VS#{voice_sample_uuid}`), written together with the
speaker's `deployed` flag in one transaction, so the two can never disagree."""

from typing import Any

from voice_onboarding.domain.speaker import CatalogEntry
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.storage.dynamo import from_item, serialize, to_item
from voice_onboarding.storage.keys import CATALOG_PK, catalog_sk
from voice_onboarding.storage.speakers_repo import SpeakerRepository, transact

_CATALOG_SK_PREFIX = "VS#"


class CatalogRepository:
    def __init__(self, dynamodb_client: Any, table_name: str, speakers: SpeakerRepository) -> None:
        self.db = dynamodb_client
        self.table = table_name
        self.speakers = speakers

    @staticmethod
    def key(voice_sample_uuid: str) -> dict[str, Any]:
        return {"PK": serialize(CATALOG_PK), "SK": serialize(catalog_sk(voice_sample_uuid))}

    def publish(self, entry: CatalogEntry, speaker_id: str) -> bool:
        """Catalog item + speaker `deployed`, atomically. Conditional on the speaker (same id) having a
        completed clone and either no uuid yet or this one: a uuid, once set, never changes. False if
        a condition failed (the caller re-reads to say why)."""
        item = {"PK": CATALOG_PK, "SK": catalog_sk(entry.voice_sample_uuid), "entity": "catalog"}
        return transact(
            self.db,
            [
                {"Put": {"TableName": self.table, "Item": to_item({**item, **entry.model_dump(mode="json")})}},
                self.speakers.speaker_update(
                    entry.owner,
                    entry.name,
                    {"deployed": True, "voice_sample_uuid": entry.voice_sample_uuid},
                    "attribute_exists(PK) AND speaker_id = :sid AND clone_status = :ready"
                    " AND (attribute_not_exists(voice_sample_uuid) OR voice_sample_uuid = :uuid)",
                    {
                        ":sid": serialize(speaker_id),
                        ":ready": serialize(JobStatus.COMPLETED.value),
                        ":uuid": serialize(entry.voice_sample_uuid),
                    },
                ),
            ],
        )

    def unpublish(self, owner: str, name: str, speaker_id: str, voice_sample_uuid: str) -> bool:
        """Remove the catalog item and clear `deployed` (the uuid stays for a later redeploy)."""
        return transact(
            self.db,
            [
                {"Delete": {"TableName": self.table, "Key": self.key(voice_sample_uuid)}},
                self.speakers.speaker_update(
                    owner,
                    name,
                    {"deployed": False},
                    "attribute_exists(PK) AND speaker_id = :sid",
                    {":sid": serialize(speaker_id)},
                ),
            ],
        )

    def list(self) -> list[CatalogEntry]:
        entries: list[CatalogEntry] = []
        for page in self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": serialize(CATALOG_PK), ":prefix": serialize(_CATALOG_SK_PREFIX)},
        ):
            entries.extend(CatalogEntry.model_validate(from_item(i)) for i in page.get("Items", []))
        return sorted(entries, key=lambda e: (e.name, e.voice_sample_uuid))
