"""Fixed-window rate-limit counters on DynamoDB: one atomic `ADD count :1` per request (shared by
every concurrent Lambda, no read-modify-write), one item per subject + route + window, expired by
the table's TTL on `ttl`."""

from typing import Any

from voice_onboarding.storage.dynamo import serialize
from voice_onboarding.storage.keys import rate_limit_pk, rate_limit_sk

# Keep a finished window a little longer than its end: TTL deletion is lazy anyway, and a clock skew
# between Lambdas must not recreate (and so reset) a window that is still current for one of them.
_TTL_GRACE_SECONDS = 300


class RateLimitRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def hit(self, subject: str, route: str, window_start: int, window_seconds: int) -> int:
        """Count one request in the window; returns the count including this request."""
        response = self.db.update_item(
            TableName=self.table,
            Key={"PK": serialize(rate_limit_pk(subject, route)), "SK": serialize(rate_limit_sk(window_start))},
            UpdateExpression="ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), entity = :entity",
            ExpressionAttributeNames={"#count": "count", "#ttl": "ttl"},
            ExpressionAttributeValues={
                ":one": serialize(1),
                ":ttl": serialize(window_start + window_seconds + _TTL_GRACE_SECONDS),
                ":entity": serialize("rate_limit"),
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["count"]["N"])
