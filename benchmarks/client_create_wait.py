"""End-to-end time of `voice-onboarding voices create PARTNER NAME recording.wav --wait --json`: a
speech recording of --minutes at 44.1 kHz 16-bit stereo (3 minutes = 32 MB) from file to a ready voice.

    python benchmarks/client_create_wait.py [--minutes 3] [--runs 1]                # starts its own local stack
    python benchmarks/client_create_wait.py --url http://127.0.0.1:8000 --key vk_local_dev_key   # `make run`

Prints the total wall time of the CLI command and its phases, read from the CLI's progress lines on
stderr: upload + create (presigned POST to storage, server-side decode and opus transcode), splitting,
embedding (CPU resemblyzer engine locally), and the time from the last stage to the CLI's exit.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "client"))

from tests import audio_factory  # noqa: E402
from tests.client.conftest import child_env, free_port  # noqa: E402

from voice_onboarding.audio.ffmpeg import ffmpeg_exe  # noqa: E402

STAMP = re.compile(r"^\[\s*([\d.]+)s\] (.*)$")


def make_recording(folder: Path, minutes: float, rate: int, channels: int) -> Path:
    speech = audio_factory.build_recording(folder / "parts", 12, lambda i: 1.0 if i % 3 == 2 else 0.5)
    path = folder / "recording.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(speech.path), "-t", str(minutes * 60),
         "-ar", str(rate), "-ac", str(channels), "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


def start_stack(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port, moto_port = free_port(), free_port()
    log = (folder / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local_stack", "--port", str(port), "--moto-port", str(moto_port),
         "--no-persist", "--data-dir", str(folder / "data")],
        cwd=REPO, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"local stack did not start; see {folder / 'stack.log'}")


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "voice-onboarding"
    return [str(script)] if script.exists() else [sys.executable, "-m", "voice_onboarding_client"]


def run_once(url: str, key: str, recording: Path, name: str) -> dict[str, float]:
    env = child_env(VOICE_API_URL=url, VOICE_API_KEY=key)
    started = time.perf_counter()
    done = subprocess.run(
        [*cli_command(), "voices", "create", "my-partner", name, str(recording), "--wait", "--json"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"CLI failed ({done.returncode}):\n{done.stderr}")
    voice = json.loads(done.stdout)
    stamps: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = STAMP.match(line)
        if match:
            stamps.setdefault(match.group(2).split(" (")[0], float(match.group(1)))
    created = stamps[f"voice {name} created"]
    split_done = stamps["splitting: completed"]
    embed_done = stamps["embedding: completed"]
    subprocess.run([*cli_command(), "voices", "delete", "my-partner", name], env=env, capture_output=True)
    return {
        "total_s": total,
        "upload_and_create_s": created,
        "splitting_s": split_done - created,
        "embedding_s": embed_done - split_done,
        "exit_after_last_stage_s": total - embed_done,
        "samples": len(voice["samples"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running stack (default: start one, as `make run` does)")
    parser.add_argument("--key", default=os.environ.get("VOICE_API_KEY", "vk_local_dev_key"))
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=44_100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recording = make_recording(folder, args.minutes, args.rate, args.channels)
        size_mb = recording.stat().st_size / 1e6
        print(f"recording: {args.minutes:g} min, {args.rate} Hz, {args.channels} ch, {size_mb:.1f} MB")
        process = None
        url = args.url
        if url is None:
            process, url = start_stack(folder)
        try:
            for run in range(args.runs):
                figures = run_once(url, args.key, recording, f"bench-{int(time.time())}-{run}")
                f = figures
                print(
                    f"run {run + 1}: total {f['total_s']:.1f} s = upload+create {f['upload_and_create_s']:.1f} s"
                    f" + splitting {f['splitting_s']:.1f} s + embedding {f['embedding_s']:.1f} s"
                    f" + exit {f['exit_after_last_stage_s']:.1f} s ({f['samples']} samples)"
                )
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
