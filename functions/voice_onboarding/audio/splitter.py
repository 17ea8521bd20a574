"""Split a recording into clean speech samples of about `sample_duration` seconds, cut only in pauses.

1. Decode: ffmpeg streams 16 kHz mono s16le PCM through a pipe, read in 60 s windows and reduced to
   per-frame features (audio/vad.py); memory stays flat with the recording's length.
2. Detect speech (adaptive noise floor, noise/tone rejection, word tails judged against the local floor)
   and find the cut points: in each pause, the quietest frame at least CUT_GUARD_SECONDS from speech
   (in a pause too short for that on both sides, the quietest frame of its middle).
3. Plan segments greedily: from a cut, the cut closest to the target among those 0.6-1.1 x away,
   preferring longer pauses (sentence ends), and short pauses only where no full one is within reach;
   never across a long silence or a noise stretch.
4. Score every segment (speech ratio, SNR, clipping), drop unusable ones. The best-ranked candidates are
   decoded again on their own: Silero VAD checks that no speech lies near their cuts (moving a cut
   further into its pause if it does), then loudness (BS.1770) and DNSMOS P.835 are measured. The best
   `max_samples` by the combined score are kept, in recording order.
5. Encode: cut each sample from the original (full bandwidth, not the 16 kHz analysis PCM) with input
   seeking `-ss/-t`, gain to -23 LUFS, opus 96 kb/s CBR mono 48 kHz; one ffmpeg process per batch."""

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from voice_onboarding.audio import models, vad
from voice_onboarding.audio.ffmpeg import OPUS_ARGS, ffmpeg_exe
from voice_onboarding.audio.loudness import normalisation
from voice_onboarding.audio.vad import FRAME, FRAME_SECONDS, SAMPLE_RATE, FrameFeatures, SpeechMap
from voice_onboarding.contract.quality import (
    CUT_GUARD_SECONDS,
    MAX_CLIPPING_RATIO,
    MAX_LENGTH_FRACTION,
    MIN_DNSMOS_OVRL,
    MIN_LENGTH_FRACTION,
    MIN_SNR_DB,
    MIN_SPEECH_RATIO,
)
from voice_onboarding.domain.voice import format_timestamp

READ_SECONDS = 60  # PCM held at once: 60 s = 1.9 MB
LONG_SILENCE_SECONDS = 1.5  # a sample never spans a silence this long
# Cut placement: a cut lies inside a pause, at the quietest point of the part of it that is at least
# CUT_GUARD_SECONDS (contract) away from speech energy (word tails included, see vad.TAIL_MARGIN_DB), and keeps at
# most EDGE_PAUSE_SECONDS more of the pause in the sample. The guard gets one more analysis frame: a
# detected speech edge can be up to a frame late (an onset rising out of the noise floor).
GUARD_FRAMES = int(np.ceil(CUT_GUARD_SECONDS / FRAME_SECONDS - 1e-9)) + 1
EDGE_PAUSE_SECONDS = 0.3
# A pause shorter than twice the guard (espeak-ng's 0.3 s between sentences, 0.23 s at 200 words per
# minute, a brisk reader's) still takes a cut, at the quietest point of its middle part, at least this many
# frames from speech on each side; the speech detector's shortest pause (vad.MIN_PAUSE_SECONDS, 5 frames)
# always allows that much, so every detected pause can hold a cut.
MIN_GUARD_FRAMES = 2
SILENT_DBFS = -55.0  # a recording whose loud parts stay below this is silent
# Thresholds shared with the worker (contract/quality.py): a sample is rejected when it is distorted,
# noise-dominated, mostly pauses or perceptually degraded; it lasts 0.6-1.1 x the target.
# Loudness normalisation of every sample (EBU R128 / BS.1770, audio/loudness.py): linear gain to the
# integrated target, lowered when the peak would pass the ceiling.
# DNSMOS and the Silero refinement run on the best-ranked candidates only (max_samples + this many).
EXTRA_CANDIDATES = 3
ENCODE_BATCH = 20  # samples per ffmpeg process (one input + one output each)
PIECE_MARGIN_SECONDS = 0.5  # audio decoded on each side of a candidate, for the boundary refinement
SILERO_SPEECH = 0.5  # Silero probability above which a 32 ms chunk is speech


class SplitError(Exception):
    """The recording cannot give a single usable sample; the message is shown to the user."""


class SplitSample(BaseModel):
    index: int
    path: Path
    start: float
    duration: float
    source_timestamp: str
    quality: dict[str, float]


