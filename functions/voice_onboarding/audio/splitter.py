"""Split a recording into clean speech samples, cutting only in pauses.

Memory stays flat with the recording's length: ffmpeg streams 16 kHz mono PCM through a pipe and only
per-frame statistics (energy, clipping) are kept, ~12 bytes per 30 ms frame (~3 MB for two hours).
Samples are then cut from the source by ffmpeg itself, one short seek-and-encode per sample."""

import subprocess
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from voice_onboarding.audio.ffmpeg import OPUS_BITRATE, ffmpeg_exe
from voice_onboarding.domain.voice import format_timestamp

SAMPLE_RATE = 16_000
FRAME_SECONDS = 0.03
FRAME = int(SAMPLE_RATE * FRAME_SECONDS)
CHUNK_FRAMES = 2000  # 60 s of audio per read
MIN_PAUSE_SECONDS = 0.15  # shorter gaps are inside words (stops, plosives)
LONG_SILENCE_SECONDS = 1.5  # a sample never spans a silence this long
EDGE_PADDING_SECONDS = 0.08  # keep a breath of the pause on each side so onsets aren't clipped
CLIP_LEVEL = 32_000
MAX_CLIPPING_RATIO = 0.01
MIN_SPEECH_RATIO = 0.3
MIN_SAMPLE_FRACTION = 0.6  # a sample shorter than 60% of the target is a fragment, not a sample


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


class _FrameStats(BaseModel):
    model_config = {"arbitrary_types_allowed": True}

    db: np.ndarray  # per-frame RMS level, dBFS
    clipped: np.ndarray  # per-frame count of clipped samples


def analyse(source: Path) -> _FrameStats:
    """Stream-decode and reduce to per-frame level and clipping counts."""
    command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(source), "-vn", "-ac", "1",
               "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]  # fmt: skip
    levels: list[np.ndarray] = []
    clipped: list[np.ndarray] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        remainder = b""
        while True:
            chunk = process.stdout.read(FRAME * 2 * CHUNK_FRAMES)
            if not chunk:
                break
            data = remainder + chunk
            usable = len(data) // (FRAME * 2) * FRAME * 2
            remainder = data[usable:]
            frames = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, FRAME).astype(np.float32)
            power = np.mean(frames * frames, axis=1) / (32768.0**2)
            levels.append(10 * np.log10(power + 1e-12))
            clipped.append(np.count_nonzero(np.abs(frames) >= CLIP_LEVEL, axis=1))
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if not levels:
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else "no audio stream"
        raise SplitError(f"Recording could not be decoded: {reason[:200]}")
    return _FrameStats(db=np.concatenate(levels), clipped=np.concatenate(clipped))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def detect_speech(db: np.ndarray) -> tuple[np.ndarray, float]:
    """Energy VAD with an adaptive noise floor. Returns the per-frame speech mask and the floor."""
    floor = float(np.percentile(db, 10))
    loud = float(np.percentile(db, 95))
    if loud < -55:
        raise SplitError("Recording contains no speech (it is silent)")
    # Speech rises well above its own pauses; stationary noise or a steady tone does not.
    if loud - floor < 12:
        raise SplitError("Recording contains no speech: only steady noise or tone (no pauses between words)")
    threshold = max(floor + 0.35 * (loud - floor), -50.0)
    speech = db > threshold
    # Close gaps shorter than a pause: they are within a word.
    min_pause = int(MIN_PAUSE_SECONDS / FRAME_SECONDS)
    for start, end in _runs(~speech):
        if end - start < min_pause and start > 0 and end < len(speech):
            speech[start:end] = True
    return speech, floor


