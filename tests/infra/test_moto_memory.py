"""The local stack's moto does not keep what was deleted or overwritten (infra/moto_memory.py): without
the fix, every S3 object ever uploaded stayed in memory with its bytes, and every item version written."""

import gc
from collections.abc import Iterator

import pytest
from infra.moto_memory import stop_moto_instance_tracking
from moto.core.common_models import BaseModel

from tests.conftest import PARTNER


def alive(type_name: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == type_name)


@pytest.fixture
def untracked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(BaseModel, "__new__", BaseModel.__new__)  # restored after the test
    stop_moto_instance_tracking()
    yield


def test_deleted_s3_objects_and_replaced_items_are_freed_and_stored_data_stays(services, untracked):
    keys_before, items_before = alive("FakeKey"), alive("Item")
    for i in range(30):
        services.blobs.put_bytes(f"{PARTNER}/scratch/{i}.opus", b"x" * 10_000)
    services.blobs.put_bytes(f"{PARTNER}/kept.opus", b"kept")
    services.blobs.delete(*[f"{PARTNER}/scratch/{i}.opus" for i in range(30)])
    item = {"PK": {"S": "VOICE#p"}, "SK": {"S": "v"}}
    for version in range(30):  # the same item, rewritten: only the last version is data
        services.dynamodb.put_item(TableName=services.settings.table_name, Item={**item, "n": {"N": str(version)}})

    assert alive("FakeKey") - keys_before == 1  # the object still stored
    assert alive("Item") - items_before <= 2  # the item (and at most one in-flight copy)
    assert services.blobs.get_bytes(f"{PARTNER}/kept.opus") == b"kept"
    stored = services.dynamodb.get_item(TableName=services.settings.table_name, Key=item)["Item"]
    assert stored["n"] == {"N": "29"}
