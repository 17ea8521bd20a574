"""Integrated loudness (ITU-R BS.1770-4 / EBU R128) of a mono float signal, in numpy only.

pyloudnorm implements the same measure but needs scipy (~100 MB, too much for the split Lambda). The
K-weighting (a +4 dB high shelf at 1.68 kHz, then a 38 Hz high-pass) is applied in the frequency domain
with the exact biquad responses at the signal's rate, then gated as the standard says: 400 ms blocks
every 100 ms, absolute gate -70 LUFS, relative gate -10 LU. tests/audio checks it against pyloudnorm."""

import math

import numpy as np

from voice_onboarding.audio.loudness_rule import gain_to_target

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1
# BS.1770 filter prototypes, as pyloudnorm parameterises them: (gain dB, centre Hz, Q).
_SHELF = (4.0, 1681.974450955533, 0.7071752369554196)
_HIGH_PASS = (38.13547087602444, 0.5003270373238773)
_IR_PAD_SECONDS = 0.5  # zero padding so the high-pass impulse response does not wrap around


def _biquad_response(b: tuple[float, ...], a: tuple[float, ...], w: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * w)
    return (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)


def k_weighting(frequencies: np.ndarray, rate: int) -> np.ndarray:
    """Complex response of the K-weighting filter at `frequencies` (Hz) for a signal sampled at `rate`."""
    w = 2 * np.pi * frequencies / rate
    gain, fc, q = _SHELF
    big_a = 10 ** (gain / 40)
    w0 = 2 * math.pi * fc / rate
    alpha, cos = math.sin(w0) / (2 * q), math.cos(w0)
    root = 2 * math.sqrt(big_a) * alpha
    shelf = _biquad_response(
        (
            big_a * ((big_a + 1) + (big_a - 1) * cos + root),
            -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
            big_a * ((big_a + 1) + (big_a - 1) * cos - root),
        ),
        (
            (big_a + 1) - (big_a - 1) * cos + root,
            2 * ((big_a - 1) - (big_a + 1) * cos),
            (big_a + 1) - (big_a - 1) * cos - root,
        ),
        w,
    )
    fc, q = _HIGH_PASS
    w0 = 2 * math.pi * fc / rate
    alpha, cos = math.sin(w0) / (2 * q), math.cos(w0)
    high_pass = _biquad_response(((1 + cos) / 2, -(1 + cos), (1 + cos) / 2), (1 + alpha, -2 * cos, 1 - alpha), w)
    return shelf * high_pass


def integrated_lufs(signal: np.ndarray, rate: int) -> float:
    """Gated integrated loudness in LUFS; -inf for silence or a signal shorter than one block."""
    block, step = int(BLOCK_SECONDS * rate), int(STEP_SECONDS * rate)
    if signal.size < block:
        return float("-inf")
    # A power of two: numpy's FFT of an awkward length (a 15.5 s sample's 248,000 points) cost ~30 ms.
    size = 1 << (signal.size + int(_IR_PAD_SECONDS * rate) - 1).bit_length()
    spectrum = np.fft.rfft(signal.astype(np.float64), n=size)
    weighted = np.fft.irfft(spectrum * k_weighting(np.fft.rfftfreq(size, 1 / rate), rate), n=size)[: signal.size]
    energy = np.concatenate([[0.0], np.cumsum(weighted * weighted)])
    starts = np.arange(0, signal.size - block + 1, step)
    power = (energy[starts + block] - energy[starts]) / block
    loudness = -0.691 + 10 * np.log10(power + 1e-20)
    gated = power[loudness > ABSOLUTE_GATE_LUFS]
    if gated.size == 0:
        return float("-inf")
    relative = -0.691 + 10 * math.log10(float(gated.mean())) + RELATIVE_GATE_LU
    kept = power[(loudness > ABSOLUTE_GATE_LUFS) & (loudness > relative)]
    return -0.691 + 10 * math.log10(float(kept.mean()))


def normalisation(signal: np.ndarray, rate: int) -> tuple[float, float, float]:
    """(measured LUFS, peak dBFS, gain dB): the linear gain to LOUDNESS_TARGET_LUFS, lowered when the peak
    would pass TRUE_PEAK_CEILING_DBTP (less PEAK_MARGIN_DB), at most MAX_GAIN_DB. A silent signal counts
    as -70 LUFS."""
    lufs = integrated_lufs(signal, rate)
    if not np.isfinite(lufs):
        lufs = ABSOLUTE_GATE_LUFS
    peak_db = 20 * math.log10(float(np.max(np.abs(signal))) + 1e-9) if signal.size else -180.0
    return lufs, peak_db, gain_to_target(lufs, peak_db)
