"""Voice-prompt selection: what a Kyutai model hears as "the voice" of a sample.

Both Kyutai families continue whatever their prompt ends with: a prompt cut mid-word makes every generation
start by finishing that word. So the prompt is the longest stretch of the sample that fits the engine's limit
and *ends in a pause*, with leading silence dropped, trailing silence trimmed to a short tail (a long
silence delays the onset) and loudness normalised to one target (BS.1770, pyloudnorm), so that voices made
from quiet and loud recordings speak at the same level.
"""

from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.02
# A pause is this long a run of frames more than PAUSE_DB below the loudest frame.
MIN_PAUSE_SECONDS = 0.12
PAUSE_DB = 30.0
# Silence kept after the last word (as pocket-tts's own end_on_pause keeps 80 ms).
TAIL_SECONDS = 0.08
LEAD_SECONDS = 0.05
TARGET_LUFS = -23.0
PEAK_CEILING = 0.98
# Below this much speech a prompt carries no usable voice.
MIN_PROMPT_SECONDS = 1.0


@dataclass
class Prompt:
    wav: np.ndarray
    sample_rate: int
    # Where the prompt was cut in the source sample, and why: "pause" (a pause inside the limit),
    # "end" (the whole sample fit) or "limit" (no pause found: cut at the limit, the only mid-word case).
    start_seconds: float
    end_seconds: float
    cut: str
    loudness_lufs: float | None

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate


def _frame_db(wav: np.ndarray, frame: int) -> np.ndarray:
    n = len(wav) // frame
    rms = np.sqrt(np.mean(wav[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(rms + 1e-9)


def _pauses(quiet: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """[start, end) frame runs of `quiet` at least `min_frames` long."""
    runs, start = [], None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_frames:
                runs.append((start, i))
            start = None
    return runs


def normalize_loudness(
    wav: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS
) -> tuple[np.ndarray, float | None]:
    """Gain to `target_lufs` (integrated loudness), peaks kept under PEAK_CEILING; returns the measured loudness."""
    import pyloudnorm

    try:
        measured = float(pyloudnorm.Meter(sample_rate).integrated_loudness(wav.astype(np.float64)))
    except ValueError:  # shorter than one 400 ms gating block
        measured = float("-inf")
    if not np.isfinite(measured):
        return wav, None
    out = wav * (10 ** ((target_lufs - measured) / 20))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > PEAK_CEILING:
        out = out * (PEAK_CEILING / peak)
    return out.astype(np.float32), measured


def select_prompt(wav: np.ndarray, sample_rate: int, max_seconds: float) -> Prompt:
    """The prompt: at most `max_seconds`, ending in a pause, trimmed and loudness-normalised."""
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    db = _frame_db(wav, frame)
    if db.size == 0 or db.max() < -80:
        raise ValueError("no speech in the sample to make a voice prompt from")
    quiet = db < db.max() - PAUSE_DB
    loud = np.flatnonzero(~quiet)
    first = max(0, int(loud[0]) - int(LEAD_SECONDS / FRAME_SECONDS))
    last = int(loud[-1]) + 1  # frame after the last loud one
    limit = first + int(max_seconds / FRAME_SECONDS)
    tail = int(TAIL_SECONDS / FRAME_SECONDS)
    if last + tail <= limit:
        end, cut = last, "end"
    else:
        # The last pause that starts within the limit (leaving room for the tail): cut at its start.
        starts = [s for s, _ in _pauses(quiet, int(MIN_PAUSE_SECONDS / FRAME_SECONDS)) if first < s <= limit - tail]
        if starts and (starts[-1] - first) * FRAME_SECONDS >= MIN_PROMPT_SECONDS:
            end, cut = starts[-1], "pause"
        else:
            end, cut = limit - tail, "limit"
    stop = min(len(wav), (end + tail) * frame)
    out = wav[first * frame : stop].astype(np.float32).copy()
    if (stop - first * frame) / sample_rate < MIN_PROMPT_SECONDS:
        raise ValueError(f"too little speech for a voice prompt (< {MIN_PROMPT_SECONDS:g} s)")
    # Fade the tail so the prompt ends in silence even when cut at the limit.
    fade = min(len(out), tail * frame)
    out[len(out) - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
    out, lufs = normalize_loudness(out, sample_rate)
    return Prompt(out, sample_rate, first * frame / sample_rate, stop / sample_rate, cut, lufs)
