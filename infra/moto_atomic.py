"""DynamoDB makes each conditional write atomic; moto checks the condition and writes in two steps,
so two threads can both pass a condition. Serializing moto's write methods restores the real
semantics for the threaded local server and for concurrency tests. Reads take the same lock: moto's
query/scan iterate the table's dicts, which a concurrent write may resize mid-iteration."""

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_READ_METHODS = ("get_item", "query", "scan", "batch_get_item", "transact_get_items")
_lock = threading.RLock()
# Set while dynamodb_writes_paused() holds the lock: no write can run, so reads (which may come from the
# pausing thread's own HTTP scan, served by another thread) skip the lock instead of deadlocking on it.
_writes_paused = threading.Event()
_patched = False


def make_moto_dynamodb_atomic() -> None:
    global _patched
    if _patched:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITE_METHODS + _READ_METHODS:
        original = getattr(DynamoDBBackend, name)
        is_read = name in _READ_METHODS

        @functools.wraps(original)
        def serialized(self: Any, *args: Any, __original: Any = original, __read: bool = is_read, **kwargs: Any) -> Any:
            if __read and _writes_paused.is_set():
                return __original(self, *args, **kwargs)
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, serialized)
    _patched = True


@contextmanager
def dynamodb_writes_paused() -> Iterator[None]:
    """Hold every moto DynamoDB write of this process (after make_moto_dynamodb_atomic) for the block:
    a consistent read of the whole table, e.g. a local snapshot."""
    with _lock:
        _writes_paused.set()
        try:
            yield
        finally:
            _writes_paused.clear()
