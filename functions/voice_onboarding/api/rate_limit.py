"""Per-API-key, per-route rate limits as a reusable FastAPI dependency:

    @router.post(..., dependencies=[rate_limit("speaker_create", 5)])

Fixed one-minute windows counted in DynamoDB (storage/rate_limits_repo.py), so every Lambda instance
shares one budget. The dependency needs the API key, so unauthenticated requests (401) are never
counted. The clock is `services.clock`, injectable so tests can cross a window boundary.
"""

import math
from typing import Any

from fastapi import Depends

from voice_onboarding.api.security import ApiKeyDep, ServicesDep
from voice_onboarding.domain.errors import RateLimited

WINDOW_SECONDS = 60


def retry_after_seconds(now: float, window_start: int, window_seconds: int = WINDOW_SECONDS) -> int:
    """Whole seconds until the window ends (at least 1, so a client never retries immediately)."""
    return max(1, math.ceil(window_start + window_seconds - now))


def rate_limit(route: str, per_minute: int) -> Any:
    """A `Depends(...)` allowing `per_minute` calls per API key to `route` in each minute window."""

    def check(services: ServicesDep, api_key: ApiKeyDep) -> None:
        now = services.clock()
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        repo = services.rate_limits
        if repo.hit(api_key.key_id, route, window_start, WINDOW_SECONDS) > per_minute:
            raise RateLimited(headers={"Retry-After": str(retry_after_seconds(now, window_start))})

    check.__name__ = f"rate_limit_{route}"
    return Depends(check)
