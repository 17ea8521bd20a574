"""Split a recording into clean speech samples of about `sample_duration` seconds, cut only in pauses.

1. Decode: ffmpeg streams 16 kHz mono s16le PCM through a pipe, read in 60 s windows and reduced to
   per-frame features (audio/vad.py); memory stays flat with the recording's length. A long recording
   is decoded in one part per vCPU at once; the PCM is kept on disk for step 4.
2. Detect speech (adaptive noise floor, noise/tone rejection, word tails judged against the local floor)
   and find the cut points: in each pause, the quietest frame at least CUT_GUARD_SECONDS from speech
   (in a pause too short for that on both sides, the quietest frame of its middle).
3. Plan segments greedily: from a cut, the cut closest to the target among those 0.6-1.1 x away,
   preferring longer pauses (sentence ends), and short pauses only where no full one is within reach;
   never across a long silence or a noise stretch.
4. Score every segment (speech ratio, SNR, clipping), drop unusable ones. The best-ranked candidates are
   assessed one per vCPU at a time: Silero VAD checks that no speech lies near their cuts (moving a cut
   further into its pause if it does), then loudness (BS.1770) and DNSMOS P.835 are measured. The best
   `max_samples` by the combined score are kept, in recording order.
5. Encode (audio/encoding.py), while step 4 runs: cut each likely sample from the original (full
   bandwidth, not the 16 kHz analysis PCM) with input seeking `-ss/-t`, gain to -23 LUFS, opus 96 kb/s
   CBR mono 48 kHz; an extra that DNSMOS promotes is encoded once the choice is made.

Speed (benchmarks/split_bench.py, 2 vCPUs, 25 x 15 s samples): DNSMOS is a fixed ~10 s of CPU per split
(0.37 s per candidate), so against the decode + encode floor a split takes 1.40 x for a 10 min recording,
1.29 x for 30 min and 1.15 x for 60 min (README, Benchmarks)."""

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from voice_onboarding.audio import models, vad
from voice_onboarding.audio.encoding import BackgroundEncoder
from voice_onboarding.audio.ffmpeg import ffmpeg_exe, probe
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
from voice_onboarding.domain.errors import InvalidAudio
from voice_onboarding.domain.voice import format_timestamp

READ_SECONDS = 60  # PCM held at once: 60 s = 1.9 MB
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size
# ffmpeg 7 hands every decoded frame (20 ms of opus) from thread to thread; regrouping them into ~0.7 s
# frames before the resampler cuts its futex traffic: decoding a 30 min opus recording to 16 kHz took
# 2.6 s wall / 3.7 s CPU instead of 3.3 / 5.4, with bit-identical PCM (no padding of the last frame).
BIG_FRAMES = "asetnsamples=n=32768:p=0"
# A recording of at least PART_MIN_FRAMES per vCPU is decoded in that many parts at once (parts overlap
# by PART_PREROLL_FRAMES, decoded twice and dropped); 30 min of opus on 2 vCPUs: 4.1 -> 3.0 s.
PART_MIN_FRAMES = int(120 / FRAME_SECONDS)
PART_PREROLL_FRAMES = 16  # 0.48 s
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


