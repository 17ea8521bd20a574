"""Log-mel features and character ids for the CPU speaker-adaptation model."""

import numpy as np

SAMPLE_RATE = 16_000
N_MELS = 80
N_FFT = 1024
HOP = 256  # 62.5 frames/s
VOCAB = 128  # ASCII; other characters map to 0


def log_mel(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[frames, N_MELS] natural-log mel spectrogram (floor 1e-5)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=wav, sr=sample_rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    return np.log(np.maximum(mel, 1e-5)).T.astype(np.float32)


def mel_to_audio(logmel: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Griffin-Lim inversion: enough to judge the voice of a predicted spectrogram, not for production."""
    import librosa

    mel = np.exp(logmel.T)
    return librosa.feature.inverse.mel_to_audio(mel, sr=sample_rate, n_fft=N_FFT, hop_length=HOP, n_iter=32)


def char_ids(text: str) -> np.ndarray:
    return np.array([c if c < VOCAB else 0 for c in text.lower().encode("ascii", "replace")], dtype=np.int64)
