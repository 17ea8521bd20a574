"""Real audio made by the tests: ffmpeg tones/noise and espeak-ng speech. Nothing checked in."""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

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


ESPEAK_MISSING = "espeak-ng not installed (`make test` installs it: apt-get install espeak-ng)"


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def require_espeak() -> None:
    """Skip the calling test or fixture, with one reason everywhere, when espeak-ng is missing
    (tests request the `espeak_ng` fixture of tests/conftest.py; speech() checks again for safety)."""
    if not espeak_available():
        pytest.skip(ESPEAK_MISSING)


def speech(path: Path, text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> Path:
    """Synthesize speech to WAV with espeak-ng (Debian package; `make test` installs it)."""
    require_espeak()
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


# --- recordings with known pauses ---------------------------------------------------------------
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "A journey of a thousand miles begins with a single step forward.",
    "Peter Piper picked a peck of pickled peppers for his sister.",
]


@dataclass
class KnownRecording:
    path: Path
    pauses: list[tuple[float, float]]  # (start, end) seconds of every inserted silence
    duration: float


def _duration(path: Path) -> float:
    from voice_onboarding.audio.ffmpeg import _DURATION_RE, _hms

    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    match = _DURATION_RE.search(out)
    assert match
    return _hms(match)


def _trimmed(source: Path, target: Path) -> Path:
    """espeak pads its output with silence; trim it so the inserted pauses are the only pauses."""
    edge = "silenceremove=start_periods=1:start_threshold=-45dB:start_silence=0.02"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-af", f"{edge},areverse,{edge},areverse", str(target)],
        check=True,
    )
    return target


def build_recording(folder: Path, count: int, pause_for) -> KnownRecording:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    pauses: list[tuple[float, float]] = []
    clock = 0.0
    for i in range(count):
        sentence = _trimmed(speech(folder / f"raw{i}.wav", SENTENCES[i % len(SENTENCES)]), folder / f"s{i}.wav")
        parts.append(sentence)
        clock += _duration(sentence)
        gap = pause_for(i)
        parts.append(silence(folder / f"p{i}.wav", gap))
        pauses.append((clock, clock + gap))
        clock += gap
    path = concat(folder / "recording.wav", parts)
    return KnownRecording(path=path, pauses=pauses, duration=clock)
