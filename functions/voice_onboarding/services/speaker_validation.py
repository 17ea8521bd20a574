"""Input rules of speakers-api.txt: names, language tags, and what audio is accepted."""

import re
from dataclasses import dataclass
from pathlib import Path

from voice_onboarding.audio.ffmpeg import probe
from voice_onboarding.domain.errors import InvalidAudio, InvalidRequest

# Lowercase letters/digits in groups joined by single hyphens: "aria-custom", "voice2".
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_NAME_CHARS = 64
# BCP-47 language-REGION: ISO 639 language (2 letters, or 3 for e.g. fil-PH) + ISO 3166 region.
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
MAX_DESCRIPTION_CHARS = 500
MAX_TRANSCRIPT_CHARS = 1000
REFERENCE_SECONDS = (10.0, 60.0)
DATASET_SAMPLE_SECONDS = (5.0, 30.0)


@dataclass(frozen=True)
class AcceptedAudio:
    duration: float
    extension: str
    content_type: str


def validate_name(name: str) -> str:
    if not (len(name) <= MAX_NAME_CHARS and NAME_PATTERN.match(name)):
        raise InvalidRequest(
            "Speaker name must be lowercase letters and digits, optionally joined by single hyphens "
            f"(e.g. aria-custom), at most {MAX_NAME_CHARS} characters"
        )
    return name


def validate_language(language: str) -> str:
    if not LANGUAGE_PATTERN.match(language):
        raise InvalidRequest("language must be a BCP-47 language-REGION tag such as en-US or hi-IN")
    return language


def validate_transcript(transcript: str) -> str:
    text = transcript.strip()
    if not text:
        raise InvalidRequest("transcript must not be empty")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise InvalidRequest(f"transcript must be at most {MAX_TRANSCRIPT_CHARS} characters (got {len(text)})")
    return text


def _format_of(container: str | None, codec: str) -> tuple[str, str] | None:
    """(extension, content type) for WAV (PCM) or MP3 as ffmpeg reads them; None for anything else."""
    demuxer = (container or "").split(",")[0]
    if demuxer == "wav" and codec.startswith("pcm_"):
        return "wav", "audio/wav"
    if demuxer == "mp3" and codec.startswith("mp3"):
        return "mp3", "audio/mpeg"
    return None


def accepted_audio(path: Path, bounds: tuple[float, float], what: str) -> AcceptedAudio:
    """WAV or MP3 only, judged by what ffmpeg finds in the bytes (never the filename), and a
    duration within `bounds`; InvalidAudio (422) naming the limit and the actual value otherwise."""
    info = probe(path)
    fmt = _format_of(info.container, info.codec)
    if fmt is None:
        found = f"{(info.container or 'unknown').split(',')[0]}/{info.codec}"
        raise InvalidAudio(f"{what} must be WAV or MP3 (found {found})")
    low, high = bounds
    if info.duration is None or not low <= info.duration <= high:
        actual = "unknown duration" if info.duration is None else f"got {info.duration:.1f} s"
        raise InvalidAudio(f"{what} must be {low:g}-{high:g} seconds long ({actual})")
    return AcceptedAudio(duration=round(info.duration, 2), extension=fmt[0], content_type=fmt[1])
