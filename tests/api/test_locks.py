"""The processing lock: conditional writes make rename/delete refuse while a job runs, and two
concurrent requests can never both win."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import PARTNER
from voice_onboarding.domain.errors import VoiceAlreadyExists, VoiceLocked
from voice_onboarding.domain.voice import JobStatus

BASE = f"/api/voices/{PARTNER}"
LOCKED = {"detail": "Voice is currently being processed"}


@pytest.mark.parametrize("job", ["splitting", "embedding"])
def test_rename_and_delete_refused_while_in_progress(client, services, job):
    client.post(f"{BASE}/empty", data={"name": "v"})
    services.voices.start_job(PARTNER, "v", job)
    rename = client.put(f"{BASE}/v/name", data={"name": "w"})
    assert (rename.status_code, rename.json()) == (409, LOCKED)
    delete = client.delete(f"{BASE}/v")
    assert (delete.status_code, delete.json()) == (409, LOCKED)
    services.voices.finish_job(PARTNER, "v", job, JobStatus.COMPLETED)
    assert client.put(f"{BASE}/v/name", data={"name": "w"}).status_code == 200
    assert client.delete(f"{BASE}/w").status_code == 200


def test_only_one_of_many_concurrent_job_starts_wins(services, client):
    client.post(f"{BASE}/empty", data={"name": "v"})

    def attempt(job: str) -> str:
        try:
            services.voices.start_job(PARTNER, "v", job)
            return "won"
        except VoiceLocked:
            return "locked"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, ["splitting", "embedding"] * 8))
    assert outcomes.count("won") == 1


def test_concurrent_renames_to_same_name_one_wins(services, client):
    for name in ("a", "b"):
        client.post(f"{BASE}/empty", data={"name": name})

    def attempt(source: str) -> str:
        try:
            services.voices.rename(PARTNER, source, "target")
            return "won"
        except (VoiceAlreadyExists, VoiceLocked):
            return "lost"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(attempt, ["a", "b"]))
    assert outcomes.count("won") == 1
    names = sorted(v.name for v in services.voices.list(PARTNER))
    assert len(names) == 2 and "target" in names


def test_concurrent_sample_appends_get_distinct_indices(services, client):
    from voice_onboarding.domain.voice import SampleRecord

    client.post(f"{BASE}/empty", data={"name": "v"})

    def append(_: int) -> int:
        return services.voices.append_sample(PARTNER, "v", SampleRecord(index=0, duration=1.0)).index

    with ThreadPoolExecutor(max_workers=4) as pool:
        indices = list(pool.map(append, range(4)))
    assert sorted(indices) == [1, 2, 3, 4]
    assert sorted(s.index for s in services.voices.require(PARTNER, "v").samples) == [1, 2, 3, 4]


def test_delete_racing_a_job_start_never_both_win(services, client):
    client.post(f"{BASE}/empty", data={"name": "v"})
    results: dict[str, str] = {}

    def delete() -> None:
        try:
            services.voices.delete(PARTNER, "v")
            results["delete"] = "won"
        except Exception as error:  # noqa: BLE001
            results["delete"] = type(error).__name__

    def start() -> None:
        try:
            services.voices.start_job(PARTNER, "v", "splitting")
            results["start"] = "won"
        except Exception as error:  # noqa: BLE001
            results["start"] = type(error).__name__

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(delete), pool.submit(start)]:
            future.result()
    assert list(results.values()).count("won") == 1
