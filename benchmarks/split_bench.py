"""Splitting quality, speed and memory on generated recordings.

    python benchmarks/split_bench.py [--minutes 60] [--max-samples 25] [--sample-duration 15]
                                     [--quality-only | --speed-only]

Quality (benchmarks/split_quality.py): recordings with known ground truth (espeak voices and rates,
pauses of 0.3-1.2 s, noise bursts, tones, a second speaker, noise floors of -60 to -35 dBFS; and espeak-ng
reading a text in one call, with its own 0.23-0.35 s sentence pauses, at 175 and 200 words per minute,
with and without a floor), split by this splitter (with and without the Silero refinement), a slicer2
reimplementation and pydub `split_on_silence`, side by side, and by the splitter per recording: share of
cuts in pauses, samples contaminated by noise/tone, durations against the target, DNSMOS and Silero cost
per sample, bitrate of the files written.

Speed: wall time and peak RSS (largest single process, the splitter's ffmpeg decoder included) for:
  splitter   this project's streaming splitter (audio/splitter.py), as the split Lambda runs it
  ffmpeg     decode the whole recording once + encode the kept samples' length of audio: the floor
             for any splitter that must read everything and write its samples
  segment    a bare `ffmpeg -f segment` pass re-encoding everything to opus (the older, higher floor)
  pydub      a naive split: decode everything into one pydub AudioSegment, slice, export
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests import audio_factory  # noqa: E402

import split_quality  # noqa: E402
from voice_onboarding.audio.ffmpeg import OPUS_ARGS, ffmpeg_exe  # noqa: E402

SPLITTER = """
import json, sys
from pathlib import Path
from voice_onboarding.audio.splitter import split_recording
result = split_recording(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
print(json.dumps({"samples": len(result.samples), **result.timings}))
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
    audio[i * step:(i + 1) * step].export(str(Path(sys.argv[2]) / f"{i}.opus"), format="opus", bitrate="96k",
                                          parameters=["-vbr", "off"])
"""


def make_recording(folder: Path, minutes: float) -> Path:
    """Loop ~50 s of espeak speech with pauses up to the length asked, stored as opus like an original."""
    base = audio_factory.build_recording(folder / "base", 12, lambda i: 1.0 if i % 3 == 2 else 0.5)
    target = folder / f"recording-{minutes:g}min.opus"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base.path), "-t", str(minutes * 60),
         *OPUS_ARGS, str(target)],
        check=True,
    )  # fmt: skip
    return target


def measure(command: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one command and its descendants (largest single
    process), and what it printed. CPU time matters on a shared machine, where wall time depends on the
    neighbours."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            command, stdout=out, env={**os.environ, "PYTHONPATH": f"{REPO / 'functions'}:{REPO}"}
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        out.seek(0)
        printed = out.read().decode(errors="replace").strip()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} exited with {process.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, printed


def speed(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        started = time.perf_counter()
        recording = make_recording(folder, args.minutes)
        print(f"Speed: {args.minutes:g} min opus recording, {recording.stat().st_size / 1e6:.1f} MB "
              f"(generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        params = [str(args.max_samples), str(args.sample_duration)]
        kept = args.max_samples * args.sample_duration  # seconds of audio the splitter encodes at most
        variants = {
            "splitter": [sys.executable, "-c", SPLITTER, str(recording), str(folder / "splitter"), *params],
            "decode": [ffmpeg_exe(), "-v", "error", "-i", str(recording), "-f", "null", "-"],
            "encode-kept": [ffmpeg_exe(), "-v", "error", "-i", str(recording), "-t", str(kept),
                            *OPUS_ARGS, str(folder / "kept.opus")],
            "segment": [ffmpeg_exe(), "-v", "error", "-i", str(recording), "-f", "segment", "-segment_time",
                        str(args.sample_duration), *OPUS_ARGS[:-2], str(folder / "segment" / "%04d.opus")],
        }  # fmt: skip
        if not args.skip_pydub:
            variants["pydub"] = [sys.executable, "-c", NAIVE_PYDUB, str(recording), str(folder / "pydub"), *params]
        results = {}
        for name, command in variants.items():
            (folder / name).mkdir(exist_ok=True)
            results[name] = measure(command)
        floor = results["decode"][0] + results["encode-kept"][0]
        print(f"{'variant':<12} {'wall s':>8} {'CPU s':>8} {'x floor':>8} {'peak RSS MB':>12}")
        for name, (seconds, cpu, rss, _) in results.items():
            print(f"{name:<12} {seconds:8.1f} {cpu:8.1f} {seconds / floor:8.2f} {rss:12.0f}")
        cpu_floor = results["decode"][1] + results["encode-kept"][1]
        print(f"floor = decode once + encode the kept {kept} s: {floor:.1f} s wall, {cpu_floor:.1f} s CPU; "
              f"splitter CPU / floor CPU = {results['splitter'][1] / cpu_floor:.2f}")  # fmt: skip
        steps = json.loads(results["splitter"][3].splitlines()[-1])
        per = max(steps["candidates"], 1)
        print(f"splitter steps (s; silero and dnsmos in CPU s): {steps}\n"
              f"DNSMOS {1000 * steps['dnsmos'] / per:.0f} ms CPU per candidate ({steps['candidates']:.0f} "
              f"candidates for {steps['samples']} samples, loudness included)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--max-samples", type=int, default=25)
    parser.add_argument("--sample-duration", type=int, default=15)
    parser.add_argument("--skip-pydub", action="store_true", help="the naive variant needs ~0.1 GB per 30 min")
    parser.add_argument("--recordings", type=int, default=6, help="quality: generated recordings")
    parser.add_argument("--recording-minutes", type=float, default=2.0, help="quality: length of each")
    parser.add_argument("--quality-sample-duration", type=int, default=10)
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    if not args.speed_only:
        split_quality.run(args.recordings, args.recording_minutes, args.quality_sample_duration)
    if not args.quality_only:
        speed(args)


if __name__ == "__main__":
    main()
