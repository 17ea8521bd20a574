"""Voice-activity detection on 30 ms frames of 16 kHz mono PCM, in numpy only (no torch, no model
files: it fits the split Lambda's zip and costs ~1 s of CPU per hour of audio).

Decoding feeds PCM chunks to `FeatureExtractor`, which keeps three numbers per frame (level, clipped
sample count, spectral flatness): ~10 bytes per frame, ~2.4 MB for two hours. `detect_speech` then
classifies frames with an adaptive noise floor and rejects loud stretches that are not speech."""

import numpy as np
from pydantic import BaseModel, ConfigDict

SAMPLE_RATE = 16_000
FRAME_SECONDS = 0.03
FRAME = int(SAMPLE_RATE * FRAME_SECONDS)  # 480 samples
CLIP_LEVEL = 32_000  # |sample| at or above this counts as clipped (full scale is 32767)

_FFT = 512
_BAND = (3, 129)  # FFT bins ~100 Hz .. 4 kHz, where voiced speech is harmonic
_WINDOW = np.hanning(FRAME).astype(np.float32)

BLOCK_FRAMES = int(1.0 / FRAME_SECONDS)  # the adaptive levels are computed per ~1 s block
FLOOR_WINDOW_SECONDS = 20.0  # noise floor = 10th percentile of the level over this window
# ... unless pauses fill less than a tenth of the window (a reader who hardly pauses): the 10th percentile
# then lies in quiet speech, far above the 3rd, and the floor is taken as the 3rd plus this margin instead
# (for a steady floor with pauses the two percentiles are within 1-2 dB, and nothing changes).
LOW_FLOOR_PERCENTILE = 3
LOW_FLOOR_MARGIN_DB = 6.0
PEAK_WINDOW_SECONDS = 60.0  # speech level = 95th percentile over this window
MIN_THRESHOLD_DB = -60.0  # never call anything quieter than this speech
MIN_MARGIN_DB = 6.0  # speech rises at least this much above the local floor
MIN_PAUSE_SECONDS = 0.15  # shorter dips are inside words (stop consonants), not pauses
# Utterance checks: speech is partly voiced (harmonic -> low spectral flatness) and its level moves
# with syllables. Broadband noise fails the first, a tone or hum fails the second.
VOICED_FLATNESS = 0.25
MIN_VOICED_FRACTION = 0.2
MIN_LEVEL_STD_DB = 3.0
MAX_UNBROKEN_SECONDS = 30.0  # nobody speaks this long without a 150 ms pause: it is noise or music
# The same checks per frame over a short window, so noise that runs straight into speech (no pause
# between them) is still told apart from it: within 0.6 s speech always has syllable dips.
LOCAL_WINDOW_SECONDS = 0.6
MIN_LOCAL_LEVEL_STD_DB = 2.0
MIN_LOCAL_VOICED_FRACTION = 0.1
# Word tails: a final fricative or stop release decays well below the onset threshold (7-15 dB above the
# floor) before the pause really starts. Speech is extended outward over frames still this far above the
# *local* noise floor (90 ms smoothed), for at most TAIL_SECONDS, never into a noise stretch.
TAIL_MARGIN_DB = 4.0
TAIL_SECONDS = 0.45


