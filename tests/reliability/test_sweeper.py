"""The sweeper fails jobs stuck in_progress past their deadline, and only those."""

import calendar
import time

from tests.conftest import PARTNER
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services.sweeper import sweep


def _now() -> float:
    return float(calendar.timegm(time.gmtime()))


def test_stale_job_is_failed_and_fresh_one_untouched(client, services):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "stuck"})
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "fresh"})
    services.voices.start_job(PARTNER, "stuck", "embedding")
    services.voices.start_job(PARTNER, "fresh", "splitting")
    services.clock = lambda: _now() + 3600  # an hour later
    assert sweep(services, stale_after_seconds=4 * 3600) == []
    services.clock = lambda: _now() + 5 * 3600
    failed = sweep(services, stale_after_seconds=4 * 3600)
    assert len(failed) == 2
    stuck = client.get(f"/api/voices/{PARTNER}/stuck").json()
    assert stuck["status"]["embedding"] == "failed"
    assert stuck["status_reasons"]["embedding"].startswith("Timed out")
    # Once failed, the voice is unlocked again.
    assert client.delete(f"/api/voices/{PARTNER}/stuck").status_code == 200


def test_completed_and_idle_voices_are_ignored(client, services):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "idle"})
    services.voices.start_job(PARTNER, "idle", "splitting")
    services.voices.finish_job(PARTNER, "idle", "splitting", JobStatus.COMPLETED)
    services.clock = lambda: _now() + 10 * 3600
    assert sweep(services, stale_after_seconds=60) == []


def test_sweeper_handler_runs(services, monkeypatch):
    from voice_onboarding.handlers import sweeper as handler_module

    monkeypatch.setattr(handler_module, "_services", services)

    class Context:
        function_name = "sweeper"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sweeper"
        aws_request_id = "req-1"

    assert handler_module.handler({}, Context()) == {"failed": []}
