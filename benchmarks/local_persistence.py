"""Write overhead of the local stack's crash-safe persistence (infra/local/persistence.py).

    python benchmarks/local_persistence.py [--requests 300] [--concurrency 4]

Starts `python -m infra.local_stack` twice (persisting to a temp dir, then --no-persist), sends the same
writes (create an empty voice, upload a 2 s sample, rename) and prints per-request latency and the
server's CPU seconds per request with and without persistence: the difference is the overhead. Also
prints what a kill -9 would lose at most (the flush interval) and the data directory's size.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.local.ports import free_port  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start(data_dir: Path, persist: bool) -> tuple[subprocess.Popen[str], str]:
    port, moto_port = free_port(), free_port()
    args = ["--port", str(port), "--moto-port", str(moto_port), "--data-dir", str(data_dir)]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}:{REPO}", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    child = subprocess.Popen(
        [sys.executable, "-m", "infra.local_stack", *args, *([] if persist else ["--no-persist"])],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return child, base
        except httpx.TransportError:
            if child.poll() is not None:
                raise RuntimeError("local stack exited") from None
            time.sleep(0.2)


async def drive(base: str, requests: int, concurrency: int, sample: bytes) -> list[float]:
    latencies: list[float] = []
    headers = {"X-Api-Key": "vk_local_dev_key"}
    async with httpx.AsyncClient(base_url=f"{base}/api/voices/bench", headers=headers, timeout=60) as client:

        async def one(i: int) -> None:
            calls = [
                lambda: client.post("/empty", data={"name": f"v{i}"}),
                lambda: client.post(f"/v{i}/samples", files={"file": ("s.wav", sample, "audio/wav")}),
                lambda: client.put(f"/v{i}/name", data={"name": f"w{i}"}),
            ]
            for call in calls:
                started = time.perf_counter()
                response = await call()
                latencies.append(time.perf_counter() - started)
                assert response.status_code < 400, response.text

        queue = list(range(requests // 3))

        async def worker() -> None:
            while queue:
                await one(queue.pop())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def measure(persist: bool, requests: int, concurrency: int, sample: bytes) -> tuple[list[float], float, int]:
    with tempfile.TemporaryDirectory() as data:
        child, base = start(Path(data), persist)
        try:
            cpu_before = _cpu_seconds(child.pid)
            latencies = asyncio.run(drive(base, requests, concurrency, sample))
            time.sleep(1.5)  # the last flush lands
            cpu = _cpu_seconds(child.pid) - cpu_before
            size = sum(p.stat().st_size for p in Path(data).rglob("*") if p.is_file())
        finally:
            child.kill()
            child.wait()
    return latencies, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    from tests import audio_factory

    with tempfile.TemporaryDirectory() as workdir:
        sample = audio_factory.tone(Path(workdir) / "s.wav", 2.0).read_bytes()
    results = {}
    for persist in (True, False):
        results[persist] = measure(persist, args.requests, args.concurrency, sample)
    load = os.getloadavg()[0]
    print(f"{args.requests} writes (create, upload 2 s sample, rename), {args.concurrency} clients; load {load:.1f}")
    for persist, (latencies, cpu, size) in results.items():
        label = "persisted   " if persist else "--no-persist"
        p50, mean = statistics.median(latencies) * 1000, statistics.mean(latencies) * 1000
        print(
            f"  {label}  p50 {p50:6.1f} ms   mean {mean:6.1f} ms"
            f"   server CPU {cpu / len(latencies) * 1000:5.1f} ms/request"
            + (f"   data dir {size / 1e6:.1f} MB" if persist else "")
        )
    (on, cpu_on, _), (off, cpu_off, _) = results[True], results[False]
    print(
        f"  overhead: {(statistics.mean(on) - statistics.mean(off)) * 1000:+.1f} ms mean latency,"
        f" {(cpu_on / len(on) - cpu_off / len(off)) * 1000:+.1f} ms server CPU per write request"
    )


if __name__ == "__main__":
    main()
