"""Audio decode/encode through the ffmpeg binary from imageio-ffmpeg (any input container/codec)."""

import subprocess
from pathlib import Path

import numpy as np

from voice_onboarding.contract.quality import OPUS_BITRATE_KBPS, OPUS_SAMPLE_RATE

SAMPLE_RATE = 16_000


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def load_mono(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any audio file to float32 mono at `sample_rate`."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ValueError(f"cannot decode {path.name}: {proc.stderr.decode(errors='replace').strip()[:200]}")
    wav = np.frombuffer(proc.stdout, dtype=np.float32).copy()
    if wav.size == 0:
        raise ValueError(f"{path.name} contains no audio")
    return wav


def encode_opus(wav: np.ndarray, sample_rate: int) -> bytes:
    """Encode float mono PCM to Ogg/Opus bytes, the format of every file the service serves
    (contract/quality.py): 96 kb/s CBR (libopus' default VBR overshoots to ~160 on speech), mono, 48 kHz."""
    pcm = np.clip(wav, -1.0, 1.0).astype(np.float32).tobytes()
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-i", "-",
         "-ac", "1", "-ar", str(OPUS_SAMPLE_RATE), "-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k",
         "-vbr", "off", "-f", "ogg", "-"],
        input=pcm,
        capture_output=True,
        check=True,
    )  # fmt: skip
    return proc.stdout
