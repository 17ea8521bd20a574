"""moto keeps every model object it ever built, for its dashboard: `BaseModel.__new__` appends each
instance to its class' `instances_tracked` list and nothing removes it. A long-running local stack
thus holds every DynamoDB item version written and every S3 object ever uploaded, deleted and
overwritten ones included, with its bytes (moto's `FakeKey` keeps them in a SpooledTemporaryFile).
The local stack turns that tracking off: stored data stays reachable from moto's backends as before;
what was deleted or replaced is freed. The cost is moto's dashboard (`/moto-api/`), which lists models
from those lists and is not used here. Checked with moto 5.2.5 (pinned in pyproject.toml)."""

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
