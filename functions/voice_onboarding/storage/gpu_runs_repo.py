"""GPU run records: one item per (job id, stage), the idempotency key of a RunPod submission.

The submit step claims the item with a conditional put before calling RunPod's `/run`, then records the
run id. A retried submit step finds the item and replays the run id instead of starting a second paid run.
The item also holds what the webhook needs: the hash of the job's webhook secret and the current
Step Functions task token.
"""

import hashlib
import hmac
from typing import Any

from voice_onboarding.domain.gpu_runs import RunState
from voice_onboarding.domain.voice import utc_now_iso
from voice_onboarding.storage.dynamo import conditional_update, from_item, serialize, to_item, update_expression

# Records outlive any run (RunPod's ttl caps at 7 days); DynamoDB's TTL removes them afterwards.
RECORD_TTL_SECONDS = 30 * 24 * 3600


def run_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def run_sk(stage: str) -> str:
    return f"GPURUN#{stage}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(record: dict[str, Any], secret: str) -> bool:
    expected = str(record.get("secret_hash") or "")
    return bool(expected) and hmac.compare_digest(expected, hash_secret(secret))


class GpuRunRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def _key(self, job_id: str, stage: str) -> dict[str, Any]:
        return {"PK": serialize(run_pk(job_id)), "SK": serialize(run_sk(stage))}

    def get(self, job_id: str, stage: str) -> dict[str, Any] | None:
        item = self.db.get_item(TableName=self.table, Key=self._key(job_id, stage), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def claim(self, job_id: str, stage: str, now: float, fields: dict[str, Any]) -> bool:
        """Create the record in state `submitting`; False if it exists (an earlier attempt claimed it)."""
        item = {
            "PK": run_pk(job_id),
            "SK": run_sk(stage),
            "entity": "gpu_run",
            "job_id": job_id,
            "stage": stage,
            "state": RunState.SUBMITTING.value,
            "created_at": utc_now_iso(),
            "ttl": int(now) + RECORD_TTL_SECONDS,
            **fields,
        }
        written = conditional_update(
            self.db.put_item, TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)"
        )
        return written is not None

    def update(self, job_id: str, stage: str, fields: dict[str, Any], expect_state: RunState | None = None) -> bool:
        """Set fields (None removes); conditional on the record existing (and being in `expect_state`)."""
        expression, names, values = update_expression(fields)
        condition = "attribute_exists(PK)"
        if expect_state is not None:
            names["#state"] = "state"
            values[":expected"] = serialize(expect_state.value)
            condition += " AND #state = :expected"
        written = conditional_update(
            self.db.update_item,
            TableName=self.table,
            Key=self._key(job_id, stage),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return written is not None

    def release(self, job_id: str, stage: str) -> None:
        """Forget a claim whose /run provably never reached RunPod, so a retry may submit."""
        conditional_update(
            self.db.delete_item,
            TableName=self.table,
            Key=self._key(job_id, stage),
            ConditionExpression="#state = :submitting AND attribute_not_exists(run_id)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":submitting": serialize(RunState.SUBMITTING.value)},
        )
