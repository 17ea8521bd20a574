"""DynamoDB makes each conditional write atomic; moto checks the condition and writes in two steps,
so two threads can both pass a condition. Serializing moto's write methods restores the real
semantics for the threaded local server and for concurrency tests."""

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()
_patched = False


def make_moto_dynamodb_atomic() -> None:
    global _patched
    if _patched:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITE_METHODS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def serialized(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, serialized)
    _patched = True


@contextmanager
def dynamodb_writes_paused() -> Iterator[None]:
    """Hold every moto DynamoDB write of this process (after make_moto_dynamodb_atomic) for the block:
    a consistent read of the whole table, e.g. a local snapshot."""
    with _lock:
        yield
