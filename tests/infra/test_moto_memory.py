"""The local stack's moto does not keep what was deleted, overwritten or finished (infra/moto_memory.py):
without the fixes, every S3 object ever uploaded stayed in memory with its bytes, every item version
written, and every Step Functions worker thread."""

import gc
import json
from collections.abc import Iterator

import boto3
import pytest
from infra.local.pipeline import wait_for_execution
from infra.moto_memory import forget_finished_step_functions_threads, stop_moto_instance_tracking
from moto.core.common_models import BaseModel
from moto.stepfunctions.parser import utils as sfn_utils

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


def test_finished_step_functions_threads_are_forgotten(aws):
    # Left in place after the test: the replacement list only forgets threads that have ended.
    forget_finished_step_functions_threads()
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(
        name="threads", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    for i in range(12):
        execution = sfn.start_execution(stateMachineArn=machine, name=f"e{i}")["executionArn"]
        assert wait_for_execution(sfn, execution, timeout=30)["status"] == "SUCCEEDED"
    # 12 executions ran a worker thread each; only the ones still ending may be listed.
    assert len(sfn_utils.TMP_THREADS) < 6
