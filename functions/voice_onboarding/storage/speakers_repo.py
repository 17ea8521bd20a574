"""DynamoDB repository for speakers and their child items (dataset samples, adapter versions).

Layout (one partition per tenant): the speaker at `SK=SPEAKER#{name}`, each dataset sample at
`SPEAKER#{name}#SAMPLE#{sample_id}`, each adapter version at `SPEAKER#{name}#ADAPTER#{version:06d}`.
Samples are items, not a list on the speaker: a dataset of hundreds of transcripts would approach the
400 KB item limit, and an upload is then one put instead of a read-modify-write of the whole list.
Writes that must agree with the speaker (a sample for a speaker that is being deleted, a training run
starting) are transactions conditioned on the speaker item, so races never leave orphans behind.
"""

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from voice_onboarding.domain.errors import SpeakerAlreadyExists, SpeakerBusy, SpeakerNotFound
from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.speaker import AdapterVersion, DatasetSample, SpeakerRecord
from voice_onboarding.domain.voice import JobStatus, utc_now_iso
from voice_onboarding.storage.dynamo import (
    conditional_update,
    from_item,
    is_conditional_failure,
    serialize,
    to_item,
    update_expression,
)
from voice_onboarding.storage.keys import (
    SPEAKER_SK_PREFIX,
    adapter_sk,
    adapters_prefix,
    dataset_sample_sk,
    dataset_samples_prefix,
    speaker_children_prefix,
    speaker_sk,
    tenant_pk,
)
from voice_onboarding.storage.optimistic import CONFLICT_CODES, VersionConflict, retry_on_conflict

_EXISTS = "attribute_exists(PK)"
# No stage of the speaker runs (SpeakerRecord.is_busy as a condition).
_NOT_BUSY = " AND ".join(f"{stage.status_field} <> :in_progress" for stage in Stage.of_owner(OwnerType.SPEAKER))
_IN_PROGRESS = {":in_progress": {"S": JobStatus.IN_PROGRESS.value}}  # literal: no boto3 at import
_BATCH = 25  # BatchWriteItem's maximum


def transact(db: Any, items: list[dict[str, Any]]) -> bool:
    """TransactWriteItems; False when a condition failed. A transaction conflict (another request
    writing one of the items at the same moment) is retried with backoff, then 503; throttling raises."""
    return retry_on_conflict(lambda: _transact_once(db, items))


def _transact_once(db: Any, items: list[dict[str, Any]]) -> bool:
    try:
        db.transact_write_items(TransactItems=items)
    except ClientError as error:
        reasons = error.response.get("CancellationReasons") or []
        codes = {r.get("Code") for r in reasons}
        if is_conditional_failure(error) and (not reasons or "ConditionalCheckFailed" in codes):
            return False
        if error.response.get("Error", {}).get("Code") in CONFLICT_CODES or codes & CONFLICT_CODES:
            raise VersionConflict() from error
        raise
    return True


