"""ffmpeg operations on uploaded audio. ffmpeg comes from the imageio-ffmpeg wheel, so local mode,
tests and the Lambda zip all carry the same static binary with no system install."""

import re
import subprocess
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from voice_onboarding.audio.loudness_rule import gain_to_target
from voice_onboarding.contract.quality import OPUS_BITRATE_KBPS, OPUS_SAMPLE_RATE
from voice_onboarding.domain.errors import InvalidAudio

OPUS_BITRATE = f"{OPUS_BITRATE_KBPS}k"
# Every file the service writes is Ogg/Opus 96 kb/s mono 48 kHz. libopus' default unconstrained VBR
# turns "96k" into 150-165 kb/s on speech; `-vbr off` (CBR) holds it at 96 (constrained VBR gives
# 86-95 depending on the material), so served files land at 96-98 kb/s with the Ogg overhead.
OPUS_ARGS = (
    "-ac",
    "1",
    "-ar",
    str(OPUS_SAMPLE_RATE),
    "-c:a",
    "libopus",
    "-b:a",
    OPUS_BITRATE,
    "-vbr",
    "off",
    "-f",
    "ogg",
)
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")
_TIME_RE = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


class AudioInfo(BaseModel):
    codec: str
    duration: float | None
    container: str | None = None


def _hms(match: re.Match[str]) -> float:
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def probe(path: Path) -> AudioInfo:
    """What ffmpeg sees in the file (imageio-ffmpeg ships no ffprobe, so parse `ffmpeg -i`)."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    stream = _AUDIO_STREAM_RE.search(result.stderr)
    if stream is None:
        raise InvalidAudio("File is not a supported audio file: no audio stream found")
    duration = _DURATION_RE.search(result.stderr)
    container = re.search(r"Input #0, ([\w,]+), from", result.stderr)
    return AudioInfo(
        codec=stream.group(1),
        duration=_hms(duration) if duration else None,
        container=container.group(1) if container else None,
    )


def transcode_to_opus(source: Path, target: Path, timeout: float = 300, normalise: bool = False) -> float:
    """Decode anything ffmpeg reads and encode opus 96 kbps mono 48 kHz (the seed's storage format).
    Returns the decoded duration in seconds. Corrupt or non-audio input raises InvalidAudio.
    `normalise`: a sample, brought to the loudness target like split samples (measured on the first
    encode, then encoded again from the source with the gain)."""
    duration = _transcode(source, target, timeout, gain_db=0.0)
    if normalise:
        # Measured by ffmpeg (BS.1770 gating, like audio/loudness.py): the API Lambda ships no numpy.
        lufs, peak_db = measure_loudness(target, timeout)
        gain = gain_to_target(lufs, peak_db)
        if abs(gain) > 0.1:
            _transcode(source, target, timeout, gain_db=gain)
    return duration


_INTEGRATED_RE = re.compile(r"^\s*I:\s*(-?[\d.]+|-inf) LUFS", re.MULTILINE)
_PEAK_RE = re.compile(r"^\s*Peak:\s*(-?[\d.]+|-inf) dBFS", re.MULTILINE)


def measure_loudness(path: Path, timeout: float = 300) -> tuple[float, float]:
    """(integrated LUFS, sample peak dBFS) of a whole file, from ffmpeg's ebur128 summary. Silence counts
    as -70 LUFS (the absolute gate), as in audio/loudness.py."""
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-af", "ebur128=peak=sample", "-f", "null", "-",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    integrated, peak = _INTEGRATED_RE.findall(result.stderr), _PEAK_RE.findall(result.stderr)
    if result.returncode != 0 or not integrated or not peak:
        raise InvalidAudio("Audio loudness could not be measured")
    lufs, peak_db = float(integrated[-1]), float(peak[-1])  # float("-inf") parses
    return (lufs if lufs > -70 else -70.0), (peak_db if peak_db > -180 else -180.0)


def _transcode(source: Path, target: Path, timeout: float, gain_db: float) -> float:
    if source.stat().st_size == 0:
        raise InvalidAudio("Uploaded file is empty")
    probe(source)
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-stats",
        "-i", str(source), "-vn", "-map", "0:a:0", "-af", f"volume={gain_db:.2f}dB", *OPUS_ARGS, str(target),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    times = list(_TIME_RE.finditer(result.stderr))
    errors = [line for line in result.stderr.splitlines() if line and not line.startswith("size=")]
    # ffmpeg exits 0 on some truncated inputs while logging decode errors; treat those as corrupt too.
    if result.returncode != 0 or not times or not target.exists() or target.stat().st_size == 0:
        reason = errors[-1] if errors else "could not decode audio"
        raise InvalidAudio(f"Audio could not be decoded: {reason[:200]}")
    duration = _hms(times[-1])
    if duration <= 0.05:
        raise InvalidAudio("Audio contains no decodable sound")
    return round(duration, 2)


def bitrate_kbps(path: Path) -> float:
    """Average bitrate of a whole file as served (container overhead included), from its size and length."""
    info = probe(path)
    if not info.duration:
        raise InvalidAudio("File has no duration")
    return path.stat().st_size * 8 / info.duration / 1000
