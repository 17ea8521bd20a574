"""The in-process GPU endpoint (infra/local/gpu.py) forgets a finished run after RunPod's result
retention, as /status does deployed: a long-running local stack does not keep every run's input and
output for its whole life."""

import time
from typing import Any

import pytest
from infra.local.gpu import InProcessGpuClient

from voice_onboarding.adapters.runpod import GpuRequestRejected, RunStatus


def echo(job: dict[str, Any]) -> dict[str, Any]:
    return {"echo": job["input"]}


def finished(client: InProcessGpuClient, run_id: str) -> RunStatus:
    deadline = time.monotonic() + 30
    while (status := client.status(run_id)).status in ("IN_QUEUE", "IN_PROGRESS"):
        assert time.monotonic() < deadline, "the run never ended"
        time.sleep(0.01)
    return status


def test_a_finished_run_answers_status_within_the_retention():
    client = InProcessGpuClient(echo)
    first = client.run({"n": 1})
    assert finished(client, first.id).output == {"echo": {"n": 1}}
    second = client.run({"n": 2})  # a new run prunes only runs older than the retention
    assert finished(client, second.id).output == {"echo": {"n": 2}}
    assert client.status(first.id) == RunStatus(id=first.id, status="COMPLETED", output={"echo": {"n": 1}})


@pytest.mark.parametrize("end", ["completed", "cancelled"])
def test_a_run_ended_longer_ago_than_the_retention_is_forgotten(end):
    client = InProcessGpuClient(echo, retention_seconds=0.001)
    old = client.run({"n": 1})
    if end == "cancelled":
        client.cancel(old.id)
    finished(client, old.id)
    time.sleep(0.01)
    new = client.run({"n": 2})
    with pytest.raises(GpuRequestRejected, match="unknown local GPU run"):
        client.status(old.id)
    assert finished(client, new.id).status == "COMPLETED"