def set_expression(fields: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET/REMOVE without the optimistic-lock `version` bump (for items whose `version` is data)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    removes: list[str] = []
    for i, (field, value) in enumerate(fields.items()):
        names[f"#a{i}"] = field
        if value is None:
            removes.append(f"#a{i}")
        else:
            values[f":a{i}"] = serialize(value)
            sets.append(f"#a{i} = :a{i}")
    expression = ("SET " + ", ".join(sets)) if sets else ""
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return expression.strip(), names, values


class SpeakerRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def key(self, owner: str, name: str) -> dict[str, Any]:
        return {"PK": serialize(tenant_pk(owner)), "SK": serialize(speaker_sk(name))}

    def _query(self, pk: str, prefix: str, **extra: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        values = {":pk": serialize(pk), ":prefix": serialize(prefix), **extra.pop("values", {})}
        for page in self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues=values,
            ConsistentRead=True,
            **extra,
        ):
            items.extend(from_item(i) for i in page.get("Items", []))
        return items

    def speaker_update(
        self, owner: str, name: str, set_fields: dict[str, Any], condition: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """An Update for a transaction (bumps the speaker's optimistic-lock version)."""
        expression, names, expr_values = update_expression({**set_fields, "updated_at": utc_now_iso()})
        return {
            "Update": {
                "TableName": self.table,
                "Key": self.key(owner, name),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**expr_values, **values},
            }
        }

    # --- speakers -------------------------------------------------------------------------------
    def create(self, record: SpeakerRecord) -> None:
        item = {"PK": tenant_pk(record.owner), "SK": speaker_sk(record.name), "entity": "speaker"}
        created = conditional_update(
            self.db.put_item,
            TableName=self.table,
            Item=to_item({**item, **record.model_dump(mode="json")}),
            ConditionExpression="attribute_not_exists(PK)",
        )
        if created is None:
            raise SpeakerAlreadyExists()

    def get(self, owner: str, name: str) -> SpeakerRecord | None:
        item = self.db.get_item(TableName=self.table, Key=self.key(owner, name), ConsistentRead=True).get("Item")
        return SpeakerRecord.model_validate(from_item(item)) if item else None

    def require(self, owner: str, name: str) -> SpeakerRecord:
        record = self.get(owner, name)
        if record is None:
            raise SpeakerNotFound()
        return record

    def list_for_owner(self, owner: str) -> list[SpeakerRecord]:
        items = self._query(
            tenant_pk(owner),
            SPEAKER_SK_PREFIX,
            FilterExpression="entity = :speaker",
            values={":speaker": serialize("speaker")},
        )
        return sorted((SpeakerRecord.model_validate(i) for i in items), key=lambda r: r.name)

    def update(
        self,
        owner: str,
        name: str,
        set_fields: dict[str, Any],
        *,
        require_idle: bool = False,
        expected_version: int | None = None,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> SpeakerRecord:
        """Update an existing speaker; SpeakerNotFound if gone, SpeakerBusy if a condition failed."""
        expression, names, values = update_expression({**set_fields, "updated_at": utc_now_iso()})
        full_condition = _EXISTS
        if require_idle:
            full_condition += f" AND {_NOT_BUSY}"
            values.update(_IN_PROGRESS)
        if expected_version is not None:
            full_condition += " AND #version = :seen"
            values[":seen"] = serialize(expected_version)
        if condition:
            full_condition += f" AND ({condition})"
            values.update(condition_values or {})
        try:
            response = conditional_update(
                self.db.update_item,
                TableName=self.table,
                Key=self.key(owner, name),
                UpdateExpression=expression,
                ConditionExpression=full_condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if expected_version is not None and error.response.get("Error", {}).get("Code") in CONFLICT_CODES:
                raise VersionConflict() from error
            raise
        if response is None:
            current = self.require(owner, name)
            if expected_version is not None and not current.is_busy:
                raise VersionConflict()  # changed since read: the caller re-reads
            raise SpeakerBusy()
        return SpeakerRecord.model_validate(from_item(response["Attributes"]))

    def update_stage(self, owner: str, name: str, speaker_id: str, stage: Stage, fields: dict[str, Any]) -> bool:
        """Write a job's outcome only to the speaker it ran for, while that stage still runs
        (not a re-created namesake, not a job the sweeper already failed). False if not written."""
        try:
            self.update(
                owner,
                name,
                fields,
                condition=f"speaker_id = :sid AND {Stage(stage).status_field} = :stage_running",
                condition_values={
                    ":sid": serialize(speaker_id),
                    ":stage_running": serialize(JobStatus.IN_PROGRESS.value),
                },
            )
        except (SpeakerNotFound, SpeakerBusy):
            return False
        return True

    def delete(self, owner: str, name: str, speaker_id: str, extra_deletes: Iterable[dict[str, Any]] = ()) -> None:
        """Delete the speaker (not while a job runs) together with `extra_deletes` (its catalog entry)
        in one transaction: the catalog never points at a deleted speaker, nor loses a live one."""
        items = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": self.key(owner, name),
                    "ConditionExpression": f"{_EXISTS} AND speaker_id = :sid AND {_NOT_BUSY}",
                    "ExpressionAttributeValues": {":sid": serialize(speaker_id), **_IN_PROGRESS},
                }
            },
            *({"Delete": {"TableName": self.table, "Key": key}} for key in extra_deletes),
        ]
        if not transact(self.db, items):
            current = self.require(owner, name)
            if current.speaker_id != speaker_id:
                raise SpeakerNotFound()
            raise SpeakerBusy()

    def lock_dataset(self, owner: str, name: str) -> SpeakerRecord:
        """Refuse (409) while training reads the dataset; bumps `version`, so a training start that
        read the speaker before this point fails its own conditional write."""
        return self.update(
            owner,
            name,
            {"dataset_cleared_at": utc_now_iso()},
            condition=f"{Stage.TRAINING.status_field} <> :training",
            condition_values={":training": serialize(JobStatus.IN_PROGRESS.value)},
        )

    # --- dataset samples --------------------------------------------------------------------------
    def add_sample(self, owner: str, name: str, speaker_id: str, sample: DatasetSample) -> None:
        """Put the sample only if its speaker still exists (a concurrent delete cannot orphan it)."""
        item = {"PK": tenant_pk(owner), "SK": dataset_sample_sk(name, sample.sample_id), "entity": "dataset_sample"}
        ok = transact(
            self.db,
            [
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": self.key(owner, name),
                        "ConditionExpression": f"{_EXISTS} AND speaker_id = :sid",
                        "ExpressionAttributeValues": {":sid": serialize(speaker_id)},
                    }
                },
                {"Put": {"TableName": self.table, "Item": to_item({**item, **sample.model_dump(mode="json")})}},
            ],
        )
        if not ok:
            raise SpeakerNotFound()

    def list_samples(self, owner: str, name: str) -> list[DatasetSample]:
        items = self._query(tenant_pk(owner), dataset_samples_prefix(name))
        return sorted((DatasetSample.model_validate(i) for i in items), key=lambda s: (s.uploaded_ns, s.sample_id))

    def delete_samples(self, owner: str, name: str, samples: list[DatasetSample]) -> None:
        self._batch_delete([(tenant_pk(owner), dataset_sample_sk(name, s.sample_id)) for s in samples])

    def delete_children(self, owner: str, name: str) -> int:
        """Remove every dataset sample and adapter item of a speaker; returns how many."""
        items = self._query(tenant_pk(owner), speaker_children_prefix(name), ProjectionExpression="PK, SK")
        self._batch_delete([(i["PK"], i["SK"]) for i in items])
        return len(items)

    def _batch_delete(self, keys: list[tuple[str, str]]) -> None:
        for start in range(0, len(keys), _BATCH):
            requests = [
                {"DeleteRequest": {"Key": {"PK": serialize(pk), "SK": serialize(sk)}}}
                for pk, sk in keys[start : start + _BATCH]
            ]
            pending: dict[str, Any] = {self.table: requests}
            while pending:  # throttled writes come back unprocessed: resend until none are left
                response = self.db.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    # --- adapter versions ---------------------------------------------------------------------------
    def begin_training(self, owner: str, name: str, expected_version: int, adapter: AdapterVersion) -> None:
        """Speaker -> training in_progress and the new adapter item, atomically. Conditional on the
        speaker being idle and unchanged since it was read: two requests can never both start.
        SpeakerBusy if a job runs; VersionConflict if the speaker merely changed (retry)."""
        item = {"PK": tenant_pk(owner), "SK": adapter_sk(name, adapter.version), "entity": "speaker_adapter"}
        ok = transact(
            self.db,
            [
                self.speaker_update(
                    owner,
                    name,
                    {
                        Stage.TRAINING.status_field: JobStatus.IN_PROGRESS.value,
                        Stage.TRAINING.error_field: None,
                        "adapter_count": adapter.version,
                    },
                    f"{_EXISTS} AND {_NOT_BUSY} AND #version = :seen",
                    {**_IN_PROGRESS, ":seen": serialize(expected_version)},
                ),
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item({**item, **adapter.model_dump(mode="json")}),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ],
        )
        if not ok:
            if self.require(owner, name).is_busy:
                raise SpeakerBusy()
            # Idle, so the speaker changed since it was read (or the version number was taken):
            # the caller re-reads the dataset and tries again (storage.optimistic).
            raise VersionConflict()

    def list_adapters(self, owner: str, name: str) -> list[AdapterVersion]:
        items = self._query(tenant_pk(owner), adapters_prefix(name))
        return sorted((AdapterVersion.model_validate(i) for i in items), key=lambda a: a.version)

    def get_adapter(self, owner: str, name: str, version: int) -> AdapterVersion | None:
        item = self.db.get_item(
            TableName=self.table,
            Key={"PK": serialize(tenant_pk(owner)), "SK": serialize(adapter_sk(name, version))},
            ConsistentRead=True,
        ).get("Item")
        return AdapterVersion.model_validate(from_item(item)) if item else None

    def finish_training(
        self,
        owner: str,
        name: str,
        speaker_id: str,
        version: int,
        speaker_fields: dict[str, Any],
        adapter_fields: dict[str, Any],
    ) -> bool:
        """Record a training outcome on the speaker and its adapter item together, only while that
        speaker's training still runs; False (nothing written) otherwise."""
        expression, names, values = set_expression({**adapter_fields, "updated_at": utc_now_iso()})
        return transact(
            self.db,
            [
                self.speaker_update(
                    owner,
                    name,
                    speaker_fields,
                    f"{_EXISTS} AND speaker_id = :sid AND {Stage.TRAINING.status_field} = :in_progress",
                    {":sid": serialize(speaker_id), **_IN_PROGRESS},
                ),
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"PK": serialize(tenant_pk(owner)), "SK": serialize(adapter_sk(name, version))},
                        "UpdateExpression": expression,
                        "ConditionExpression": _EXISTS,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
            ],
        )
