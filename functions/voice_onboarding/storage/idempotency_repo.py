"""Idempotency records of the API (`Idempotency-Key`): claim, complete with the response, release."""

import base64
from typing import Any

from voice_onboarding.storage import keys
from voice_onboarding.storage.dynamo import conditional_update, from_item, serialize, to_item

TTL_SECONDS = 24 * 3600
# An in-progress claim older than this belongs to a request that died (the API Lambda times out at
# 29 s): a retry may take it over instead of waiting 24 h for the TTL.
IN_PROGRESS_EXPIRY_SECONDS = 60


class IdempotencyStore:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    @staticmethod
    def _plain_key(scope: str, idempotency_key: str) -> dict[str, str]:
        return {"PK": keys.idempotency_pk(scope, idempotency_key), "SK": keys.IDEMPOTENCY_SK}

    def _key(self, scope: str, idempotency_key: str) -> dict[str, Any]:
        return to_item(self._plain_key(scope, idempotency_key))

    def claim(self, scope: str, idempotency_key: str, request_hash: str, now: float) -> dict[str, Any] | None:
        """Claim the key for this request. Returns None when claimed, else the existing record."""
        item = {
            **self._plain_key(scope, idempotency_key),
            "entity": "idempotency",
            "state": "in_progress",
            "request_hash": request_hash,
            "ttl": int(now) + TTL_SECONDS,
            "in_progress_expiry": int(now) + IN_PROGRESS_EXPIRY_SECONDS,
        }
        claimed = conditional_update(
            self.db.put_item,
            TableName=self.table,
            Item=to_item(item),
            # An expired record (TTL deletion lags), or the claim of a request that died, may be reclaimed.
            ConditionExpression=(
                "attribute_not_exists(PK) OR #ttl < :now OR (#state = :in_progress AND in_progress_expiry < :now)"
            ),
            ExpressionAttributeNames={"#ttl": "ttl", "#state": "state"},
            ExpressionAttributeValues={":now": serialize(int(now)), ":in_progress": serialize("in_progress")},
        )
        if claimed is None:
            existing = self.db.get_item(
                TableName=self.table, Key=self._key(scope, idempotency_key), ConsistentRead=True
            ).get("Item")
            return from_item(existing) if existing else {"state": "in_progress", "request_hash": request_hash}
        return None

    def complete(self, scope: str, idempotency_key: str, status: int, media_type: str | None, body: bytes) -> None:
        self.db.update_item(
            TableName=self.table,
            Key=self._key(scope, idempotency_key),
            UpdateExpression="SET #state = :done, status_code = :status, media_type = :media, body = :body",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":done": serialize("completed"),
                ":status": serialize(status),
                ":media": serialize(media_type or "application/json"),
                ":body": serialize(base64.b64encode(body).decode()),
            },
        )

    def release(self, scope: str, idempotency_key: str) -> None:
        self.db.delete_item(TableName=self.table, Key=self._key(scope, idempotency_key))
