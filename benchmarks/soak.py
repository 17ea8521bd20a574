"""Soak: the local stack (`make run`: API + moto + the Step Functions pipeline) under mixed traffic for N
minutes, then every voice deleted and what is left behind counted.

    python benchmarks/soak.py --minutes 10 --port 8177 --moto-port 5177

Traffic (several concurrent clients): creates (empty and with a speech recording, which runs split +
embed), sample uploads and deletes, re-splits, embeds, renames (non-ASCII names included), reads
(details, list, sample, bundle) and voice deletes, on a bounded pool of voices. Reports requests/s,
p50/p99 per route, responses by status, and the S3 objects and table items left after all voices are
deleted (goal: none besides API keys and expiring rate-limit windows).

Memory: the stack runs under benchmarks/memtrace_stack.py, which dumps at start, after the warm-up
(models loaded, caches filled), at the end of traffic and after the cleanup: RSS, what moto and the
harness retain (Step Functions executions and their size, S3 keys, table items, in-process GPU runs) and
the objects per type that grew from warm to end. "Flat" means RSS warm -> end grows no more than the
data retained on purpose (executions keep their history, as Step Functions does for 90 days).
--trace-memory adds tracemalloc (slower): Python allocations that grew, by allocation site.
"""

import argparse
import collections
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "functions"))

from infra.local.ports import port_free  # noqa: E402
from tests import audio_factory  # noqa: E402

PARTNER = "soak"
DEV_KEY = "vk_local_dev_key"
NAMES = ["soak-{n}", "голос-{n}-😀", "שלום {n}", "v.{n}. x", "名前-{n}"]
MAX_VOICES = 8


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"local stack exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("local stack did not become healthy")