class SplitResult(BaseModel):
    samples: list[SplitSample]
    recording_duration: float
    speech_seconds: float
    timings: dict[str, float] = {}


class Segment(BaseModel):
    """A planned sample in frames [start, end), with its quality report once measured. `earliest` and
    `latest` bound how far a refinement may move its cuts (still in the same pause, clear of speech)."""

    model_config = ConfigDict(frozen=True)

    start: int
    end: int
    earliest: int = -1
    latest: int = -1
    quality: dict[str, float] = {}

    @property
    def seconds(self) -> float:
        return (self.end - self.start) * FRAME_SECONDS


def decode_features(source: Path) -> FrameFeatures:
    """Stream-decode any format ffmpeg reads into per-frame features, one window at a time."""
    command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(source), "-vn", "-map", "0:a:0",
               "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]  # fmt: skip
    extractor = vad.FeatureExtractor()
    # stderr goes to a file, not a pipe: a corrupt hour-long input can log a line per bad packet, and a
    # full stderr pipe nobody reads while we block on stdout would deadlock the decoder.
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as process:
            assert process.stdout is not None
            while chunk := process.stdout.read(READ_SECONDS * SAMPLE_RATE * 2):
                extractor.feed(chunk)
            returncode = process.wait()
        errors.seek(0)
        stderr = errors.read()[-4000:].decode(errors="replace").strip()
    features = extractor.finish()
    if features.frames == 0 or (returncode != 0 and features.seconds < 1):
        reason = stderr.splitlines()[-1] if stderr else "no audio stream"
        raise SplitError(f"Recording could not be decoded: {reason[:200]}")
    return features


class _Pause(BaseModel):
    """A gap between speech runs. `end_cut`: where a sample ending in this pause is cut; `start_cut`: where
    one starting in it begins (the same frame in a short pause); None when no frame of the gap is far
    enough from speech and noise. `clear` is the span of the gap a refinement may move cuts within."""

    start: int
    end: int
    hard: bool  # a long silence, noise or a recording edge: a sample never spans it
    short: bool = False  # too short for the full guard on both sides: its cuts use a reduced one
    end_cut: int | None
    start_cut: int | None
    clear: tuple[int, int]


