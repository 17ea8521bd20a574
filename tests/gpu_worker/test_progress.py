"""progress_update is only called under RunPod; in-process and local jobs only log."""

import logging

import pytest
import runpod
from gpu_worker.progress import Progress


def test_outside_runpod_only_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("RUNPOD_WEBHOOK_POST_OUTPUT", raising=False)
    calls: list[tuple] = []
    monkeypatch.setattr(runpod.serverless, "progress_update", lambda *a: calls.append(a))
    with caplog.at_level(logging.INFO, logger="gpu_worker"):
        Progress({"input": {}})("embedding sample 1/2")  # no "id": runpod's own call would KeyError
    assert calls == [] and "job local: embedding sample 1/2" in caplog.text


def test_under_runpod_sends_update_and_survives_its_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_WEBHOOK_POST_OUTPUT", "https://api.runpod.ai/v2/x/job-done/$ID")
    calls: list[tuple] = []
    monkeypatch.setattr(runpod.serverless, "progress_update", lambda *a: calls.append(a))
    job = {"id": "j-1", "input": {}}
    Progress(job)("scoring")
    assert calls == [(job, "scoring")]

    def boom(*args: object) -> None:
        raise ConnectionError("runpod unreachable")

    monkeypatch.setattr(runpod.serverless, "progress_update", boom)
    Progress(job)("uploading")  # a lost progress update never fails the job
