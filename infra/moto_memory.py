"""What moto keeps that a long-running local stack must not (checked with moto 5.2.5, pinned in
pyproject.toml; tests/infra/test_moto_memory.py fails if an upgrade changes it):

- Every model object it ever built, for its dashboard: `BaseModel.__new__` appends each instance to its
  class' `instances_tracked` list and nothing removes it, so the process held every DynamoDB item
  version written and every S3 object ever uploaded, deleted and overwritten ones included, with its
  bytes (`FakeKey` keeps them in a SpooledTemporaryFile). Tracking is turned off: stored data stays
  reachable from moto's backends as before; what was deleted or replaced is freed. The cost is moto's
  dashboard (`/moto-api/`), which lists models from those lists and is not used here.
- Every Step Functions worker thread (one or more per state of every execution): appended to
  `moto.stepfunctions.parser.utils.TMP_THREADS`, which nothing reads or empties. The list is replaced
  by one that forgets finished threads.
"""

import sys
import threading
from typing import Any


def stop_moto_instance_tracking() -> None:
    """Idempotent; also drops what was tracked so far."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data

    if getattr(BaseModel.__new__, "_untracked", False):
        return

    def untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)

    untracked_new._untracked = True  # type: ignore[attr-defined]
    BaseModel.__new__ = staticmethod(untracked_new)  # type: ignore[assignment,method-assign]
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked.clear()  # type: ignore[attr-defined]


class _LiveThreads(list[threading.Thread]):
    """Forgets finished threads whenever one is added (moto only ever appends)."""

    def append(self, thread: threading.Thread) -> None:
        self[:] = [t for t in self if t.is_alive()]
        super().append(thread)


def forget_finished_step_functions_threads() -> None:
    """Idempotent. Modules that imported the list by name get the replacement too."""
    from moto.stepfunctions.parser import utils

    original = utils.TMP_THREADS
    if isinstance(original, _LiveThreads):
        return
    live = _LiveThreads(t for t in original if t.is_alive())
    utils.TMP_THREADS = live  # type: ignore[assignment]
    for module in list(sys.modules.values()):
        if getattr(module, "TMP_THREADS", None) is original:
            module.TMP_THREADS = live  # type: ignore[attr-defined]
