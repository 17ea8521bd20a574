"""Session-cached recordings for the splitter tests (generated once, reused by every test)."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import audio_factory
from voice_onboarding.audio.ffmpeg import ffmpeg_exe


@dataclass
class Interrupted:
    """The known speech recording twice, with a stretch of tone between the copies."""

    path: Path
    tone: tuple[float, float]  # seconds
    first: audio_factory.KnownRecording


@pytest.fixture(scope="session")
def interrupted_recording(
    speech_recording: audio_factory.KnownRecording, tmp_path_factory: pytest.TempPathFactory
) -> Interrupted:
    folder = tmp_path_factory.mktemp("interrupted")
    tone = audio_factory.tone(folder / "tone.wav", 12, frequency=440)
    path = audio_factory.concat(folder / "interrupted.wav", [speech_recording.path, tone, speech_recording.path])
    return Interrupted(
        path=path, tone=(speech_recording.duration, speech_recording.duration + 12), first=speech_recording
    )


@pytest.fixture(scope="session")
def noisy_then_clean(speech_recording: audio_factory.KnownRecording, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speech recording under loud pink noise, then the same speech clean (opus, like an original)."""
    folder = tmp_path_factory.mktemp("noisy")
    noisy = folder / "noisy.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_recording.path), "-filter_complex",
         "anoisesrc=c=pink:r=16000:a=0.05[n];[0:a][n]amix=inputs=2:duration=first:normalize=0", str(noisy)],
        check=True,
    )  # fmt: skip
    joined = audio_factory.concat(folder / "joined.wav", [noisy, speech_recording.path])
    target = folder / "noisy_then_clean.opus"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(joined), "-c:a", "libopus", "-b:a", "96k", str(target)],
        check=True,
    )
    return target
