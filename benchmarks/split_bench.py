"""Splitting speed and memory on a long generated recording.

    python benchmarks/split_bench.py [--minutes 60] [--max-samples 25] [--sample-duration 15]

Prints wall time and peak RSS (largest single process, the splitter's ffmpeg decoder included) for:
  splitter   this project's streaming splitter (audio/splitter.py), as the split Lambda runs it
  ffmpeg     a bare `ffmpeg -f segment` pass re-encoding to opus: the floor for any decode+encode
  pydub      a naive split: decode everything into one pydub AudioSegment, slice, export
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import audio_factory  # noqa: E402

from voice_onboarding.audio.ffmpeg import ffmpeg_exe  # noqa: E402

SPLITTER = """
import sys
from pathlib import Path
from voice_onboarding.audio.splitter import split_recording
result = split_recording(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
print(len(result.samples))
"""

NAIVE_PYDUB = """
import subprocess, sys, warnings
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
from pathlib import Path
from pydub import AudioSegment
from voice_onboarding.audio.ffmpeg import ffmpeg_exe
AudioSegment.converter = ffmpeg_exe()
wav = Path(sys.argv[2]) / "full.wav"
subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", sys.argv[1], "-ac", "1", str(wav)], check=True)
audio = AudioSegment.from_wav(str(wav))  # the whole recording as PCM in memory
step = int(sys.argv[4]) * 1000
for i in range(min(int(sys.argv[3]), len(audio) // step)):
    audio[i * step:(i + 1) * step].export(str(Path(sys.argv[2]) / f"{i}.opus"), format="opus", bitrate="96k")
"""


def make_recording(folder: Path, minutes: float) -> Path:
    """Loop ~50 s of espeak speech with pauses up to the length asked, stored as opus like an original."""
    base = audio_factory.build_recording(folder / "base", 12, lambda i: 1.0 if i % 3 == 2 else 0.5)
    target = folder / f"recording-{minutes:g}min.opus"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base.path), "-t", str(minutes * 60),
         "-ac", "1", "-c:a", "libopus", "-b:a", "96k", str(target)],
        check=True,
    )  # fmt: skip
    return target


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command and its descendants (largest single process)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} exited with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--max-samples", type=int, default=25)
    parser.add_argument("--sample-duration", type=int, default=15)
    parser.add_argument("--skip-pydub", action="store_true", help="the naive variant needs ~0.1 GB per 30 min")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        started = time.perf_counter()
        recording = make_recording(folder, args.minutes)
        print(f"Recording: {args.minutes:g} min opus, {recording.stat().st_size / 1e6:.1f} MB "
              f"(generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        params = [str(args.max_samples), str(args.sample_duration)]
        variants = {
            "splitter": [sys.executable, "-c", SPLITTER, str(recording), str(folder / "a"), *params],
            "ffmpeg": [ffmpeg_exe(), "-v", "error", "-i", str(recording), "-f", "segment", "-segment_time",
                       str(args.sample_duration), "-ac", "1", "-c:a", "libopus", "-b:a", "96k",
                       str(folder / "b" / "%04d.opus")],
        }  # fmt: skip
        if not args.skip_pydub:
            variants["pydub"] = [sys.executable, "-c", NAIVE_PYDUB, str(recording), str(folder / "c"), *params]
        results = {}
        for name, command in variants.items():
            (folder / {"splitter": "a", "ffmpeg": "b", "pydub": "c"}[name]).mkdir(exist_ok=True)
            results[name] = measure(command)
        floor = results["ffmpeg"][0]
        print(f"{'variant':<10} {'wall s':>8} {'x ffmpeg':>9} {'peak RSS MB':>12}")
        for name, (seconds, rss) in results.items():
            print(f"{name:<10} {seconds:8.1f} {seconds / floor:9.2f} {rss:12.0f}")


if __name__ == "__main__":
    main()
