"""Fixed-window rate-limit counters on DynamoDB: one atomic ADD per request, shared by every
concurrent Lambda; old windows expire through the table's TTL."""

from typing import Any

from voice_onboarding.storage.dynamo import serialize

# Keep expired windows a little past their end so a clock skew between Lambdas cannot reset a count.
_TTL_GRACE_SECONDS = 300


class RateLimitRepository:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self.db = dynamodb_client
        self.table = table_name

    def hit(self, subject: str, route: str, window_start: int, window_seconds: int) -> int:
        """Count one request in the window; returns the count including this request."""
        response = self.db.update_item(
            TableName=self.table,
            Key={"PK": serialize(f"RATE#{subject}#{route}"), "SK": serialize(f"WINDOW#{window_start}")},
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