class FrameFeatures(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    db: np.ndarray  # RMS level per frame, dBFS
    clipped: np.ndarray  # clipped samples per frame
    flatness: np.ndarray  # spectral flatness per frame in the speech band (0 tonal .. 1 white noise)

    @property
    def frames(self) -> int:
        return int(self.db.size)

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_SECONDS


class FeatureExtractor:
    """Accumulates per-frame features from s16le PCM fed in arbitrary chunk sizes."""

    def __init__(self) -> None:
        self._remainder = b""
        self._db: list[np.ndarray] = []
        self._clipped: list[np.ndarray] = []
        self._flatness: list[np.ndarray] = []

    def feed(self, data: bytes) -> None:
        data = self._remainder + data
        usable = len(data) // (FRAME * 2) * FRAME * 2
        self._remainder = data[usable:]
        if not usable:
            return
        frames = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, FRAME)
        samples = frames.astype(np.float32) / 32768.0
        power = np.mean(samples * samples, axis=1)
        self._db.append((10 * np.log10(power + 1e-12)).astype(np.float32))
        self._clipped.append(np.count_nonzero(np.abs(frames.astype(np.int32)) >= CLIP_LEVEL, axis=1).astype(np.uint16))
        spectrum = np.abs(np.fft.rfft(samples * _WINDOW, n=_FFT, axis=1)[:, _BAND[0] : _BAND[1]]) ** 2 + 1e-12
        flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
        self._flatness.append(flatness.astype(np.float32))

    def finish(self) -> FrameFeatures:
        def join(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        return FrameFeatures(
            db=join(self._db, np.float32),
            clipped=join(self._clipped, np.uint16),
            flatness=join(self._flatness, np.float32),
        )


class SpeechMap(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    speech: np.ndarray  # bool per frame: speech (words and the short dips inside them)
    noise: np.ndarray  # bool per frame: loud but not speech (noise bursts, tones, music-like beds)
    floor_db: np.ndarray  # adaptive noise floor per frame, dBFS
    # Of the noise: voiced, syllable-like sound running longer than MAX_UNBROKEN_SECONDS without a pause
    # (speech that never pauses, or music); a sample cannot be cut out of it.
    unbroken_seconds: float = 0.0

    @property
    def speech_seconds(self) -> float:
        return float(self.speech.sum()) * FRAME_SECONDS

    @property
    def noise_seconds(self) -> float:
        return float(self.noise.sum()) * FRAME_SECONDS


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def rolling_percentile(values: np.ndarray, q: float | list[float], window_seconds: float) -> np.ndarray:
    """Per-frame q-th percentile of the values within +-window/2, evaluated once per ~1 s block
    so a two-hour recording costs ~7200 small percentiles rather than one per frame. A list of q gives
    one row per percentile."""
    n = values.size
    blocks = -(-n // BLOCK_FRAMES)
    half = int(window_seconds / 2 / (BLOCK_FRAMES * FRAME_SECONDS))
    out = np.empty((blocks, np.size(q)), dtype=np.float32)
    for b in range(blocks):
        lo, hi = max(0, (b - half) * BLOCK_FRAMES), min(n, (b + half + 1) * BLOCK_FRAMES)
        out[b] = np.percentile(values[lo:hi], q)
    per_frame = np.repeat(out, BLOCK_FRAMES, axis=0)[:n].T
    return per_frame if isinstance(q, list) else per_frame[0]


def _moving_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centered moving average (edges use the part of the window inside the array)."""
    sums = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    index = np.arange(values.size)
    lo, hi = np.maximum(index - width // 2, 0), np.minimum(index + width // 2 + 1, values.size)
    return (sums[hi] - sums[lo]) / (hi - lo)


def _noise_like(features: FrameFeatures) -> np.ndarray:
    """Frames whose surroundings are steady (tone, hum, stationary noise) or never voiced (hiss)."""
    width = int(round(LOCAL_WINDOW_SECONDS / FRAME_SECONDS))
    db = features.db.astype(np.float64)
    mean = _moving_mean(db, width)
    std = np.sqrt(np.maximum(_moving_mean(db * db, width) - mean * mean, 0.0))
    voiced = _moving_mean((features.flatness < VOICED_FLATNESS).astype(np.float64), width)
    return (std < MIN_LOCAL_LEVEL_STD_DB) | (voiced < MIN_LOCAL_VOICED_FRACTION)


def _speech_like(features: FrameFeatures, start: int, end: int) -> bool:
    voiced = float(np.mean(features.flatness[start:end] < VOICED_FLATNESS))
    level_std = float(np.std(features.db[start:end]))
    return voiced >= MIN_VOICED_FRACTION and level_std >= MIN_LEVEL_STD_DB


def detect_speech(features: FrameFeatures) -> SpeechMap:
    db = features.db
    # Digital silence reads -120 dBFS; clamp so it does not drag the threshold to nothing.
    usual, lowest = rolling_percentile(db, [10, LOW_FLOOR_PERCENTILE], FLOOR_WINDOW_SECONDS)
    floor = np.maximum(np.minimum(usual, lowest + LOW_FLOOR_MARGIN_DB), -90.0)
    peak = np.maximum(rolling_percentile(db, 95, PEAK_WINDOW_SECONDS), floor)
    threshold = np.maximum(np.maximum(floor + 0.35 * (peak - floor), floor + MIN_MARGIN_DB), MIN_THRESHOLD_DB)
    loud = db > threshold
    noise_like = _noise_like(features)
    active = loud & ~noise_like
    # Dips shorter than a pause are within a word: close them so words are never split.
    min_pause = int(round(MIN_PAUSE_SECONDS / FRAME_SECONDS))
    for start, end in runs(~active):
        if end - start < min_pause and start > 0 and end < active.size:
            active[start:end] = True
    speech = np.zeros_like(active)
    noise = loud & noise_like & ~active
    unbroken = 0
    for start, end in runs(active):
        like = _speech_like(features, start, end)
        too_long = (end - start) * FRAME_SECONDS > MAX_UNBROKEN_SECONDS
        target = speech if like and not too_long else noise
        target[start:end] = True
        unbroken += end - start if like and too_long else 0
    return SpeechMap(
        speech=_with_tails(db, floor, speech, noise),
        noise=noise,
        floor_db=floor,
        unbroken_seconds=unbroken * FRAME_SECONDS,
    )


def smoothed_db(db: np.ndarray, width: int = 3) -> np.ndarray:
    """Level averaged in the power domain over `width` frames (a 30 ms frame of noise alone jitters)."""
    return (10.0 * np.log10(_moving_mean(10.0 ** (db.astype(np.float64) / 10.0), width) + 1e-12)).astype(np.float32)


def _with_tails(db: np.ndarray, floor: np.ndarray, speech: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Speech runs grown outward over the quiet onsets and tails of their first and last words."""
    above = (smoothed_db(db) > floor + TAIL_MARGIN_DB) & ~noise
    limit = int(round(TAIL_SECONDS / FRAME_SECONDS))
    grown = speech.copy()
    n = speech.size
    for start, end in runs(speech):
        tail = end
        while tail < n and tail - end < limit and above[tail] and not speech[tail]:
            tail += 1
        head = start
        while head > 0 and start - head < limit and above[head - 1] and not speech[head - 1]:
            head -= 1
        grown[head:tail] = True
    return grown
