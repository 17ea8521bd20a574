"""DynamoDB repository for voices. Every state change is a conditional write, so concurrent
requests (across Lambdas) can never both win a lock, a name, or a sample index."""

from typing import Any

from botocore.exceptions import ClientError

from voice_onboarding.domain.errors import (
    SampleNotFound,
    VoiceAlreadyExists,
    VoiceLocked,
    VoiceNotFound,
)
from voice_onboarding.domain.voice import JobStatus, SampleRecord, VoiceRecord, utc_now_iso
from voice_onboarding.storage.dynamo import (
    from_item,
    is_conditional_failure,
    serialize,
    to_item,
    update_expression,
)
from voice_onboarding.storage.keys import VOICE_SK_PREFIX, tenant_pk, voice_sk

_NOT_LOCKED = "splitting_status <> :in_progress AND embedding_status <> :in_progress"
_EXISTS = "attribute_exists(PK)"
_IN_PROGRESS = {":in_progress": serialize(JobStatus.IN_PROGRESS.value)}
# A read-modify-write that loses a race is retried this many times before reporting a conflict.
_MAX_OPTIMISTIC_RETRIES = 5


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

    def create(self, record: VoiceRecord) -> None:
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_record_to_item(record),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                raise VoiceAlreadyExists() from error
            raise

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
    ) -> VoiceRecord:
        """SET/REMOVE top-level attributes under a condition; returns the updated record."""
        set_fields = {**set_fields, "updated_at": utc_now_iso()}
        expression, names, values = update_expression(set_fields, remove_fields)
        values.update(condition_values or {})
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(partner, name),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        kwargs["ExpressionAttributeValues"] = values
        try:
            response = self.db.update_item(**kwargs)
        except ClientError as error:
            if is_conditional_failure(error):
                self._raise_for_failed_condition(partner, name)
                raise VoiceLocked() from error
            raise
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

    def start_job(self, partner: str, name: str, job: str, extra: dict[str, Any] | None = None) -> VoiceRecord:
        """Atomically move `job` ('splitting'/'embedding') to in_progress; 409 if any job runs."""
        fields: dict[str, Any] = {f"{job}_status": JobStatus.IN_PROGRESS.value, f"{job}_error": None}
        fields["progress"] = {"job": job, "step": "queued", "updated_at": utc_now_iso()}
        return self.update_unlocked(partner, name, {**fields, **(extra or {})})

    def finish_job(
        self,
        partner: str,
        name: str,
        job: str,
        status: JobStatus,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> VoiceRecord:
        fields: dict[str, Any] = {f"{job}_status": status.value, f"{job}_error": error, "progress": None}
        return self.update(partner, name, {**fields, **(extra or {})})

    def delete(self, partner: str, name: str) -> VoiceRecord:
        try:
            response = self.db.delete_item(
                TableName=self.table,
                Key=self._key(partner, name),
                ConditionExpression=f"{_EXISTS} AND {_NOT_LOCKED}",
                ExpressionAttributeValues=_IN_PROGRESS,
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                self._raise_for_failed_condition(partner, name)
                raise VoiceLocked() from error
            raise
        return _item_to_record(response["Attributes"])

    def rename(self, partner: str, old_name: str, new_name: str) -> VoiceRecord:
        """Move the item to a new key in one transaction: the new name must be free, the old item
        unchanged since we read it (version guard) and not locked."""
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
                            "ConditionExpression": f"{_EXISTS} AND {_NOT_LOCKED} AND version = :seen",
                            "ExpressionAttributeValues": {
                                **_IN_PROGRESS,
                                ":seen": serialize(current.version),
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise VoiceAlreadyExists() from error
            self._raise_for_failed_condition(partner, old_name)
            raise VoiceLocked() from error
        return renamed

    def append_sample(self, partner: str, name: str, sample: SampleRecord) -> SampleRecord:
        """Add a sample at the next free index. The index counter is the optimistic-lock guard,
        so two uploads racing for the same index cannot both land."""
        for _ in range(_MAX_OPTIMISTIC_RETRIES):
            current = self.require(partner, name)
            if current.is_locked:
                raise VoiceLocked()
            placed = sample.model_copy(update={"index": current.next_sample_index})
            try:
                self.update(
                    partner,
                    name,
                    {
                        "samples": [s.model_dump(mode="json") for s in [*current.samples, placed]],
                        "next_sample_index": current.next_sample_index + 1,
                    },
                    condition=f"{_EXISTS} AND {_NOT_LOCKED} AND next_sample_index = :expected",
                    condition_values={
                        **_IN_PROGRESS,
                        ":expected": serialize(current.next_sample_index),
                    },
                )
            except VoiceLocked:
                continue
            return placed
        raise VoiceLocked()

    def remove_sample(self, partner: str, name: str, index: int) -> VoiceRecord:
        for _ in range(_MAX_OPTIMISTIC_RETRIES):
            current = self.require(partner, name)
            if current.is_locked:
                raise VoiceLocked()
            if current.sample(index) is None:
                raise SampleNotFound()
            remaining = [s.model_dump(mode="json") for s in current.samples if s.index != index]
            fields: dict[str, Any] = {"samples": remaining}
            if current.preferred_sample_index == index:
                fields.update(preferred_sample_index=None, preferred_sample_manual=False)
            try:
                return self.update(
                    partner,
                    name,
                    fields,
                    condition=f"{_EXISTS} AND {_NOT_LOCKED} AND version = :seen",
                    condition_values={**_IN_PROGRESS, ":seen": serialize(current.version)},
                )
            except VoiceLocked:
                continue
        raise VoiceLocked()
