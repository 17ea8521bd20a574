"""API keys, stored only as SHA-256 hashes and mapped to the partners they may access.

Keys are 256-bit random tokens, so a fast hash is enough: there is nothing to brute-force."""

import hashlib
import secrets
from typing import Any

from pydantic import BaseModel

from voice_onboarding.domain.partner import ALL_PARTNERS, validate_grant
from voice_onboarding.domain.voice import utc_now_iso
from voice_onboarding.storage.dynamo import conditional_update, from_item, serialize, to_item

KEY_PREFIX = "vk_"


class ApiKeyRecord(BaseModel):
    key_id: str  # first 8 hex chars of the hash: safe to log and show, identifies the key
    name: str
    partners: list[str]
    created_at: str
    revoked: bool = False

    def may_access(self, partner: str) -> bool:
        return not self.revoked and (ALL_PARTNERS in self.partners or partner in self.partners)

    @property
    def owner(self) -> str:
        """The tenant that owns resources not scoped by a partner in the path (speakers)."""
        return next((p for p in self.partners if p != ALL_PARTNERS), "default")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


class ApiKeyRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def create(self, name: str, partners: list[str]) -> tuple[str, ApiKeyRecord]:
        """Returns the plaintext key (shown once) and its record."""
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        return api_key, self.register(api_key, name, partners)

    def register(self, api_key: str, name: str, partners: list[str]) -> ApiKeyRecord:
        """Store a caller-chosen key (the local stack's fixed dev key uses this). Grants are partner
        names or the wildcard; ValueError names the rule otherwise."""
        partners = [validate_grant(p) for p in partners]
        if not partners:
            raise ValueError("A key needs at least one partner grant")
        key_hash = hash_key(api_key)
        record = ApiKeyRecord(key_id=key_hash[:8], name=name, partners=partners, created_at=utc_now_iso())
        item = to_item({"PK": _pk(key_hash), "SK": "APIKEY", "entity": "api_key", **record.model_dump()})
        self.db.put_item(TableName=self.table, Item=item)
        return record

    def lookup(self, api_key: str) -> ApiKeyRecord | None:
        key_hash = hash_key(api_key)
        response = self.db.get_item(
            TableName=self.table, Key={"PK": serialize(_pk(key_hash)), "SK": serialize("APIKEY")}
        )
        item = response.get("Item")
        if not item:
            return None
        record = ApiKeyRecord.model_validate(from_item(item))
        return None if record.revoked else record

    def revoke_by_id(self, key_id: str) -> bool:
        """Revoke by the short key id shown at creation (scan: an operator action, not a hot path)."""
        paginator = self.db.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="entity = :e AND key_id = :k",
            ExpressionAttributeValues={":e": serialize("api_key"), ":k": serialize(key_id)},
        ):
            for item in page.get("Items", []):
                written = conditional_update(
                    self.db.update_item,
                    TableName=self.table,
                    Key={"PK": item["PK"], "SK": item["SK"]},
                    UpdateExpression="SET revoked = :t",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues={":t": serialize(True)},
                )
                return written is not None
        return False

    def list(self) -> list[ApiKeyRecord]:
        paginator = self.db.get_paginator("scan")
        records = []
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="entity = :e",
            ExpressionAttributeValues={":e": serialize("api_key")},
        ):
            records.extend(ApiKeyRecord.model_validate(from_item(i)) for i in page.get("Items", []))
        return sorted(records, key=lambda r: r.created_at)
