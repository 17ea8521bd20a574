"""Quality section of split_bench: generated recordings with known ground truth, three splitters side by side.

Each recording (tests/audio_factory.ground_truth_recording): one espeak voice and rate reading sentences
separated by 0.3-1.2 s pauses, with a noise burst, a tone and a stretch by a second speaker inserted
between sentences, then a noise floor added over everything. The ground truth is exact: where every
utterance's energy starts and ends on the clean signal (-60 dBFS in 10 ms frames, so quiet word tails
count as speech), and where the noise and the tone lie.

Plus espeak-ng reading a text in one call (tests/audio_factory.reading_recording), at its default rate and
at 200 words per minute, with and without a noise floor: its own pauses, ~0.3 s between sentences (0.23 s
fast), 0.15 s at commas, nothing inserted. Ground truth: the clean signal's runs above -60 dBFS, silences
under 100 ms bridged (stop closures are inside words).

A cut (a sample's start or end, except at the recording's edges) is
  in pause  when it lies between two stretches of sound, and
  clear     when it is also at least 100 ms from any of them (the splitter's rule).
A sample is contaminated when more than 50 ms of it overlaps the noise burst or the tone; mixed when more
than 0.5 s of it is the second speaker (flagging those is the GPU worker's job: reported, not scored).
"""

import math
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tests import audio_factory

from voice_onboarding.audio.ffmpeg import bitrate_kbps, ffmpeg_exe
from voice_onboarding.audio.splitter import SplitError, split_recording

RATE = audio_factory.RATE
RECORDINGS = audio_factory.GROUND_TRUTH_RECORDINGS
READINGS = audio_factory.READING_RECORDINGS
GUARD = 0.1  # seconds: the "clear" criterion
Truth = audio_factory.GroundTruth
build = audio_factory.ground_truth_recording


# --- the anchors --------------------------------------------------------------------------------------


def _load(path: Path, rate: int = RATE) -> np.ndarray:
    pcm = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(pcm, dtype=np.float32)


