"""Soak: the local stack (`make run`: API + moto + the Step Functions pipeline) under mixed traffic for N
minutes, then every voice deleted and what is left behind counted.

    python benchmarks/soak.py --minutes 10 --port 8177 --moto-port 5177

Traffic (several concurrent clients): creates (empty and with a speech recording, which runs split +
embed), sample uploads and deletes, re-splits, embeds, renames (non-ASCII names included), reads
(details, list, sample, bundle) and voice deletes, on a bounded pool of voices. Reports requests/s,
p50/p99 per route, responses by status, the stack process's RSS over the run (start, min, max, end),
and the S3 objects and table items left after all voices are deleted (goal: none besides API keys and
expiring rate-limit windows).
"""

import argparse
import collections
import os
import random
import signal
import socket
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


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


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

    def delete_everything(self, timeout: float = 300) -> int:
        """Delete every voice of the partner, waiting out running jobs (409) as a client would."""
        deadline = time.monotonic() + timeout
        deleted = 0
        with httpx.Client(headers={"X-Api-Key": DEV_KEY}, timeout=120) as client:
            while time.monotonic() < deadline:
                remaining = client.get(f"{self.base}/api/voices/{PARTNER}").json()
                if not remaining:
                    return deleted
                for voice in remaining:
                    response = client.delete(self.base + self.voice_url(voice["name"]))
                    deleted += response.status_code == 200
                time.sleep(1)
        raise SystemExit("voices still locked after the drain timeout")


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
                items[entity] += 1
    return objects, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8177)
    parser.add_argument("--moto-port", type=int, default=5177)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-pipeline", action="store_true", help="no creates with audio, splits or embeds: API and storage alone"
    )
    args = parser.parse_args()
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
        stack = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack", "--port", str(args.port), "--moto-port", str(args.moto_port),
             "--no-persist", "--gpu-poll-seconds", "1"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        try:
            wait_healthy(base, stack)
            rss = [rss_mb(stack.pid)]
            soak = Soak(base, audio, pipeline=not args.no_pipeline)
            sampling = threading.Event()

            def sample_rss() -> None:
                while not sampling.wait(10):
                    rss.append(rss_mb(stack.pid))

            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            elapsed = soak.run(args.minutes * 60, args.clients)
            sampling.set()
            rss_end_traffic = rss_mb(stack.pid)
            deleted = soak.delete_everything()
            time.sleep(2)  # let the last cleanups settle
            objects, items = leftovers(args.moto_port)
            rss_final = rss_mb(stack.pid)
        finally:
            stack.send_signal(signal.SIGTERM)
            try:
                _, stderr = stack.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                stack.kill()
                _, stderr = stack.communicate()
    report(soak, elapsed, rss, rss_end_traffic, rss_final, deleted, objects, items, stderr or b"")


def report(
    soak: Soak,
    elapsed: float,
    rss: list[float],
    rss_end_traffic: float,
    rss_final: float,
    deleted: int,
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
        f"stack process RSS MB: start {rss[0]:.0f}, min {min(rss):.0f}, max {max(rss):.0f}, "
        f"end of traffic {rss_end_traffic:.0f}, after cleanup {rss_final:.0f} (sampled every 10 s: "
        f"{' '.join(f'{r:.0f}' for r in rss[:: max(1, len(rss) // 12)])})"
    )
    print(f"after deleting all voices ({deleted} deleted at the end): {len(objects)} S3 objects left")
    for key in objects[:20]:
        print(f"  {key}")
    print(f"table items left by entity: {dict(items)} (api_key and rate-limit windows are expected)")
    tracebacks = stderr.count(b"Traceback")
    print(f"tracebacks in the stack's stderr: {tracebacks}")
    if tracebacks:
        print(stderr.decode(errors="replace")[-3000:])


if __name__ == "__main__":
    main()