class Soak:
    def __init__(self, base: str, audio: dict[str, bytes], pipeline: bool = True) -> None:
        self.base = base
        self.pipeline = pipeline  # False: no creates with audio, splits or embeds (API and storage only)
        self.audio = audio
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: collections.Counter[tuple[str, int]] = collections.Counter()
        self.voices: set[str] = set()
        self.counter = 0
        self.last_recording = 0.0

    def request(self, client: httpx.Client, route: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.request(method, self.base + path, **kwargs)
        except httpx.HTTPError as error:
            with self.lock:
                self.statuses[(route, type(error).__name__)] += 1  # type: ignore[index]
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[route].append(elapsed)
            self.statuses[(route, response.status_code)] += 1
        return response

    def voice_url(self, name: str) -> str:
        return f"/api/voices/{PARTNER}/{quote(name, safe='')}"

    def pick(self) -> str | None:
        with self.lock:
            return random.choice(sorted(self.voices)) if self.voices else None

    def new_name(self) -> str:
        with self.lock:
            self.counter += 1
            return random.choice(NAMES).format(n=self.counter)

    def step(self, client: httpx.Client) -> None:
        voice = self.pick()
        roll = random.random()
        if voice is None or (roll < 0.12 and len(self.voices) < MAX_VOICES):
            name = self.new_name()
            with self.lock:
                # A recording runs split + embed: at most one every 20 s, the CPU is shared.
                with_audio = self.pipeline and time.monotonic() - self.last_recording > 20
                if with_audio:
                    self.last_recording = time.monotonic()
            if with_audio:
                files = {"file": ("recording.wav", self.audio["recording"], "audio/wav")}
                response = self.request(client, "POST create+audio", "POST", f"/api/voices/{PARTNER}",
                                        data={"name": name}, files=files)  # fmt: skip
            else:
                response = self.request(client, "POST create empty", "POST", f"/api/voices/{PARTNER}/empty",
                                        data={"name": name})  # fmt: skip
            if response is not None and response.status_code == 201:
                with self.lock:
                    self.voices.add(name)
            return
        url = self.voice_url(voice)
        if roll < 0.35:
            files = {"file": ("sample.wav", self.audio["sample"], "audio/wav")}
            self.request(client, "POST sample", "POST", f"{url}/samples", files=files)
        elif roll < 0.45:
            details = self.request(client, "GET voice", "GET", url)
            if details is not None and details.status_code == 200 and details.json()["samples"]:
                index = random.choice(details.json()["samples"])["index"]
                self.request(client, "DELETE sample", "DELETE", f"{url}/samples/{index}")
        elif roll < 0.60:
            self.request(client, "GET voice", "GET", url)
        elif roll < 0.66:
            self.request(client, "GET list", "GET", f"/api/voices/{PARTNER}")
        elif roll < 0.72:
            self.request(client, "GET bundle", "GET", f"{url}/samples-bundle")
        elif roll < 0.77:
            details = self.request(client, "GET voice", "GET", url)
            if details is not None and details.status_code == 200 and details.json()["samples"]:
                index = details.json()["samples"][0]["index"]
                self.request(client, "GET sample", "GET", f"{url}/samples/{index}")
        elif roll < 0.87 and not self.pipeline:
            self.request(client, "GET voice", "GET", url)
        elif roll < 0.82:
            form = {"max_samples": "4", "sample_duration": "5"}
            self.request(client, "POST split", "POST", f"{url}/split", data=form)
        elif roll < 0.87:
            self.request(client, "POST embed", "POST", f"{url}/embed")
        elif roll < 0.93:
            new = self.new_name()
            response = self.request(client, "PUT rename", "PUT", f"{url}/name", data={"name": new})
            if response is not None and response.status_code == 200:
                with self.lock:
                    self.voices.discard(voice)
                    self.voices.add(new)
        else:
            response = self.request(client, "DELETE voice", "DELETE", url)
            if response is not None and response.status_code in (200, 404):
                with self.lock:
                    self.voices.discard(voice)

    def run(self, seconds: float, clients: int) -> float:
        deadline = time.monotonic() + seconds

        def worker() -> None:
            with httpx.Client(headers={"X-Api-Key": DEV_KEY}, timeout=120) as client:
                while time.monotonic() < deadline:
                    self.step(client)

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    def delete_everything(self, timeout: float = 300, on_timeout: Any = None) -> tuple[int, int]:
        """Delete every voice of the partner, waiting out running jobs (409) as a client would. Returns
        (voices deleted, requests that failed or timed out); `on_timeout()` runs at the first timeout."""
        deadline = time.monotonic() + timeout
        deleted = failed = 0
        with httpx.Client(headers={"X-Api-Key": DEV_KEY}, timeout=120) as client:
            while time.monotonic() < deadline:
                try:
                    remaining = client.get(f"{self.base}/api/voices/{PARTNER}").json()
                    if not remaining:
                        return deleted, failed
                    for voice in remaining:
                        response = client.delete(self.base + self.voice_url(voice["name"]))
                        deleted += response.status_code == 200
                except httpx.HTTPError as error:
                    failed += 1
                    print(f"cleanup request failed: {type(error).__name__}", file=sys.stderr)
                    if on_timeout is not None and failed == 1:
                        on_timeout()
                time.sleep(1)
        print("voices still left after the drain timeout", file=sys.stderr)
        return deleted, failed


def leftovers(moto_port: int) -> tuple[list[str], collections.Counter[str]]:
    import boto3

    endpoint = f"http://127.0.0.1:{moto_port}"
    options = {"endpoint_url": endpoint, "region_name": "us-east-1",
               "aws_access_key_id": "local", "aws_secret_access_key": "local"}  # fmt: skip
    s3 = boto3.client("s3", **options)
    dynamodb = boto3.client("dynamodb", **options)
    objects = []
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            objects.extend(o["Key"] for o in page.get("Contents", []))
    items: collections.Counter[str] = collections.Counter()
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page.get("Items", []):
                entity = item.get("entity", {}).get("S") or item["PK"]["S"].split("#", 1)[0]
                # Items with a ttl are removed by DynamoDB's TTL deployed (moto never expires them).
                items[f"{entity} (ttl)" if "ttl" in item else entity] += 1
    return objects, items


class StackMemory:
    """Dumps of the stack process (benchmarks/memtrace_stack.py): RSS, objects per type, what the harness
    and moto retain, and with --trace-memory tracemalloc snapshots, at named points of the run."""

    def __init__(self, pid: int, folder: Path) -> None:
        self.pid = pid
        self.folder = folder
        self.points: list[tuple[str, float, dict[str, Any]]] = []  # (name, RSS MB, dump)

    def take(self, name: str, timeout: float = 300) -> None:
        n = len(self.points)
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not (self.folder / f"{n}.done").exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack wrote no memory dump for {name!r}")
            time.sleep(0.2)
        dump = json.loads((self.folder / f"{n}.json").read_text())
        self.points.append((name, rss_mb(self.pid), dump))

    def snapshot(self, name: str) -> Any:
        import tracemalloc

        n = next(i for i, (point, _, _) in enumerate(self.points) if point == name)
        path = self.folder / f"{n}.snapshot"
        if not path.exists():
            return None
        return tracemalloc.Snapshot.load(str(path)).filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
        )

    def report(self, since: str, until: str, top: int = 12) -> None:
        names = [name for name, _, _ in self.points]
        print("stack process RSS MB: " + ", ".join(f"{name} {rss:.0f}" for name, rss, _ in self.points))
        keys = sorted({k for _, _, dump in self.points for k in dump["retained"]})
        print(f"{'retained':<22}" + "".join(f"{name:>14}" for name in names))
        for key in keys:
            print(f"{key:<22}" + "".join(f"{dump['retained'].get(key, '-'):>14}" for _, _, dump in self.points))
        (_, rss_a, dump_a), (_, rss_b, dump_b) = self.points[names.index(since)], self.points[names.index(until)]
        runs = dump_b["retained"].get("sfn executions", 0) - dump_a["retained"].get("sfn executions", 0)
        if runs > 0:
            kib = dump_b["retained"].get("sfn executions KiB", 0) - dump_a["retained"].get("sfn executions KiB", 0)
            print(
                f"{since} -> {until}: {runs} more Step Functions executions kept (their history is data, as "
                f"deployed): {kib / runs:.0f} KiB each, measured; RSS {rss_b - rss_a:+.0f} MB between these two "
                "points (single samples: a pipeline run in progress lifts one; the floor above is the trend)"
            )
        first = dict(self.points[names.index(since)][2]["types"])
        last = dict(self.points[names.index(until)][2]["types"])
        growth = sorted(((last.get(k, 0) - first.get(k, 0), k) for k in last), reverse=True)[:top]
        print(f"objects per type, growth {since} -> {until}: " + ", ".join(f"{k} +{d}" for d, k in growth if d > 0))
        old, new = self.snapshot(since), self.snapshot(until)
        if old is None or new is None:
            return
        total = sum(s.size_diff for s in new.compare_to(old, "filename"))
        print(f"tracemalloc, Python allocations {since} -> {until}: {total / 2**20:+.1f} MB; largest growth by stack:")
        for stat in new.compare_to(old, "traceback")[:top]:
            if stat.size_diff <= 0:
                break
            frames = [f for f in stat.traceback if "site-packages/uvicorn" not in f.filename][-4:]
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
            print(f"  {stat.size_diff / 2**10:+9.0f} KiB {stat.count_diff:+7d} blocks  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--warmup-minutes", type=float, default=None, help="default: a quarter of the run, at most 2")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8177)
    parser.add_argument("--moto-port", type=int, default=5177)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-pipeline", action="store_true", help="no creates with audio, splits or embeds: API and storage alone"
    )
    parser.add_argument(
        "--trace-memory", action="store_true", help="tracemalloc in the stack (slower): what grew, by allocation site"
    )
    args = parser.parse_args()
    warmup = 60 * (min(2.0, args.minutes / 4) if args.warmup_minutes is None else args.warmup_minutes)
    random.seed(args.seed)
    for port in (args.port, args.moto_port):
        if not port_free(port):
            raise SystemExit(f"port {port} is in use: pick others with --port/--moto-port")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recording = audio_factory.build_recording(folder, 6, lambda i: 0.6)
        audio = {
            "recording": recording.path.read_bytes(),
            "sample": audio_factory.speech(folder / "sample.wav", "This is a short soak test sample.").read_bytes(),
        }
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), str(REPO)]),
               "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
        # A file, not a pipe: a pipe nobody reads fills up and blocks the stack's next log line.
        stderr_file = (folder / "stack.stderr").open("wb")
        stack = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "memtrace_stack.py"), str(folder / "dumps"),
             "10" if args.trace_memory else "0",
             "--port", str(args.port), "--moto-port", str(args.moto_port), "--no-persist"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr_file,
        )  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        memory = StackMemory(stack.pid, folder / "dumps")
        try:
            wait_healthy(base, stack)
            memory.take("start")
            rss = [rss_mb(stack.pid)]
            soak = Soak(base, audio, pipeline=not args.no_pipeline)
            sampling = threading.Event()

            def sample_rss() -> None:
                while not sampling.wait(10):
                    rss.append(rss_mb(stack.pid))

            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            warm = threading.Timer(warmup, memory.take, args=("warm",))
            warm.start()
            elapsed = soak.run(args.minutes * 60, args.clients)
            warm.join()
            sampling.set()
            memory.take("end")
            deleted, cleanup_failures = soak.delete_everything(
                on_timeout=lambda: os.kill(stack.pid, signal.SIGUSR2)  # the stack's threads, to its stderr
            )
            time.sleep(2)  # let the last cleanups settle
            memory.take("cleaned")
            objects, items = leftovers(args.moto_port)
        finally:
            stack.send_signal(signal.SIGTERM)
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stack.kill()
                stack.wait()
            stderr_file.close()
        stderr = (folder / "stack.stderr").read_bytes()
        report(soak, elapsed, rss, warmup, deleted, cleanup_failures, objects, items, stderr)
        memory.report("warm", "end")


