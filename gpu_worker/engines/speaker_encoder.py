"""Resemblyzer's VoiceEncoder, shared by every engine as the speaker-similarity judge.

Its weights ship inside the wheel, so it loads offline on CPU or GPU; loaded once per process.
"""

import functools
import threading

import numpy as np

_lock = threading.Lock()


@functools.cache
def _encoder(device: str):
    from resemblyzer import VoiceEncoder

    return VoiceEncoder(device=device, verbose=False)


def get_encoder(device: str | None = None):
    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _lock:
        return _encoder(dev)


def embed_utterance(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    from resemblyzer import preprocess_wav

    # preprocess_wav resamples to 16 kHz, normalises loudness and trims long silences (webrtcvad).
    processed = preprocess_wav(wav.astype(np.float32), source_sr=sample_rate)
    if processed.size < sample_rate // 4:
        raise ValueError("too little speech to embed (< 0.25 s after silence trimming)")
    emb = np.asarray(get_encoder().embed_utterance(processed), dtype=np.float32)
    return emb / (np.linalg.norm(emb) + 1e-9)


def embed_windows(wav: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """[n, 256] L2-normalised embeddings of `seconds`-long windows of a sample's speech, half-overlapping
    (silences trimmed first, as for the whole sample): what tells a sample mixing two speakers apart.
    Empty when the sample holds less speech than one window."""
    from resemblyzer import preprocess_wav

    processed = preprocess_wav(wav.astype(np.float32), source_sr=sample_rate)
    size = int(seconds * 16_000)  # preprocess_wav resamples to resemblyzer's 16 kHz
    if processed.size < size:
        return np.zeros((0, 256), dtype=np.float32)
    encoder = get_encoder()
    starts = range(0, processed.size - size + 1, size // 2)
    windows = np.stack([np.asarray(encoder.embed_utterance(processed[s : s + size])) for s in starts])
    return (windows / (np.linalg.norm(windows, axis=1, keepdims=True) + 1e-9)).astype(np.float32)
