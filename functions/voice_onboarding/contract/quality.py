"""Sample-quality thresholds, one set for the splitter (which drops segments below them) and the
worker (which flags samples below them, e.g. uploaded ones that were never split)."""

MIN_SPEECH_RATIO = 0.5  # fraction of frames the VAD calls speech
MIN_SNR_DB = 12.0  # speech level over the local noise floor
MAX_CLIPPING_RATIO = 0.002  # fraction of samples at full scale
MIN_DNSMOS_OVRL = 1.6  # DNSMOS P.835 overall (1..5) below this: heavily degraded speech

# Sample length: every split sample lasts MIN..MAX x the asked sample_duration; MAX is a hard cap.
MIN_LENGTH_FRACTION = 0.6
MAX_LENGTH_FRACTION = 1.1
# A cut lies in a pause at least this far from speech energy (word tails included), or in the middle of a
# pause shorter than twice this (the splitter's MIN_GUARD_FRAMES still keep it 60 ms from speech).
CUT_GUARD_SECONDS = 0.1

# Loudness of every split sample (EBU R128 / ITU-R BS.1770): integrated target and peak ceiling.
LOUDNESS_TARGET_LUFS = -23.0
TRUE_PEAK_CEILING_DBTP = -1.0

# Every audio file the service writes (split, uploaded and test samples, originals).
OPUS_BITRATE_KBPS = 96
OPUS_SAMPLE_RATE = 48_000

# Mixed speakers (worker): windows of a sample are embedded; a window whose cosine to the voice's
# centroid falls this far below the sample set's typical window similarity is another speaker.
MIXED_WINDOW_SECONDS = 2.5
MIXED_WINDOW_MARGIN = 0.05  # cosine below the median window similarity of the voice (or K x MAD)
MIXED_MIN_FRACTION = 0.2  # share of a sample's windows that must disagree to flag it