def _guard(clean_frames: int, bounded: bool) -> int:
    """Frames a cut keeps from the speech (or noise) around a clean stretch of `clean_frames`: the full
    guard, or, in a pause too short to hold it on both sides (a brisk reader's 0.2-0.3 s between
    sentences), half the pause, so the cut's window is the pause's middle. `bounded`: sound on both sides
    (not a recording edge)."""
    return min(GUARD_FRAMES, clean_frames // 2 if bounded else clean_frames)


def _quietest(level: np.ndarray, lo: int, hi: int) -> int:
    return lo + int(np.argmin(level[lo : hi + 1])) if hi > lo else lo


def _pause(start: int, end: int, n: int, noise: np.ndarray, level: np.ndarray, long_silence: int) -> _Pause:
    edge = int(round(EDGE_PAUSE_SECONDS / FRAME_SECONDS))
    gap_noise = np.flatnonzero(noise[start:end])
    # Clean part of the gap: after the speech before it (or the recording start) and before the first
    # noise frame, for a sample ending here; after the last noise frame, for one starting here.
    before_end = start + int(gap_noise[0]) if gap_noise.size else end
    after_start = start + int(gap_noise[-1]) + 1 if gap_noise.size else start
    # A recording edge needs no guard: nothing lies beyond it to be cut off.
    end_guard = _guard(before_end - start, bounded=before_end < n)
    end_lo = min(start + end_guard, n)
    end_hi = min(start + end_guard + edge, before_end - end_guard if before_end < n else n)
    start_guard = _guard(end - after_start, bounded=after_start > 0)
    start_lo = max(after_start + start_guard if after_start > 0 else 0, end - start_guard - edge)
    start_hi = max(end - start_guard, 0)
    # The reduced guard is for clean short pauses only: next to noise, where speech detection is least sure
    # of its edges, a cut keeps the full guard.
    least = GUARD_FRAMES if gap_noise.size else MIN_GUARD_FRAMES
    end_ok = start > 0 and end_lo <= end_hi and end_guard >= least
    start_ok = end < n and start_lo <= start_hi and start_guard >= least
    if end_ok and start_ok and end_hi >= start_lo:  # a short pause: one cut serves both samples
        end_cut = start_cut = _quietest(level, end_lo, start_hi)
    else:
        end_cut = _quietest(level, end_lo, end_hi) if end_ok else None
        start_cut = _quietest(level, start_lo, start_hi) if start_ok else None
    hard = end - start >= long_silence or gap_noise.size > 0 or start == 0 or end == n
    clear = (after_start + start_guard if after_start > 0 else 0, before_end - end_guard if before_end < n else n)
    short = min(end_guard if end_ok else GUARD_FRAMES, start_guard if start_ok else GUARD_FRAMES) < GUARD_FRAMES
    return _Pause(start=start, end=end, hard=hard, end_cut=end_cut, start_cut=start_cut, clear=clear, short=short)


def _pauses(speech_map: SpeechMap, level: np.ndarray) -> list[_Pause]:
    """Every gap between speech runs that can hold a cut or bounds a sample, plus the recording's edges."""
    speech, noise = speech_map.speech, speech_map.noise
    n = speech.size
    long_silence = int(round(LONG_SILENCE_SECONDS / FRAME_SECONDS))
    pauses = []
    for start, end in vad.runs(~speech):
        pause = _pause(start, end, n, noise, level, long_silence)
        if pause.hard or pause.end_cut is not None or pause.start_cut is not None:
            pauses.append(pause)
    if not pauses or pauses[0].start > 0:
        pauses.insert(0, _Pause(start=0, end=0, hard=True, end_cut=None, start_cut=0, clear=(0, 0)))
    if pauses[-1].end < n:
        pauses.append(_Pause(start=n, end=n, hard=True, end_cut=n, start_cut=None, clear=(n, n)))
    return pauses


def _full_pause_ahead(pauses: list[_Pause], i: int, longest: int) -> bool:
    """Whether a pause long enough for the full guard follows pause i within a sample's length (before any
    hard boundary): then this speaker pauses fully between sentences, and i is more likely a dip between words."""
    for pause in pauses[i + 1 :]:
        if pause.start - pauses[i].end > longest:
            return False
        if not pause.short and (pause.end_cut is not None or pause.start_cut is not None):
            return True
        if pause.hard:
            return False
    return False


def plan_segments(speech_map: SpeechMap, sample_duration: float, level: np.ndarray | None = None) -> list[Segment]:
    """Greedy left-to-right: each segment starts and ends at a cut and lasts 0.6-1.1 x the target.
    Stretches that cannot give one (a fragment before a long silence, unbroken sound) are skipped.
    `level`: smoothed dBFS per frame, whose minimum places each cut (flat when not given)."""
    if level is None:
        level = np.zeros(speech_map.speech.size, dtype=np.float32)
    target = sample_duration / FRAME_SECONDS
    shortest = int(np.ceil(MIN_LENGTH_FRACTION * target - 1e-9))
    longest = int(np.floor(MAX_LENGTH_FRACTION * target + 1e-9))
    guard = GUARD_FRAMES
    pauses = _pauses(speech_map, level)
    segments: list[Segment] = []
    i = 0  # index of the pause the next segment starts in
    while i < len(pauses) - 1:
        begin = pauses[i].start_cut
        if begin is None or (pauses[i].short and _full_pause_ahead(pauses, i, longest)):
            i += 1
            continue
        reachable: list[int] = []
        stop = i + 1
        for j in range(i + 1, len(pauses)):
            stop = j
            if pauses[j].start + guard - begin > longest:
                break
            if pauses[j].end_cut is not None:
                reachable.append(j)
            if pauses[j].hard:
                break
        # Short pauses only where no full one is within reach: a brisk reader's sentence ends, not the dips
        # between words that a speaker who does pause fully between sentences makes.
        reachable = [j for j in reachable if not pauses[j].short] or reachable
        ends = {j: int(pauses[j].end_cut or 0) for j in reachable}
        fitting = [j for j in reachable if shortest <= ends[j] - begin <= longest]
        if fitting:
            # Closest to the target; a longer pause (a sentence end rather than a comma) wins near-ties.
            misses = [abs(ends[k] - begin - target) - min(pauses[k].end - pauses[k].start, 20) for k in fitting]
            j = fitting[misses.index(min(misses))]
            end = ends[j]
            earliest = max(pauses[i].clear[0], end - longest)
            latest = min(pauses[j].clear[1], begin + longest)
            segments.append(Segment(start=begin, end=end, earliest=min(earliest, begin), latest=max(latest, end)))
            i = j
        elif pauses[stop].hard or not reachable:
            i = stop if pauses[stop].hard else i + 1  # noise, long silence or unbroken sound: skip past it
        else:
            i = reachable[-1]  # a fragment too short to be a sample: drop it, continue from there
    return segments


def measure(features: FrameFeatures, speech_map: SpeechMap, segment: Segment) -> dict[str, float]:
    """The part of the quality report that the frame features give."""
    window = slice(segment.start, segment.end)
    db, speech = features.db[window], speech_map.speech[window]
    floor = float(np.mean(speech_map.floor_db[window]))
    speech_db = float(np.mean(db[speech])) if speech.any() else floor
    mean_power = float(np.mean(10.0 ** (db / 10.0)))
    return {
        "speech_ratio": round(float(np.mean(speech)), 3),
        "snr_db": round(speech_db - floor, 1),
        "clipping_ratio": round(float(features.clipped[window].sum()) / ((segment.end - segment.start) * FRAME), 5),
        "rms_dbfs": round(10.0 * float(np.log10(mean_power + 1e-12)), 1),
    }


def _rejection(quality: dict[str, float]) -> str | None:
    if quality["clipping_ratio"] > MAX_CLIPPING_RATIO:
        return "clipping"
    if quality["snr_db"] < MIN_SNR_DB:
        return "noise"
    if quality["speech_ratio"] < MIN_SPEECH_RATIO:
        return "sparse"
    if quality.get("dnsmos_ovrl", 5.0) < MIN_DNSMOS_OVRL:
        return "degraded"
    return None


def _score(segment: Segment, target_frames: float) -> float:
    """Higher is better: clean (SNR, capped: beyond 40 dB nobody hears a difference), dense speech,
    close to the asked duration, and (once measured) perceptually good (DNSMOS OVRL, 1..5)."""
    q = segment.quality
    closeness = 1.0 - abs(segment.end - segment.start - target_frames) / target_frames
    score = min(q["snr_db"], 40.0) / 40.0 + q["speech_ratio"] + 0.5 * closeness
    if "dnsmos_ovrl" in q:
        score += (q["dnsmos_ovrl"] - 1.0) / 4.0
    return score


_REASONS = {
    "clipping": "the audio is clipped (distorted by too high a recording level)",
    "noise": "background noise is too loud compared with the voice",
    "sparse": "there is too little speech between the pauses",
    "degraded": "the speech sounds heavily degraded (DNSMOS overall quality below 1.6)",
}

Progress = Callable[[str], None]


def _quiet(step: str) -> None:
    pass


def decode_pieces(source: Path, pieces: list[tuple[float, float]]) -> list[np.ndarray]:
    """(start s, duration s) pieces of the source as 16 kHz mono float32, one ffmpeg per batch."""
    out: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="pieces-") as folder:
        for first in range(0, len(pieces), ENCODE_BATCH):
            batch = pieces[first : first + ENCODE_BATCH]
            inputs: list[str] = []
            outputs: list[str] = []
            for number, (start, duration) in enumerate(batch):
                inputs += ["-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-i", str(source)]
                outputs += ["-map", f"{number}:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le",
                            f"{folder}/{number}.raw"]  # fmt: skip
            result = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *inputs, *outputs],
                                    capture_output=True, timeout=600)  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"ffmpeg failed to decode pieces: {result.stderr.decode(errors='replace')[-300:]}")
            out += [np.fromfile(f"{folder}/{number}.raw", dtype=np.float32) for number in range(len(batch))]
    return out


