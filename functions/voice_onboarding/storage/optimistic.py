"""Optimistic concurrency for read-modify-write updates.

A write conditioned on the `version` (or index counter) it read fails when another request changed the
item first. That is contention, not a lock: re-read and try again, with full-jitter exponential backoff
(so a burst of writers spreads out instead of colliding in lockstep), for a bounded time. Only when
the budget runs out does the caller get 503 + Retry-After (`ConcurrentUpdate`); a real lock (a job
running) or a missing item is reported by the attempt itself, never retried.
"""

import random
import time
from collections.abc import Callable
from typing import TypeVar

from voice_onboarding.domain.errors import ConcurrentUpdate

T = TypeVar("T")

# Seconds a request keeps retrying a lost race; far below API Gateway's 29 s integration timeout.
BUDGET_SECONDS = 5.0
_FIRST_DELAY = 0.01
_MAX_DELAY = 0.4
# DynamoDB's own "someone else is writing this item" answers (transactions), same meaning as a lost race.
CONFLICT_CODES = frozenset({"TransactionConflictException", "TransactionConflict"})


class VersionConflict(Exception):
    """The item changed between our read and our conditional write: re-read and try again."""


def retry_on_conflict(attempt: Callable[[], T], budget_seconds: float | None = None) -> T:
    """Run `attempt` until it stops raising VersionConflict, at most `budget_seconds`."""
    budget = BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    ceiling = _FIRST_DELAY
    while True:
        try:
            return attempt()
        except VersionConflict as conflict:
            pause = random.uniform(0, ceiling)
            if time.monotonic() + pause > deadline:
                raise ConcurrentUpdate() from conflict
            time.sleep(pause)
            ceiling = min(_MAX_DELAY, ceiling * 2)
