"""DynamoDB repository for voices. Every state change is a conditional write, so concurrent
requests (across Lambdas) can never both win a lock, a name, or a sample index. Read-modify-write
updates (samples, preferred sample, rename) are guarded by the item's `version` and re-run on a lost
race (storage.optimistic): contention costs a retry, never a false "being processed" 409."""

from typing import Any

from botocore.exceptions import ClientError

from voice_onboarding.domain.errors import (
    DomainError,
    SampleNotFound,
    VoiceAlreadyExists,
    VoiceLocked,
    VoiceNotFound,
)
from voice_onboarding.domain.jobs import OwnerType, Stage
from voice_onboarding.domain.voice import JobStatus, SampleRecord, VoiceRecord, utc_now_iso
from voice_onboarding.storage.dynamo import conditional_update, from_item, serialize, to_item, update_expression
from voice_onboarding.storage.keys import VOICE_SK_PREFIX, tenant_pk, voice_sk
from voice_onboarding.storage.optimistic import CONFLICT_CODES, VersionConflict, retry_on_conflict

# No stage of the voice runs (VoiceRecord.is_locked as a condition).
_NOT_LOCKED = " AND ".join(f"{stage.status_field} <> :in_progress" for stage in Stage.of_owner(OwnerType.VOICE))
_EXISTS = "attribute_exists(PK)"
_IN_PROGRESS = {":in_progress": {"S": JobStatus.IN_PROGRESS.value}}  # literal: no boto3 at import


