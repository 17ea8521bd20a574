"""The sweeper fails jobs stuck in_progress past their deadline, and only those (injectable clock)."""

import calendar
import time

from tests.conftest import PARTNER
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services import cleanup
from voice_onboarding.services.sweeper import last_activity, stale_after, sweep

HOUR = 3600.0


def _now() -> float:
    return float(calendar.timegm(time.gmtime()))


def at(services, offset: float) -> None:
    services.clock = lambda: _now() + offset


def test_stale_job_is_failed_and_fresh_one_untouched(client, services):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "stuck"})
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "fresh"})
    services.voices.start_job(PARTNER, "stuck", "embedding")
    services.voices.start_job(PARTNER, "fresh", "splitting")
    at(services, HOUR)
    assert sweep(services, stale_after_seconds=4 * HOUR) == []
    at(services, 5 * HOUR)
    failed = sweep(services, stale_after_seconds=4 * HOUR)
    assert len(failed) == 2
    stuck = client.get(f"/api/voices/{PARTNER}/stuck").json()
    assert stuck["status"]["embedding"] == "failed"
    assert stuck["status_reasons"]["embedding"].lower().startswith("timed out")
    # Once failed, the voice is unlocked again.
    assert client.delete(f"/api/voices/{PARTNER}/stuck").status_code == 200


def test_threshold_comes_from_settings(client, services):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "v"})
    services.voices.start_job(PARTNER, "v", "splitting")
    services.settings.sweeper_stale_after_seconds = 600
    at(services, 500)
    assert sweep(services) == []
    at(services, 700)
    assert len(sweep(services)) == 1


def test_progress_update_keeps_a_job_alive(client, services):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "v"})
    services.voices.start_job(PARTNER, "v", "splitting")
    at(services, 2 * HOUR)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_now() + 1.5 * HOUR))
    services.voices.update(PARTNER, "v", {"progress": {"job": "splitting", "step": "decoding", "updated_at": later}})
    assert sweep(services, stale_after_seconds=HOUR) == []
    at(services, 3 * HOUR)
    assert len(sweep(services, stale_after_seconds=HOUR)) == 1


def test_gpu_jobs_are_not_failed_before_their_own_deadline():
    assert stale_after("splitting", 600) == 600
    assert stale_after("embedding", 600) > 45 * 60
    assert stale_after("training", 600) > 3 * HOUR  # LoRA training reports no progress for hours
    assert stale_after("training", 10 * HOUR) == 10 * HOUR


def test_odd_timestamps_never_stop_the_sweep():
    assert last_activity({"updated_at": "2026-01-01T00:00:00Z"}) == calendar.timegm((2026, 1, 1, 0, 0, 0))
    assert last_activity({"updated_at": "2026-01-01T01:00:00+01:00"}) == calendar.timegm((2026, 1, 1, 0, 0, 0))
    assert last_activity({"updated_at": "garbage", "progress": {"updated_at": "2026-01-01T00:00:00.5Z"}}) > 0
    assert last_activity({"updated_at": None, "progress": "not a dict"}) == 0.0


def test_completed_and_idle_voices_are_ignored(client, services):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "idle"})
    services.voices.start_job(PARTNER, "idle", "splitting")
    services.voices.finish_job(PARTNER, "idle", "splitting", JobStatus.COMPLETED)
    at(services, 10 * HOUR)
    assert sweep(services, stale_after_seconds=60) == []


def test_a_job_that_moved_since_the_scan_is_left_alone(client, services, monkeypatch):
    """The fail is conditional on the version read: progress written in between wins."""
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "v"})
    services.voices.start_job(PARTNER, "v", "splitting")
    at(services, 5 * HOUR)
    original = services.dynamodb.update_item

    def progress_first(**kwargs):
        services.dynamodb.update_item = original
        services.voices.update(PARTNER, "v", {"progress": {"job": "splitting", "step": "x"}})
        return original(**kwargs)

    monkeypatch.setattr(services.dynamodb, "update_item", progress_first)
    assert sweep(services, stale_after_seconds=HOUR) == []
    assert services.voices.require(PARTNER, "v").splitting_status == JobStatus.IN_PROGRESS


def test_sweeper_handler_runs_both_sweeps(client, services, wav_tone, monkeypatch):
    from voice_onboarding.handlers import sweeper as handler_module
    from voice_onboarding.handlers.composition import override

    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "v"})
    services.voices.start_job(PARTNER, "v", "splitting")
    services.blobs.put_bytes(f"{PARTNER}/gone/original.opus", b"x")
    cleanup.mark(services, f"{PARTNER}/gone/", PARTNER, "gone")
    at(services, 5 * HOUR)

    class Context:
        function_name = "sweeper"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sweeper"
        aws_request_id = "req-1"

    with override(services=services):  # the composition root's one hook
        result = handler_module.handler({}, Context())
    assert len(result["failed"]) == 1
    assert result["cleaned"] == [f"{PARTNER}/gone/"]
    assert list(services.blobs.list_keys(f"{PARTNER}/gone/")) == []