def plan_segments(speech: np.ndarray, sample_duration: float) -> list[tuple[int, int]]:
    """Frame ranges of samples: each starts and ends inside a pause, near `sample_duration` long."""
    target = sample_duration / FRAME_SECONDS
    pauses = [(s, e) for s, e in _runs(~speech) if e - s >= MIN_PAUSE_SECONDS / FRAME_SECONDS]
    long_silence = LONG_SILENCE_SECONDS / FRAME_SECONDS
    padding = int(EDGE_PADDING_SECONDS / FRAME_SECONDS)
    segments: list[tuple[int, int]] = []
    speech_runs = _runs(speech)
    if not speech_runs:
        return segments
    start = max(0, speech_runs[0][0] - padding)
    position = 0  # index into pauses
    while True:
        # Pauses after the current start, until a long silence (a hard boundary) or the end.
        candidates = []
        while position < len(pauses) and pauses[position][0] <= start:
            position += 1
        hard_end = None
        for pause in pauses[position:]:
            if pause[0] - start > 1.4 * target:
                break
            candidates.append(pause)
            if pause[1] - pause[0] >= long_silence:
                hard_end = pause
                break
        in_window = [p for p in candidates if p[0] - start >= MIN_SAMPLE_FRACTION * target]
        if in_window:
            # Closest to the target length; a longer pause wins ties (a sentence end beats a comma).
            cut = min(in_window, key=lambda p: abs(p[0] - start - target) - 0.5 * min(p[1] - p[0], 20))
            segments.append((start, min(cut[0] + padding, cut[1])))
            next_pause = cut
        elif hard_end is not None:
            next_pause = hard_end  # too little speech before a long silence: drop the fragment
        elif candidates:
            next_pause = candidates[-1]  # no pause near the target: drop, resume after the last pause seen
        else:
            break  # continuous sound with no pause until the end, or nothing left
        following = [r for r in speech_runs if r[0] >= next_pause[1]]
        if not following:
            break
        start = max(next_pause[1] - padding, following[0][0] - padding)
    return segments


def _quality(db: np.ndarray, clipped: np.ndarray, speech: np.ndarray, floor: float) -> dict[str, float]:
    speech_db = db[speech]
    # Digital silence reads as -120 dBFS; a real room never is. Clamp so SNR stays meaningful.
    floor = max(floor, -80.0)
    power = np.mean(10 ** (db / 10))
    return {
        "speech_ratio": round(float(np.mean(speech)), 3),
        "snr_db": round(float(np.mean(speech_db) - floor), 1) if speech_db.size else 0.0,
        "clipping_ratio": round(float(clipped.sum() / (len(db) * FRAME)), 5),
        "rms_dbfs": round(float(10 * np.log10(power + 1e-12)), 1),
    }


def encode_sample(source: Path, target: Path, start: float, duration: float) -> None:
    command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-ss", f"{start:.3f}", "-t", f"{duration:.3f}",
               "-i", str(source), "-vn", "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", OPUS_BITRATE,
               "-f", "ogg", str(target)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def split_recording(source: Path, out_dir: Path, max_samples: int, sample_duration: int) -> SplitResult:
    stats = analyse(source)
    speech, floor = detect_speech(stats.db)
    speech_seconds = float(speech.sum() * FRAME_SECONDS)
    recording_seconds = len(stats.db) * FRAME_SECONDS
    if speech_seconds < MIN_SAMPLE_FRACTION * sample_duration:
        raise SplitError(
            f"Recording is too short: {speech_seconds:.1f} s of speech, a {sample_duration} s sample needs "
            f"at least {MIN_SAMPLE_FRACTION * sample_duration:.0f} s"
        )
    candidates = []
    for start, end in plan_segments(speech, sample_duration):
        quality = _quality(stats.db[start:end], stats.clipped[start:end], speech[start:end], floor)
        if quality["clipping_ratio"] > MAX_CLIPPING_RATIO or quality["speech_ratio"] < MIN_SPEECH_RATIO:
            continue
        candidates.append((start, end, quality))
    if not candidates:
        raise SplitError(
            f"No clean {sample_duration} s stretch of speech found: speech must pause between phrases, "
            "without clipping or long noise"
        )
    # Keep the cleanest when there are more than asked, then restore recording order.
    ranked = sorted(candidates, key=lambda c: c[2]["speech_ratio"] * min(c[2]["snr_db"], 40), reverse=True)
    chosen = sorted(ranked[:max_samples], key=lambda c: c[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for index, (start, end, quality) in enumerate(chosen, start=1):
        start_s, duration = start * FRAME_SECONDS, (end - start) * FRAME_SECONDS
        path = out_dir / f"{index}.opus"
        encode_sample(source, path, start_s, duration)
        samples.append(
            SplitSample(
                index=index, path=path, start=round(start_s, 2), duration=round(duration, 2),
                source_timestamp=format_timestamp(start_s), quality=quality,
            )
        )  # fmt: skip
    return SplitResult(
        samples=samples, recording_duration=round(recording_seconds, 2), speech_seconds=round(speech_seconds, 2)
    )