def slicer2(path: Path, target: float) -> list[tuple[float, float]]:
    """GPT-SoVITS tools/slicer2.py's algorithm, reimplemented: RMS over 4-hop windows every 10 ms; a run of
    frames below -40 dBFS at least 300 ms long and past min_length since the last cut is a cut, placed at
    the RMS minimum (one cut if the silence is within max_sil_kept 500 ms, else the silence beyond 500 ms
    on each side is dropped). min_length = 0.6 x target so its pieces are comparable to ours."""
    audio = _load(path)
    hop = round(RATE * 0.01)
    window = min(round(RATE * 0.3), 4 * hop)
    padded = np.pad(audio, (window // 2, window // 2))
    count = 1 + (padded.size - window) // hop
    rms = np.array([np.sqrt(np.mean(padded[i * hop : i * hop + window] ** 2)) for i in range(count)])
    threshold, min_interval, max_kept = 10 ** (-40 / 20), 30, 50
    min_length = round(0.6 * target / 0.01)
    tags: list[tuple[int, int]] = []
    silence_start: int | None = None
    clip_start = 0
    for i, value in enumerate(rms):
        if value < threshold:
            silence_start = i if silence_start is None else silence_start
            continue
        if silence_start is None:
            continue
        leading = silence_start == 0 and i > max_kept
        if not leading and not (i - silence_start >= min_interval and i - clip_start >= min_length):
            silence_start = None
            continue
        if i - silence_start <= max_kept:
            pos = silence_start + int(rms[silence_start : i + 1].argmin())
            tags.append((0, pos) if silence_start == 0 else (pos, pos))
            clip_start = pos
        else:
            left = silence_start + int(rms[silence_start : silence_start + max_kept + 1].argmin())
            right = i - max_kept + int(rms[i - max_kept : i + 1].argmin())
            if i - silence_start <= 2 * max_kept:
                middle = i - max_kept + int(rms[i - max_kept : silence_start + max_kept + 1].argmin())
                left, right = min(left, middle), max(right, middle)
            tags.append((0, right) if silence_start == 0 else (left, right))
            clip_start = right
        silence_start = None
    if silence_start is not None and count - silence_start >= min_interval:
        end = min(count, silence_start + max_kept)
        tags.append((silence_start + int(rms[silence_start : end + 1].argmin()), count + 1))
    bounds = [0, *[x for tag in tags for x in tag], count]
    pieces = [(bounds[k] * 0.01, min(bounds[k + 1], count) * 0.01) for k in range(0, len(bounds), 2)]
    return [(a, b) for a, b in pieces if b - a > 0.05]


def pydub_split(path: Path, target: float) -> list[tuple[float, float]]:
    """pydub.silence.split_on_silence as usually called (-40 dBFS, 300 ms, 100 ms kept), positions only."""
    from pydub import AudioSegment, silence

    segment = AudioSegment.from_wav(str(path))
    ranges = silence.detect_nonsilent(segment, min_silence_len=300, silence_thresh=-40, seek_step=1)
    keep = 100  # what split_on_silence(keep_silence=100) keeps on each side
    return [(max(0, a - keep) / 1000, min(len(segment), b + keep) / 1000) for a, b in ranges]


# --- scoring ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    cuts: int = 0
    in_pause: int = 0
    clear: int = 0
    samples: int = 0
    contaminated: int = 0
    mixed: int = 0
    durations: list[float] = field(default_factory=list)
    over_cap: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def row(self, name: str, target: float) -> str:
        mean = float(np.mean(self.durations)) if self.durations else math.nan
        longest = max(self.durations) if self.durations else math.nan
        return (
            f"{name:<18} {self.samples:>7} {self.cuts:>5} {100 * self.in_pause / max(self.cuts, 1):>8.1f} "
            f"{100 * self.clear / max(self.cuts, 1):>8.1f} {self.contaminated:>6} {self.mixed:>6} "
            f"{mean / target:>8.2f} {longest / target:>7.2f} {self.over_cap:>5} {self.seconds:>7.1f}"
        )


HEADER = (
    f"{'splitter':<18} {'samples':>7} {'cuts':>5} {'%pause':>8} {'%clear':>8} {'noise':>6} {'mixed':>6} "
    f"{'mean/T':>8} {'max/T':>7} {'>cap':>5} {'wall s':>7}"
)


def _overlap(a: float, b: float, spans: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in spans)


def score(tally: Tally, truth: Truth, pieces: list[tuple[float, float]], target: float, cap: float) -> None:
    for start, end in pieces:
        tally.samples += 1
        tally.durations.append(end - start)
        tally.over_cap += end - start > cap + 0.01
        tally.contaminated += _overlap(start, end, truth.contaminants) > 0.05
        tally.mixed += _overlap(start, end, truth.other_speaker) > 0.5
        for cut in (start, end):
            if cut < 0.05 or cut > truth.duration - 0.05:
                continue  # a recording edge cuts nothing off
            tally.cuts += 1
            inside = any(lo < cut < hi for lo, hi in truth.sounds)
            near = any(lo - GUARD < cut < hi + GUARD for lo, hi in truth.sounds)
            tally.in_pause += not inside
            tally.clear += not near


Splitter = Callable[[Path, float], list[tuple[float, float]]]


def _label(truth: Truth) -> str:
    if truth.path.stem.startswith("reading-"):
        voice, speed, floor, _ = audio_factory.READING_RECORDINGS[int(truth.path.stem.split("-")[1])]
    else:
        voice, speed, floor, _ = RECORDINGS[int(truth.path.stem.split("-")[1]) % len(RECORDINGS)]
        voice += " +events"
    return f"{truth.path.stem} {voice} {speed}wpm {'no floor' if floor is None else f'{floor:.0f}dBFS'}"


def run(recordings: int = 6, minutes: float = 2.0, sample_duration: int = 10) -> None:
    target, cap = float(sample_duration), 1.1 * sample_duration
    tallies = {name: Tally() for name in ("splitter", "splitter -silero", "slicer2", "pydub")}
    per_recording: list[tuple[str, Tally | str]] = []
    costs: dict[str, float] = {"dnsmos": 0.0, "silero": 0.0, "samples": 0, "candidates": 0}
    bitrates: list[float] = []
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        started = time.perf_counter()
        truths = [build(folder, i, minutes) for i in range(recordings)]
        truths += [audio_factory.reading_recording(folder, i, minutes) for i in range(len(READINGS))]
        total = sum(t.duration for t in truths)
        print(f"Quality: {len(truths)} recordings, {total / 60:.1f} min in all, target {sample_duration} s "
              f"(generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        for truth in truths:
            for name, refine in (("splitter", True), ("splitter -silero", False)):
                out = folder / f"out-{truth.path.stem}-{refine}"
                started = time.perf_counter()
                try:
                    result = split_recording(truth.path, out, 100, sample_duration, refine=refine)
                except SplitError as error:
                    print(f"  {truth.path.name}: {error}")
                    if refine:
                        per_recording.append((_label(truth), str(error)))
                    continue
                tallies[name].seconds += time.perf_counter() - started
                pieces = [(s.start, s.start + s.duration) for s in result.samples]
                score(tallies[name], truth, pieces, target, cap)
                if refine:
                    own = Tally()
                    score(own, truth, pieces, target, cap)
                    per_recording.append((_label(truth), own))
                    costs["dnsmos"] += result.timings["dnsmos"]
                    costs["silero"] += result.timings["silero"]
                    costs["candidates"] += result.timings["candidates"]
                    costs["samples"] += len(result.samples)
                    bitrates += [bitrate_kbps(s.path) for s in result.samples]
            for name, splitter in (("slicer2", slicer2), ("pydub", pydub_split)):
                started = time.perf_counter()
                pieces = splitter(truth.path, target)
                tallies[name].seconds += time.perf_counter() - started
                score(tallies[name], truth, pieces, target, cap)
    print(f"Splitter per recording:\n{'recording':<44} {'samples':>7} {'cuts':>5} {'%pause':>8} {'%clear':>8} "
          f"{'mean/T':>8} {'max/T':>7} {'>cap':>5}")  # fmt: skip
    for label, outcome in per_recording:
        if isinstance(outcome, str):
            print(f"{label:<44} refused: {outcome}")
            continue
        row = outcome.row("", target).split()
        print(f"{label:<44} {row[0]:>7} {row[1]:>5} {row[2]:>8} {row[3]:>8} {row[6]:>8} {row[7]:>7} {row[8]:>5}")
    print(HEADER)
    for name, tally in tallies.items():
        print(tally.row(name, target))
    print(
        "  %pause: cuts between sounds; %clear: also >= 100 ms from any; noise: samples overlapping a noise\n"
        "  burst or tone; mixed: samples with > 0.5 s of the second speaker (the worker flags those);\n"
        "  mean/T, max/T: duration over the target; >cap: samples longer than 1.1 x target"
    )
    per = max(costs["candidates"], 1)
    print(f"Cost per candidate sample: DNSMOS {1000 * costs['dnsmos'] / per:.0f} ms (loudness included), "
          f"Silero refinement {1000 * costs['silero'] / per:.0f} ms "
          f"({costs['candidates']:.0f} candidates for {costs['samples']:.0f} samples)")  # fmt: skip
    if bitrates:
        print(f"Bitrate of the samples written: {min(bitrates):.1f}-{max(bitrates):.1f} kb/s "
              f"(mean {np.mean(bitrates):.1f}, {len(bitrates)} files)")  # fmt: skip