def decode_features(source: Path, pcm: Path | None = None, parts: int = 1) -> FrameFeatures:
    """Stream-decode any format ffmpeg reads into per-frame features, one window at a time. `pcm`: also
    keep the 16 kHz s16le stream in that file (on disk, not in memory: 115 MB per hour), from which the
    candidates are read back (`read_pcm`) instead of decoding them a second time. `parts`: decode that
    many stretches of a long recording at once, one ffmpeg each (one ffmpeg uses ~1.4 vCPU)."""
    frames = int((_duration(source) or 0) / FRAME_SECONDS) if parts > 1 else 0
    if frames >= parts * PART_MIN_FRAMES:
        try:
            return _decode_in_parts(source, pcm, [frames * k // parts for k in range(parts)])
        except _PartFailed:
            pass  # decoded again in one piece, which names the problem if there is one
    if pcm is not None:
        pcm.write_bytes(b"")
    return _decode_part(source, pcm, 0, None).features()


def _duration(source: Path) -> float | None:
    try:
        return probe(source).duration
    except InvalidAudio:
        return None


class _PartFailed(Exception):
    pass


class _Part:
    """What one ffmpeg decoding frames [first, last) of the recording gave: its frames' features (its PCM is
    already written at its place in the kept file), exit status and last error lines."""

    def __init__(self, extractor: vad.FeatureExtractor, returncode: int, stderr: str) -> None:
        self.extractor, self.returncode, self.stderr = extractor, returncode, stderr

    def features(self) -> FrameFeatures:
        features = self.extractor.finish()
        if features.frames == 0 or (self.returncode != 0 and features.seconds < 1):
            reason = self.stderr.splitlines()[-1] if self.stderr else "no audio stream"
            raise SplitError(f"Recording could not be decoded: {reason[:200]}")
        return features


def _decode_part(source: Path, pcm: Path | None, first: int, last: int | None) -> _Part:
    # A part after the first starts PART_PREROLL_FRAMES early and drops them: the decoder and resampler
    # state are then the same as in one continuous decode, and the PCM is bit-identical (tested).
    preroll = min(first, PART_PREROLL_FRAMES)
    seek = ["-ss", f"{(first - preroll) * FRAME_SECONDS:.3f}"] if first else []
    span = ["-t", f"{(last - first + preroll + PART_PREROLL_FRAMES) * FRAME_SECONDS:.3f}"] if last is not None else []
    command = [ffmpeg_exe(), "-v", "error", "-nostdin", *seek, *span, "-i", str(source), "-vn", "-map", "0:a:0",
               "-af", BIG_FRAMES, "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]  # fmt: skip
    skip, keep = preroll * FRAME * 2, None if last is None else (last - first) * FRAME * 2
    extractor = vad.FeatureExtractor()
    # stderr goes to a file, not a pipe: a corrupt hour-long input can log a line per bad packet, and a
    # full stderr pipe nobody reads while we block on stdout would deadlock the decoder.
    with tempfile.TemporaryFile() as errors, open(pcm or os.devnull, "r+b") as kept:
        kept.seek(first * FRAME * 2)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as process:
            assert process.stdout is not None
            _widen_pipe(process.stdout.fileno())
            while chunk := process.stdout.read(READ_SECONDS * SAMPLE_RATE * 2):
                chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                if keep is not None:
                    chunk, keep = chunk[:keep], keep - len(chunk[:keep])
                extractor.feed(chunk)
                kept.write(chunk)
            returncode = process.wait()
        errors.seek(0)
        stderr = errors.read()[-4000:].decode(errors="replace").strip()
    return _Part(extractor, returncode, stderr)


def _decode_in_parts(source: Path, pcm: Path | None, starts: list[int]) -> FrameFeatures:
    if pcm is not None:
        pcm.write_bytes(b"")  # every part writes into it at its own offset
    bounds = [*starts[1:], None]
    with ThreadPoolExecutor(len(starts), thread_name_prefix="decode") as pool:
        parts = list(pool.map(lambda b: _decode_part(source, pcm, *b), zip(starts, bounds, strict=True)))
    decoded = [part.extractor.finish() for part in parts]
    complete = all(
        part.returncode == 0 and (last is None or features.frames == last - first)
        for part, features, first, last in zip(parts, decoded, starts, bounds, strict=True)
    )
    if not complete:
        raise _PartFailed
    return FrameFeatures(
        db=np.concatenate([f.db for f in decoded]),
        clipped=np.concatenate([f.clipped for f in decoded]),
        flatness=np.concatenate([f.flatness for f in decoded]),
    )


def _widen_pipe(fd: int) -> None:
    """Let ffmpeg run up to PIPE_BYTES ahead while the features of the last window are computed; with the
    default 64 KiB pipe the two took turns (30 min recording: 3.9 s decode against 3.4 s for ffmpeg alone)."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: the default pipe still works, only slower


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


def read_pcm(pcm: Path, start: int, end: int) -> np.ndarray:
    """Frames [start, end) of the PCM `decode_features` kept, as float32 in [-1, 1)."""
    stream = np.memmap(pcm, dtype="<i2", mode="r")
    return stream[start * FRAME : end * FRAME].astype(np.float32) / 32768.0


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


def _loudness(audio: np.ndarray) -> dict[str, float]:
    """Loudness, peak and the normalisation gain of a segment's 16 kHz audio."""
    lufs, peak_db, gain = normalisation(audio, SAMPLE_RATE)
    return {
        "source_lufs": round(lufs, 1),
        "gain_db": round(gain, 2),
        "loudness_lufs": round(lufs + gain, 1),
        "peak_dbfs": round(peak_db + gain, 1),
    }


class Candidate(BaseModel):
    """A best-ranked segment before its refinement and DNSMOS, with the audio decoded around it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rank: int  # 0 = best by the frame-feature score
    segment: Segment
    piece: np.ndarray  # 16 kHz mono float32 from frame `offset`, PIECE_MARGIN_SECONDS around the segment
    offset: int


def shortlist(
    pcm: Path,
    features: FrameFeatures,
    speech_map: SpeechMap,
    sample_duration: int,
    max_samples: int,
    rejected: dict[str, int],
) -> list[Candidate]:
    """Plan and measure every segment (counting the unusable ones in `rejected`), keep the
    `max_samples + EXTRA_CANDIDATES` best, with their audio read back from the kept PCM."""
    planned = plan_segments(speech_map, sample_duration, vad.smoothed_db(features.db))
    target = sample_duration / FRAME_SECONDS
    usable = [s for s in _measured(features, speech_map, planned) if _usable(s, rejected)]
    # Stable sort on score, so equal scores keep the earlier segment.
    best = sorted(usable, key=lambda s: -_score(s, target))[: max_samples + EXTRA_CANDIDATES]
    margin = int(round(PIECE_MARGIN_SECONDS / FRAME_SECONDS))
    candidates = []
    for rank, segment in enumerate(best):
        offset = max(0, segment.start - margin)
        piece = read_pcm(pcm, offset, segment.end + margin)
        candidates.append(Candidate(rank=rank, segment=segment, piece=piece, offset=offset))
    return candidates


class Assessed(BaseModel):
    segment: Segment  # cuts refined, full quality report (DNSMOS missing when rejected before it)
    silero_cpu: float
    dnsmos_cpu: float  # loudness included


def assess(
    candidate: Candidate,
    draft: Path,
    features: FrameFeatures,
    speech_map: SpeechMap,
    encoder: BackgroundEncoder,
    refine: bool = True,
) -> Assessed:
    """One candidate, on one worker thread: Silero refines its cuts, its report is measured again, its cut
    and gain go to the encoder, then DNSMOS. CPU times are the thread's own (onnxruntime runs in it)."""
    started = time.thread_time()
    piece, offset = candidate.piece, candidate.offset
    segment = refine_cuts(candidate.segment, piece, offset) if refine else candidate.segment
    quality = measure(features, speech_map, segment)
    silero = time.thread_time() - started
    if _rejection(quality):
        return Assessed(segment=segment.model_copy(update={"quality": quality}), silero_cpu=silero, dnsmos_cpu=0.0)
    started = time.thread_time()
    audio = piece[(segment.start - offset) * FRAME : (segment.end - offset) * FRAME]
    quality |= _loudness(audio)
    encoder.offer(candidate.rank, (draft, segment.start * FRAME_SECONDS, segment.seconds, quality["gain_db"]))
    mos = models.dnsmos(audio)
    quality |= {"dnsmos_sig": mos.sig, "dnsmos_bak": mos.bak, "dnsmos_ovrl": mos.ovrl}
    return Assessed(
        segment=segment.model_copy(update={"quality": quality}),
        silero_cpu=silero,
        dnsmos_cpu=time.thread_time() - started,
    )


def _measured(features: FrameFeatures, speech_map: SpeechMap, segments: list[Segment]) -> list[Segment]:
    return [s.model_copy(update={"quality": measure(features, speech_map, s)}) for s in segments]


def _usable(segment: Segment, rejected: dict[str, int]) -> bool:
    """Whether the segment passes the quality thresholds; counts the reason in `rejected` when not."""
    reason = _rejection(segment.quality)
    if reason:
        rejected[reason] = rejected.get(reason, 0) + 1
    return reason is None


def select(
    assessed: list[Segment], rejected: dict[str, int], speech_map: SpeechMap, sample_duration: int, max_samples: int
) -> list[int]:
    """Ranks (indices into `assessed`) of the best `max_samples` by the full score, in recording order;
    SplitError says why there are none."""
    target = sample_duration / FRAME_SECONDS
    usable = [rank for rank, segment in enumerate(assessed) if _usable(segment, rejected)]
    if not usable:
        raise _nothing_usable(rejected, speech_map, sample_duration)
    best = sorted(usable, key=lambda rank: -_score(assessed[rank], target))[:max_samples]
    return sorted(best, key=lambda rank: assessed[rank].start)


def _nothing_usable(rejected: dict[str, int], speech_map: SpeechMap, sample_duration: int) -> SplitError:
    if speech_map.unbroken_seconds > max(speech_map.speech_seconds, MIN_LENGTH_FRACTION * sample_duration):
        return _no_pauses(speech_map)
    if rejected:
        why = _REASONS[max(rejected, key=lambda r: rejected[r])]
    else:
        why = "speech must pause briefly between phrases, without long noise"
    return SplitError(f"No clean {sample_duration} s stretch of speech found: {why}")


def analysis_workers() -> int:
    """vCPUs this process may run on: the candidates assessed and the parts decoded at once (2 on the split
    Lambda at 3538 MB; Lambda shows 2 below 1,769 MB too, with less than one's time, where the threads
    only interleave at the same total CPU)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


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
    with tempfile.TemporaryDirectory(prefix="split-") as scratch:
        pcm = Path(scratch) / "recording.s16le"
        return _split(source, pcm, out_dir, max_samples, sample_duration, progress, refine)


def _split(
    source: Path, pcm: Path, out_dir: Path, max_samples: int, sample_duration: int, progress: Progress, refine: bool
) -> SplitResult:
    timings: dict[str, float] = {}
    progress("decoding")
    started = time.perf_counter()
    features = decode_features(source, pcm, parts=analysis_workers())
    timings["decode"] = time.perf_counter() - started
    progress("detecting speech")
    started = time.perf_counter()
    speech_map = vad.detect_speech(features)
    _refuse_without_speech(features, speech_map, sample_duration)
    timings["detect"] = time.perf_counter() - started
    progress("scoring samples")
    rejected: dict[str, int] = {}
    candidates = shortlist(pcm, features, speech_map, sample_duration, max_samples, rejected)
    if not candidates:
        raise _nothing_usable(rejected, speech_map, sample_duration)
    out_dir.mkdir(parents=True, exist_ok=True)
    drafts = [out_dir / f"candidate-{candidate.rank}.opus" for candidate in candidates]
    started = time.perf_counter()
    models.preload()  # before the threads race to load the models
    try:
        # One candidate per vCPU at a time (onnxruntime releases the GIL), with ffmpeg encoding beside them.
        # On an error (a refusal after DNSMOS included) the encoder stops after the batch under way.
        with (
            BackgroundEncoder(source, likely=max_samples) as encoder,
            ThreadPoolExecutor(analysis_workers(), thread_name_prefix="assess") as pool,
        ):
            results = list(
                pool.map(lambda c: assess(c, drafts[c.rank], features, speech_map, encoder, refine), candidates)
            )
            assessed = [result.segment for result in results]
            timings["silero"] = sum(result.silero_cpu for result in results)
            timings["dnsmos"] = sum(result.dnsmos_cpu for result in results)
            timings["candidates"] = len(candidates)
            chosen = select(assessed, rejected, speech_map, sample_duration, max_samples)
            progress(f"cutting {len(chosen)} samples")
            encoded = encoder.finish(keep=chosen)
        timings["score_and_encode"] = time.perf_counter() - started
        timings["wasted_encodes"] = len(set(encoded) - set(chosen))
        samples: list[SplitSample] = []
        for index, rank in enumerate(chosen, start=1):
            segment = assessed[rank]
            samples.append(SplitSample(
                index=index, path=drafts[rank].rename(out_dir / f"{index}.opus"),
                start=round(segment.start * FRAME_SECONDS, 3), duration=round(segment.seconds, 3),
                source_timestamp=format_timestamp(segment.start * FRAME_SECONDS), quality=segment.quality,
            ))  # fmt: skip
    finally:
        for draft in drafts:
            draft.unlink(missing_ok=True)  # the candidates not chosen; every one after an error
    return SplitResult(
        samples=samples,
        recording_duration=round(features.seconds, 2),
        speech_seconds=round(speech_map.speech_seconds, 2),
        timings={k: round(v, 3) for k, v in timings.items()},
    )
