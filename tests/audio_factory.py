"""Real audio made by the tests: ffmpeg tones/noise and espeak-ng speech. Nothing checked in."""

import shutil
import subprocess
from pathlib import Path

from voice_onboarding.audio.ffmpeg import ffmpeg_exe


def tone(path: Path, seconds: float, frequency: int = 220, codec_args: tuple[str, ...] = ()) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={frequency}:duration={seconds}:sample_rate=16000", *codec_args, str(path)],
        check=True,
    )  # fmt: skip
    return path


def silence(path: Path, seconds: float) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
         "anullsrc=r=16000:cl=mono", "-t", str(seconds), str(path)],
        check=True,
    )  # fmt: skip
    return path


def noise(path: Path, seconds: float, amplitude: float = 0.5) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
         f"anoisesrc=d={seconds}:c=white:r=16000:a={amplitude}", str(path)],
        check=True,
    )  # fmt: skip
    return path


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speech(path: Path, text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> Path:
    """Synthesize speech to WAV with espeak-ng (Debian package, installed by .ci/run)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text], check=True)
    return path


def concat(path: Path, parts: list[Path]) -> Path:
    """Concatenate audio files (any format ffmpeg reads) into one file, resampled to 16 kHz mono."""
    inputs: list[str] = []
    for part in parts:
        inputs += ["-i", str(part)]
    streams = "".join(f"[{i}:a]aresample=16000,aformat=channel_layouts=mono[a{i}];" for i in range(len(parts)))
    joined = "".join(f"[a{i}]" for i in range(len(parts)))
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", *inputs, "-filter_complex",
         f"{streams}{joined}concat=n={len(parts)}:v=0:a=1[out]", "-map", "[out]", str(path)],
        check=True,
    )  # fmt: skip
    return path
