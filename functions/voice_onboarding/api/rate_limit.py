"""Per-API-key, per-route rate limits as a FastAPI dependency: `Depends(rate_limit("create", 5))`."""

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from voice_onboarding.api.security import ApiKeyDep, ServicesDep
from voice_onboarding.domain.errors import RateLimited
from voice_onboarding.storage.rate_limits_repo import RateLimitRepository

WINDOW_SECONDS = 60


def rate_limit(route: str, per_minute: int) -> Any:
    def check(request: Request, services: ServicesDep, api_key: ApiKeyDep) -> None:
        now = services.clock()
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        repo = RateLimitRepository(services.dynamodb, services.settings.table_name)
        count = repo.hit(api_key.key_id, route, window_start, WINDOW_SECONDS)
        if count > per_minute:
            retry_after = max(1, int(window_start + WINDOW_SECONDS - now + 0.999))
            raise RateLimited(headers={"Retry-After": str(retry_after)})

    check.__name__ = f"rate_limit_{route}"
    dependency: Callable[..., None] = check
    return Depends(dependency)
