"""The one loudness rule for every sample the service writes, in plain Python: the split Lambda measures
with numpy (audio/loudness.py), the API Lambda, which ships no numpy, with ffmpeg's ebur128 filter."""

from voice_onboarding.contract.quality import LOUDNESS_TARGET_LUFS, TRUE_PEAK_CEILING_DBTP

# The splitter reads the peak on a 16 kHz analysis signal, which can miss inter-sample and >8 kHz peaks of
# the full-band encode: the gain keeps this much below the true-peak ceiling.
PEAK_MARGIN_DB = 1.0
MAX_GAIN_DB = 30.0  # near-silence (a failed recording) is not blown up into loud hiss


def gain_to_target(lufs: float, peak_db: float) -> float:
    """The linear gain (dB) to LOUDNESS_TARGET_LUFS, lowered when the peak would pass TRUE_PEAK_CEILING_DBTP
    (less PEAK_MARGIN_DB), at most MAX_GAIN_DB."""
    return min(LOUDNESS_TARGET_LUFS - lufs, TRUE_PEAK_CEILING_DBTP - PEAK_MARGIN_DB - peak_db, MAX_GAIN_DB)