def report(
    soak: Soak,
    elapsed: float,
    rss: list[float],
    warmup: float,
    deleted: int,
    cleanup_failures: int,
    objects: list[str],
    items: collections.Counter[str],
    stderr: bytes,
) -> None:
    total = sum(len(v) for v in soak.latencies.values())
    print(f"\nSoak: {elapsed / 60:.1f} min, {total} requests, {total / elapsed:.1f} requests/s")
    print(f"{'route':<20}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    for route in sorted(soak.latencies):
        values = sorted(soak.latencies[route])
        p50 = statistics.median(values) * 1000
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
        statuses = {s: n for (r, s), n in sorted(soak.statuses.items(), key=str) if r == route}
        print(f"{route:<20}{len(values):>7}{p50:>10.1f}{p99:>10.1f}  {statuses}")
    by_status: collections.Counter[Any] = collections.Counter()
    for (_, status), n in soak.statuses.items():
        by_status[status] += n
    print(f"responses by status: {dict(sorted(by_status.items(), key=str))}")
    print(
        f"RSS MB sampled every 10 s during traffic: min {min(rss):.0f}, max {max(rss):.0f} "
        f"({' '.join(f'{r:.0f}' for r in rss[:: max(1, len(rss) // 12)])})"
    )
    # The pipeline's runs lift RSS for seconds at a time; the floor between them is what would creep.
    after = rss[1 + int(warmup // 10) :]
    if len(after) >= 3:
        third = len(after) // 3
        floors = [min(after[:third]), min(after[third : 2 * third]), min(after[2 * third :])]
        print("RSS floor (min) MB per third of the traffic after warm-up: " + " -> ".join(f"{f:.0f}" for f in floors))
    print(
        f"after deleting all voices ({deleted} deleted at the end, {cleanup_failures} cleanup requests failed): "
        f"{len(objects)} S3 objects left"
    )
    for key in objects[:20]:
        print(f"  {key}")
    print(f"table items left by entity: {dict(items)} (the dev API key is expected; '(ttl)' ones expire deployed)")
    tracebacks = stderr.count(b"Traceback") + stderr.count(b"most recent call first")
    print(f"tracebacks in the stack's stderr: {tracebacks}")
    if tracebacks:
        print(stderr.decode(errors="replace")[-12000:])


if __name__ == "__main__":
    main()