def refine_cuts(segment: Segment, piece: np.ndarray, offset: int) -> Segment:
    """Move a cut further into its pause when Silero hears speech within the guard of it (a tail the
    energy detector missed). `piece`: 16 kHz audio from frame `offset`. The cut never leaves the
    pause's clear part nor makes the sample longer than allowed (`segment.earliest/latest`)."""
    guard = GUARD_FRAMES
    per_frame = FRAME  # 16 kHz samples per analysis frame

    def speech_frames(lo: int, hi: int) -> np.ndarray:
        """Frames in [lo, hi) overlapping a Silero speech chunk (probabilities over the same span)."""
        a, b = max(0, (lo - offset) * per_frame), min(piece.size, (hi - offset) * per_frame)
        if b - a < models.SILERO_CHUNK:
            return np.zeros(0, dtype=int)
        probs = models.speech_probabilities(piece[a:b])
        first = a + np.flatnonzero(probs >= SILERO_SPEECH) * models.SILERO_CHUNK
        last = first + models.SILERO_CHUNK - 1
        return np.unique(np.concatenate([first // per_frame, last // per_frame])) + offset

    start, end = segment.start, segment.end
    # End cut: speech heard from the sample's last words up to guard past the cut pushes the cut later.
    heard = speech_frames(end - 2 * guard - int(0.3 / FRAME_SECONDS), min(end + guard + 1, segment.latest + 1))
    heard = heard[heard >= end - guard]
    if heard.size and segment.latest >= int(heard.max()) + guard + 1 > end:
        end = int(heard.max()) + guard + 1
    heard = speech_frames(max(start - guard, segment.earliest), start + 2 * guard + int(0.3 / FRAME_SECONDS))
    heard = heard[heard < start + guard]
    if heard.size and segment.earliest <= int(heard.min()) - guard < start:
        start = int(heard.min()) - guard
    target_cap = segment.latest - segment.earliest  # never longer than the planned bounds allow
    if end - start > target_cap:
        return segment
    return segment.model_copy(update={"start": start, "end": end})


def _perceptual(segment: Segment, piece: np.ndarray, offset: int) -> dict[str, float]:
    """Loudness, peak, normalisation gain and DNSMOS of a segment, from its decoded piece."""
    audio = piece[(segment.start - offset) * FRAME : (segment.end - offset) * FRAME]
    lufs, peak_db, gain = normalisation(audio, SAMPLE_RATE)
    mos = models.dnsmos(audio)
    return {
        "source_lufs": round(lufs, 1),
        "gain_db": round(gain, 2),
        "loudness_lufs": round(lufs + gain, 1),
        "peak_dbfs": round(peak_db + gain, 1),
        "dnsmos_sig": mos.sig,
        "dnsmos_bak": mos.bak,
        "dnsmos_ovrl": mos.ovrl,
    }


def choose(
    source: Path,
    features: FrameFeatures,
    speech_map: SpeechMap,
    sample_duration: int,
    max_samples: int,
    refine: bool = True,
    timings: dict[str, float] | None = None,
) -> list[Segment]:
    """The best `max_samples` usable segments in recording order; SplitError says why there are none."""
    timings = {} if timings is None else timings
    planned = plan_segments(speech_map, sample_duration, vad.smoothed_db(features.db))
    usable: list[Segment] = []
    rejected: dict[str, int] = {}

    def keep(segment: Segment) -> None:
        reason = _rejection(segment.quality)
        if reason:
            rejected[reason] = rejected.get(reason, 0) + 1
        else:
            usable.append(segment)

    for segment in planned:
        keep(segment.model_copy(update={"quality": measure(features, speech_map, segment)}))
    target = sample_duration / FRAME_SECONDS
    # Stable sort on score, so equal scores keep the earlier segment.
    candidates = sorted(usable, key=lambda s: -_score(s, target))[: max_samples + EXTRA_CANDIDATES]
    usable = []
    margin = int(round(PIECE_MARGIN_SECONDS / FRAME_SECONDS))
    offsets = [max(0, c.start - margin) for c in candidates]
    started = time.perf_counter()
    spans = [
        (o * FRAME_SECONDS, (c.end + margin - o) * FRAME_SECONDS) for c, o in zip(candidates, offsets, strict=True)
    ]
    pieces = decode_pieces(source, spans)
    timings["decode_candidates"] = time.perf_counter() - started
    timings["silero"] = timings["dnsmos"] = 0.0
    for candidate, piece, offset in zip(candidates, pieces, offsets, strict=True):
        # CPU seconds (onnxruntime's threads included), not wall: comparable on a loaded machine.
        started = time.process_time()
        refined = refine_cuts(candidate, piece, offset) if refine else candidate
        timings["silero"] += time.process_time() - started
        started = time.process_time()
        quality = {**measure(features, speech_map, refined), **_perceptual(refined, piece, offset)}
        timings["dnsmos"] += time.process_time() - started
        keep(refined.model_copy(update={"quality": quality}))
    timings["candidates"] = len(candidates)
    if not usable:
        if speech_map.unbroken_seconds > max(speech_map.speech_seconds, MIN_LENGTH_FRACTION * sample_duration):
            raise _no_pauses(speech_map)
        if rejected:
            why = _REASONS[max(rejected, key=lambda r: rejected[r])]
        else:
            why = "speech must pause briefly between phrases, without long noise"
        raise SplitError(f"No clean {sample_duration} s stretch of speech found: {why}")
    best = sorted(usable, key=lambda s: -_score(s, target))[:max_samples]
    return sorted(best, key=lambda s: s.start)


def _no_pauses(speech_map: SpeechMap) -> SplitError:
    return SplitError(
        f"Recording has no pauses to cut at: {speech_map.unbroken_seconds:.0f} s of it runs on without a break; "
        "speech must pause briefly (about 0.2 s) between sentences so that no sample cuts a word"
    )


def _refuse_without_speech(features: FrameFeatures, speech_map: SpeechMap, sample_duration: int) -> None:
    if float(np.percentile(features.db, 95)) < SILENT_DBFS:
        raise SplitError("Recording contains no speech (it is silent)")
    shortest = MIN_LENGTH_FRACTION * sample_duration
    unbroken = speech_map.unbroken_seconds
    if speech_map.speech_seconds < shortest <= unbroken and unbroken >= speech_map.noise_seconds / 2:
        raise _no_pauses(speech_map)
    if speech_map.speech_seconds == 0:
        raise SplitError("Recording contains no speech: only steady noise or tone")
    if speech_map.speech_seconds < shortest:
        if speech_map.noise_seconds > speech_map.speech_seconds:
            raise SplitError("Recording contains no usable speech: it is mostly noise")
        raise SplitError(
            f"Recording is too short: {speech_map.speech_seconds:.1f} s of speech, a {sample_duration} s "
            f"sample needs at least {shortest:.0f} s"
        )


def encode_samples(source: Path, cuts: list[tuple[Path, float, float, float]], progress: Progress = _quiet) -> None:
    """Cut (target, start s, duration s, gain dB) pieces of the source to opus 96 kb/s mono."""
    for first in range(0, len(cuts), ENCODE_BATCH):
        batch = cuts[first : first + ENCODE_BATCH]
        progress(f"cutting {first + len(batch)}/{len(cuts)}")
        inputs: list[str] = []
        outputs: list[str] = []
        for number, (target, start, duration, gain) in enumerate(batch):
            # -ss before -i: the demuxer seeks, so a cut an hour in does not decode the hour before it.
            inputs += ["-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-i", str(source)]
            outputs += ["-map", f"{number}:a:0", "-af", f"volume={gain:.2f}dB", *OPUS_ARGS, str(target)]
        command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *inputs, *outputs]
        result = subprocess.run(command, capture_output=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed to encode samples: {result.stderr.decode(errors='replace')[-300:]}")


def split_recording(
    source: Path,
    out_dir: Path,
    max_samples: int,
    sample_duration: int,
    progress: Progress = _quiet,
    refine: bool = True,
) -> SplitResult:
    """Split `source` into at most `max_samples` opus files `out_dir/{1..n}.opus` lasting 0.6-1.1 x
    `sample_duration` seconds. Raises SplitError with a user-facing reason when nothing is usable.
    `progress` is called with a short step name before each phase (for the voice's `progress`).
    `refine`: check the cuts with Silero VAD (the benchmark compares with and without)."""
    if not 1 <= max_samples <= 100 or not 5 <= sample_duration <= 60:
        raise ValueError("max_samples must be 1-100 and sample_duration 5-60 s")
    timings: dict[str, float] = {}
    progress("decoding")
    started = time.perf_counter()
    features = decode_features(source)
    timings["decode"] = time.perf_counter() - started
    progress("detecting speech")
    started = time.perf_counter()
    speech_map = vad.detect_speech(features)
    _refuse_without_speech(features, speech_map, sample_duration)
    timings["detect"] = time.perf_counter() - started
    progress("scoring samples")
    chosen = choose(source, features, speech_map, sample_duration, max_samples, refine, timings)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = [
        SplitSample(
            index=index, path=out_dir / f"{index}.opus", start=round(segment.start * FRAME_SECONDS, 3),
            duration=round(segment.seconds, 3), source_timestamp=format_timestamp(segment.start * FRAME_SECONDS),
            quality=segment.quality,
        )
        for index, segment in enumerate(chosen, start=1)
    ]  # fmt: skip
    started = time.perf_counter()
    encode_samples(source, [(s.path, s.start, s.duration, s.quality["gain_db"]) for s in samples], progress)
    timings["encode"] = time.perf_counter() - started
    return SplitResult(
        samples=samples,
        recording_duration=round(features.seconds, 2),
        speech_seconds=round(speech_map.speech_seconds, 2),
        timings={k: round(v, 3) for k, v in timings.items()},
    )
