"""Sample-quality thresholds, one set for the splitter (which drops segments below them) and the
worker (which flags samples below them, e.g. uploaded ones that were never split)."""

MIN_SPEECH_RATIO = 0.5  # fraction of frames the VAD calls speech
MIN_SNR_DB = 12.0  # speech level over the local noise floor
MAX_CLIPPING_RATIO = 0.002  # fraction of samples at full scale