def _record_to_item(record: VoiceRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    data["PK"] = tenant_pk(record.partner)
    data["SK"] = voice_sk(record.name)
    data["entity"] = "voice"
    return to_item(data)


def _item_to_record(item: dict[str, Any]) -> VoiceRecord:
    data = from_item(item)
    return VoiceRecord.model_validate(data)


class VoiceRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def _key(self, partner: str, name: str) -> dict[str, Any]:
        return {"PK": serialize(tenant_pk(partner)), "SK": serialize(voice_sk(name))}

    def get(self, partner: str, name: str, consistent: bool = True) -> VoiceRecord | None:
        response = self.db.get_item(TableName=self.table, Key=self._key(partner, name), ConsistentRead=consistent)
        item = response.get("Item")
        return _item_to_record(item) if item else None

    def require(self, partner: str, name: str) -> VoiceRecord:
        record = self.get(partner, name)
        if record is None:
            raise VoiceNotFound()
        return record

    def list(self, partner: str) -> list[VoiceRecord]:
        paginator = self.db.get_paginator("query")
        records: list[VoiceRecord] = []
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": serialize(tenant_pk(partner)),
                ":prefix": serialize(VOICE_SK_PREFIX),
            },
        ):
            records.extend(_item_to_record(item) for item in page.get("Items", []))
        return sorted(records, key=lambda r: r.name)

    def find_by_id(self, partner: str, voice_id: str) -> VoiceRecord | None:
        """The voice with this immutable id, whatever it is named now (a rename moves the item)."""
        return next((r for r in self.list(partner) if r.voice_id == voice_id), None)

    def create(self, record: VoiceRecord) -> None:
        created = conditional_update(
            self.db.put_item,
            TableName=self.table,
            Item=_record_to_item(record),
            ConditionExpression="attribute_not_exists(PK)",
        )
        if created is None:
            raise VoiceAlreadyExists()

    def _raise_for_failed_condition(self, partner: str, name: str) -> None:
        """A conditional write failed: tell the caller whether the voice is gone or locked."""
        current = self.get(partner, name)
        if current is None:
            raise VoiceNotFound()
        if current.is_locked:
            raise VoiceLocked()

    def update(
        self,
        partner: str,
        name: str,
        set_fields: dict[str, Any],
        *,
        remove_fields: tuple[str, ...] = (),
        condition: str = _EXISTS,
        condition_values: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> VoiceRecord:
        """SET/REMOVE top-level attributes under a condition; returns the updated record.
        With `expected_version`, a write that lost a race (item exists, not locked, but changed since
        it was read) raises VersionConflict for the caller's retry loop instead of VoiceLocked."""
        set_fields = {**set_fields, "updated_at": utc_now_iso()}
        expression, names, values = update_expression(set_fields, remove_fields)
        values.update(condition_values or {})
        if expected_version is not None:
            condition = f"{condition} AND #version = :seen"
            values[":seen"] = serialize(expected_version)
        try:
            response = conditional_update(
                self.db.update_item,
                TableName=self.table,
                Key=self._key(partner, name),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if expected_version is not None and _error_code(error) in CONFLICT_CODES:
                raise VersionConflict() from error
            raise
        if response is None:
            self._raise_for_failed_condition(partner, name)
            if expected_version is not None:
                raise VersionConflict()
            raise VoiceLocked()
        return _item_to_record(response["Attributes"])

    def update_unlocked(self, partner: str, name: str, set_fields: dict[str, Any]) -> VoiceRecord:
        """Update only if neither job is running (409 otherwise)."""
        return self.update(
            partner,
            name,
            set_fields,
            condition=f"{_EXISTS} AND {_NOT_LOCKED}",
            condition_values=_IN_PROGRESS,
        )

    def start_job(self, partner: str, name: str, job: Stage | str, extra: dict[str, Any] | None = None) -> VoiceRecord:
        """Atomically move a voice stage (splitting/embedding) to in_progress; 409 if any job runs."""
        stage = Stage(job)
        fields: dict[str, Any] = {stage.status_field: JobStatus.IN_PROGRESS.value, stage.error_field: None}
        fields["progress"] = {"job": stage.value, "step": "queued", "updated_at": utc_now_iso()}
        return self.update_unlocked(partner, name, {**fields, **(extra or {})})

    def finish_job(
        self,
        partner: str,
        name: str,
        job: Stage | str,
        status: JobStatus,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> VoiceRecord:
        stage = Stage(job)
        fields: dict[str, Any] = {stage.status_field: status.value, stage.error_field: error, "progress": None}
        return self.update(partner, name, {**fields, **(extra or {})})

    def update_stage(self, partner: str, name: str, voice_id: str, stage: Stage, fields: dict[str, Any]) -> bool:
        """Write a job's outcome only to the voice it ran for (not a re-created namesake) while that
        stage still runs (not deleted, not failed by the sweeper). False if not written."""
        try:
            self.update(
                partner,
                name,
                fields,
                condition=f"{_EXISTS} AND voice_id = :voice_id AND {Stage(stage).status_field} = :in_progress",
                condition_values={
                    ":voice_id": serialize(voice_id),
                    ":in_progress": serialize(JobStatus.IN_PROGRESS.value),
                },
            )
        except DomainError:
            return False
        return True

    def delete(self, partner: str, name: str) -> VoiceRecord:
        response = conditional_update(
            self.db.delete_item,
            TableName=self.table,
            Key=self._key(partner, name),
            ConditionExpression=f"{_EXISTS} AND {_NOT_LOCKED}",
            ExpressionAttributeValues=_IN_PROGRESS,
            ReturnValues="ALL_OLD",
        )
        if response is None:
            self._raise_for_failed_condition(partner, name)
            raise VoiceLocked()
        return _item_to_record(response["Attributes"])

    def rename(self, partner: str, old_name: str, new_name: str) -> VoiceRecord:
        """Move the item to a new key in one transaction: the new name must be free, the old item
        unchanged since we read it (version guard, retried on a lost race) and not locked."""
        return retry_on_conflict(lambda: self._rename_once(partner, old_name, new_name))

    def _rename_once(self, partner: str, old_name: str, new_name: str) -> VoiceRecord:
        current = self.require(partner, old_name)
        if current.is_locked:
            raise VoiceLocked()
        renamed = current.model_copy(
            update={"name": new_name, "updated_at": utc_now_iso(), "version": current.version + 1}
        )
        try:
            self.db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _record_to_item(renamed),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": self._key(partner, old_name),
                            "ConditionExpression": f"{_EXISTS} AND {_NOT_LOCKED} AND #version = :seen",
                            "ExpressionAttributeNames": {"#version": "version"},
                            "ExpressionAttributeValues": {
                                **_IN_PROGRESS,
                                ":seen": serialize(current.version),
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            code = _error_code(error)
            if code in CONFLICT_CODES:
                raise VersionConflict() from error
            if code != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise VoiceAlreadyExists() from error
            self._raise_for_failed_condition(partner, old_name)
            raise VersionConflict() from error
        return renamed

    def append_sample(self, partner: str, name: str, sample: SampleRecord) -> SampleRecord:
        """Add a sample at the next free index. The index counter guards the write, so two uploads
        racing for one index cannot both land; the loser re-reads and takes the next one."""
        return retry_on_conflict(lambda: self._append_sample_once(partner, name, sample))

    def _append_sample_once(self, partner: str, name: str, sample: SampleRecord) -> SampleRecord:
        current = self.require(partner, name)
        if current.is_locked:
            raise VoiceLocked()
        placed = sample.model_copy(update={"index": current.next_sample_index})
        # list_append, not a rewrite of the list read: a concurrent sample removal is never undone,
        # and only appends (not every write) compete for the index counter.
        try:
            appended = conditional_update(
                self.db.update_item,
                TableName=self.table,
                Key=self._key(partner, name),
                UpdateExpression=(
                    "SET #samples = list_append(if_not_exists(#samples, :empty), :new), #next = :next,"
                    " #version = if_not_exists(#version, :zero) + :one, #updated = :now"
                ),
                ConditionExpression=f"{_EXISTS} AND {_NOT_LOCKED} AND #next = :expected",
                ExpressionAttributeNames={
                    "#samples": "samples",
                    "#next": "next_sample_index",
                    "#version": "version",
                    "#updated": "updated_at",
                },
                ExpressionAttributeValues={
                    ":empty": serialize([]),
                    ":new": serialize([placed.model_dump(mode="json")]),
                    ":next": serialize(current.next_sample_index + 1),
                    ":expected": serialize(current.next_sample_index),
                    ":zero": serialize(0),
                    ":one": serialize(1),
                    ":now": serialize(utc_now_iso()),
                    **_IN_PROGRESS,
                },
            )
        except ClientError as error:
            if _error_code(error) in CONFLICT_CODES:
                raise VersionConflict() from error
            raise
        if appended is None:
            self._raise_for_failed_condition(partner, name)
            raise VersionConflict()
        return placed

    def remove_sample(self, partner: str, name: str, index: int) -> VoiceRecord:
        return retry_on_conflict(lambda: self._remove_sample_once(partner, name, index))

    def _remove_sample_once(self, partner: str, name: str, index: int) -> VoiceRecord:
        current = self.require(partner, name)
        if current.is_locked:
            raise VoiceLocked()
        if current.sample(index) is None:
            raise SampleNotFound()
        remaining = [s.model_dump(mode="json") for s in current.samples if s.index != index]
        fields: dict[str, Any] = {"samples": remaining}
        if current.preferred_sample_index == index:
            fields.update(preferred_sample_index=None, preferred_sample_manual=False)
        return self.update(
            partner,
            name,
            fields,
            condition=f"{_EXISTS} AND {_NOT_LOCKED}",
            condition_values=_IN_PROGRESS,
            expected_version=current.version,
        )

    def set_preferred_sample(self, partner: str, name: str, index: int | None) -> VoiceRecord:
        """Manual choice (None clears it). Guarded by the version read, so the sample cannot be
        deleted between the existence check and the write."""
        return retry_on_conflict(lambda: self._set_preferred_once(partner, name, index))

    def _set_preferred_once(self, partner: str, name: str, index: int | None) -> VoiceRecord:
        current = self.require(partner, name)
        if index is not None and current.sample(index) is None:
            raise SampleNotFound()
        return self.update(
            partner,
            name,
            {"preferred_sample_index": index, "preferred_sample_manual": index is not None},
            expected_version=current.version,
        )


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
