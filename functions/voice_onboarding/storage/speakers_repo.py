"""DynamoDB repository for speakers, their dataset samples and the shared voice catalog."""

from typing import Any

from botocore.exceptions import ClientError

from voice_onboarding.domain.errors import SpeakerAlreadyExists, SpeakerBusy, SpeakerNotFound
from voice_onboarding.domain.speaker import CatalogEntry, DatasetSample, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.storage.dynamo import from_item, is_conditional_failure, serialize, to_item, update_expression
from voice_onboarding.storage.keys import (
    CATALOG_PK,
    SPEAKER_SK_PREFIX,
    catalog_sk,
    dataset_sample_sk,
    dataset_samples_prefix,
    speaker_sk,
    tenant_pk,
)

_EXISTS = "attribute_exists(PK)"
_NOT_BUSY = "clone_status <> :in_progress AND training_status <> :in_progress"
_IN_PROGRESS = {":in_progress": serialize(JobStatus.IN_PROGRESS.value)}


class SpeakerRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def _key(self, owner: str, name: str) -> dict[str, Any]:
        return {"PK": serialize(tenant_pk(owner)), "SK": serialize(speaker_sk(name))}

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": serialize(pk), ":prefix": serialize(prefix)},
        ):
            items.extend(from_item(i) for i in page.get("Items", []))
        return items

    # --- speakers -------------------------------------------------------------------------------
    def create(self, record: SpeakerRecord) -> None:
        item = {"PK": tenant_pk(record.owner), "SK": speaker_sk(record.name), "entity": "speaker"}
        try:
            self.db.put_item(
                TableName=self.table,
                Item=to_item({**item, **record.model_dump(mode="json")}),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                raise SpeakerAlreadyExists() from error
            raise

    def get(self, owner: str, name: str) -> SpeakerRecord | None:
        item = self.db.get_item(TableName=self.table, Key=self._key(owner, name), ConsistentRead=True).get("Item")
        return SpeakerRecord.model_validate(from_item(item)) if item else None

    def require(self, owner: str, name: str) -> SpeakerRecord:
        record = self.get(owner, name)
        if record is None:
            raise SpeakerNotFound()
        return record

    def list_for_owner(self, owner: str) -> list[SpeakerRecord]:
        items = self._query(tenant_pk(owner), SPEAKER_SK_PREFIX)
        return sorted(
            (SpeakerRecord.model_validate(i) for i in items if i.get("entity") == "speaker"), key=lambda r: r.name
        )

    def update(
        self,
        owner: str,
        name: str,
        set_fields: dict[str, Any],
        *,
        require_idle: bool = False,
        expected_version: int | None = None,
    ) -> SpeakerRecord:
        expression, names, values = update_expression({**set_fields, "updated_at": utc_now_iso()})
        condition = _EXISTS
        if require_idle:
            condition += f" AND {_NOT_BUSY}"
            values.update(_IN_PROGRESS)
        if expected_version is not None:
            condition += " AND version = :seen"
            values[":seen"] = serialize(expected_version)
        try:
            response = self.db.update_item(
                TableName=self.table,
                Key=self._key(owner, name),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                self.require(owner, name)
                raise SpeakerBusy() from error
            raise
        return SpeakerRecord.model_validate(from_item(response["Attributes"]))

    def delete(self, owner: str, name: str) -> SpeakerRecord:
        try:
            response = self.db.delete_item(
                TableName=self.table,
                Key=self._key(owner, name),
                ConditionExpression=f"{_EXISTS} AND {_NOT_BUSY}",
                ExpressionAttributeValues=_IN_PROGRESS,
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                self.require(owner, name)
                raise SpeakerBusy() from error
            raise
        return SpeakerRecord.model_validate(from_item(response["Attributes"]))

    # --- dataset samples --------------------------------------------------------------------------
    def add_sample(self, owner: str, name: str, sample: DatasetSample) -> None:
        item = {"PK": tenant_pk(owner), "SK": dataset_sample_sk(name, sample.sample_id), "entity": "dataset_sample"}
        self.db.put_item(TableName=self.table, Item=to_item({**item, **sample.model_dump(mode="json")}))

    def list_samples(self, owner: str, name: str) -> list[DatasetSample]:
        items = self._query(tenant_pk(owner), dataset_samples_prefix(name))
        return sorted((DatasetSample.model_validate(i) for i in items), key=lambda s: s.created_at)

    def delete_samples(self, owner: str, name: str, samples: list[DatasetSample]) -> None:
        for start in range(0, len(samples), 25):
            self.db.batch_write_item(
                RequestItems={
                    self.table: [
                        {
                            "DeleteRequest": {
                                "Key": {
                                    "PK": serialize(tenant_pk(owner)),
                                    "SK": serialize(dataset_sample_sk(name, s.sample_id)),
                                }
                            }
                        }
                        for s in samples[start : start + 25]
                    ]
                }
            )

    # --- catalog ----------------------------------------------------------------------------------
    def publish(self, entry: CatalogEntry) -> None:
        item = {"PK": CATALOG_PK, "SK": catalog_sk(entry.voice_sample_uuid), "entity": "catalog"}
        self.db.put_item(TableName=self.table, Item=to_item({**item, **entry.model_dump(mode="json")}))

    def unpublish(self, voice_sample_uuid: str) -> None:
        self.db.delete_item(
            TableName=self.table, Key={"PK": serialize(CATALOG_PK), "SK": serialize(catalog_sk(voice_sample_uuid))}
        )

    def catalog(self) -> list[CatalogEntry]:
        items = self._query(CATALOG_PK, "VS#")
        return sorted((CatalogEntry.model_validate(i) for i in items), key=lambda e: e.name)
