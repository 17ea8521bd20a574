"""Real audio made by the tests: ffmpeg tones/noise and espeak-ng speech. Nothing checked in."""

import random
import shutil
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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


# --- recordings with exact ground truth (tests/audio and benchmarks/split_quality.py) ----------------
# One espeak voice and rate reads sentences separated by 0.3-1.2 s pauses; a noise burst, a tone and two
# sentences by a second speaker are inserted between sentences (unless events=False); a noise floor is
# added over everything. Speech spans come from the clean signal at -60 dBFS, quiet word tails included.
RATE = 22_050  # espeak-ng's native rate
VARIED_SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "A journey of a thousand miles begins with a single step forward.",
    "Peter Piper picked a peck of pickled peppers for his sister.",
    "Bright stars fade slowly as the first light touches the hills.",
    "Check the facts twice, then write the next chapter of the story.",
    "Six thick thistle sticks stood still in the frost.",
    "Please pass the salt, the pepper, and the fresh bread.",
    "Whispering winds crossed the fields at dusk.",
    "Clocks tick, ducks quack, and the old gate creaks.",
]
# (voice, words per minute, noise floor dBFS, noise colour)
GROUND_TRUTH_RECORDINGS = [
    ("en-us", 175, -60.0, "white"),
    ("en-gb+f3", 140, -50.0, "pink"),
    ("en-gb-scotland+m3", 210, -45.0, "white"),
    ("en-us+f2", 160, -40.0, "pink"),
    ("en-029", 190, -35.0, "white"),
    ("en-gb-x-rp+f4", 150, -38.0, "pink"),
]
OTHER_VOICE = "en-us+m7"
TRUTH_FRAME = 0.01  # ground-truth resolution


@dataclass
class GroundTruth:
    path: Path
    duration: float
    sounds: list[tuple[float, float]] = field(default_factory=list)  # every utterance, noise and tone
    contaminants: list[tuple[float, float]] = field(default_factory=list)  # noise bursts and tones
    other_speaker: list[tuple[float, float]] = field(default_factory=list)


def _espeak(text: str, voice: str, speed: int, folder: Path) -> np.ndarray:
    require_espeak()
    path = folder / "utterance.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    nonzero = np.flatnonzero(np.abs(audio) > 1e-4)  # drop espeak's digital-silence padding only
    return audio[nonzero[0] : nonzero[-1] + 1]


def _energy_span(audio: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms frame of the clean signal above -60 dBFS, in seconds."""
    hop = int(TRUTH_FRAME * RATE)
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)
    loud = np.flatnonzero(10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12) > -60)
    return float(loud[0] * TRUTH_FRAME), float((loud[-1] + 1) * TRUTH_FRAME)


def _noise(size: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(size)
    if colour == "pink":  # 1/f power: shape white noise in the frequency domain
        spectrum = np.fft.rfft(white)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
        white = np.fft.irfft(spectrum, n=size)
    return (white / np.sqrt(np.mean(white * white))).astype(np.float32)


def ground_truth_recording(folder: Path, index: int, minutes: float = 2.0, events: bool = True) -> GroundTruth:
    voice, speed, floor_dbfs, colour = GROUND_TRUTH_RECORDINGS[index % len(GROUND_TRUTH_RECORDINGS)]
    rng = random.Random(index)
    nrng = np.random.default_rng(index)
    parts: list[np.ndarray] = []
    truth = GroundTruth(path=folder / f"quality-{index}.wav", duration=0.0)
    clock = 0.0

    def add(audio: np.ndarray, kind: str) -> None:
        nonlocal clock
        if kind == "speech" or kind == "other":
            lo, hi = _energy_span(audio)
            truth.sounds.append((clock + lo, clock + hi))
            if kind == "other":
                truth.other_speaker.append((clock + lo, clock + hi))
        elif kind != "pause":
            truth.sounds.append((clock, clock + audio.size / RATE))
            truth.contaminants.append((clock, clock + audio.size / RATE))
        parts.append(audio)
        clock += audio.size / RATE

    def pause(seconds: float) -> None:
        add(np.zeros(int(seconds * RATE), dtype=np.float32), "pause")

    pause(0.4)
    n = 0
    while clock < minutes * 60:
        n += 1
        add(_espeak(VARIED_SENTENCES[rng.randrange(len(VARIED_SENTENCES))], voice, speed, folder), "speech")
        pause(rng.uniform(0.3, 1.2))
        if events and n % 9 == 3:  # a noise burst (a door, a cough into the mic): 2 s of noise at -25 dBFS
            add(0.056 * _noise(int(2.0 * RATE), "white", nrng), "noise")
            pause(rng.uniform(0.3, 0.8))
        if events and n % 9 == 6:  # a tone (a phone ringing) at -20 dBFS
            t = np.arange(int(3.0 * RATE)) / RATE
            add((0.14 * np.sin(2 * np.pi * 880 * t)).astype(np.float32), "tone")
            pause(rng.uniform(0.3, 0.8))
        if events and n % 9 == 8:  # a second speaker says two sentences
            for _ in range(2):
                add(_espeak(VARIED_SENTENCES[rng.randrange(len(VARIED_SENTENCES))], OTHER_VOICE, 170, folder), "other")
                pause(rng.uniform(0.3, 1.0))
    pause(0.3)
    audio = np.concatenate(parts)
    audio += 10 ** (floor_dbfs / 20) * _noise(audio.size, colour, nrng)
    truth.duration = audio.size / RATE
    with wave.open(str(truth.path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return truth


# --- one espeak-ng call reading a text: its own short pauses (tests/audio and split_quality) -------------
# espeak-ng pauses ~0.3 s between sentences at its default 175 words per minute, ~0.25 s at 200, ~0.15 s at
# commas: what a brisk reader does, and what a new user's first synthetic test recording looks like.
# (voice, words per minute, noise floor dBFS or None, noise colour)
READING_RECORDINGS = [
    ("en-us", 175, None, ""),
    ("en-us", 175, -60.0, "pink"),
    ("en-us", 200, None, ""),
    ("en-gb+f3", 200, -50.0, "white"),
]
MIN_TRUE_PAUSE = 0.1  # seconds: shorter silences of the clean signal are inside a word (stop closures)


def reading_recording(folder: Path, index: int, minutes: float = 2.0) -> GroundTruth:
    """About `minutes` of text read by espeak-ng in one call (its natural pauses), at 44.1 kHz like a
    phone's WAV. Sounds are the clean signal's runs above -60 dBFS in 10 ms frames, silences shorter than
    MIN_TRUE_PAUSE bridged."""
    require_espeak()
    voice, speed, floor_dbfs, colour = READING_RECORDINGS[index % len(READING_RECORDINGS)]
    rng = random.Random(100 + index)
    # ~3 s per sentence at 175 words per minute
    text = " ".join(rng.choice(VARIED_SENTENCES) for _ in range(int(minutes * 60 / 3 * speed / 175) + 1))
    raw = folder / f"reading-{index}.txt"
    raw.write_text(text)
    wav = folder / f"reading-{index}-raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-f", str(raw), "-w", str(wav)], check=True)
    with wave.open(str(wav)) as w:
        assert w.getframerate() == RATE
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    hop = int(TRUTH_FRAME * RATE)
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)
    loud = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12) > -60
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    sounds: list[tuple[float, float]] = []
    step = hop / RATE  # 220 samples: not exactly TRUTH_FRAME, which would drift over minutes
    for lo, hi in zip(edges[::2] * step, edges[1::2] * step, strict=True):
        if sounds and lo - sounds[-1][1] < MIN_TRUE_PAUSE:
            sounds[-1] = (sounds[-1][0], float(hi))
        else:
            sounds.append((float(lo), float(hi)))
    if floor_dbfs is not None:
        audio = audio + 10 ** (floor_dbfs / 20) * _noise(audio.size, colour, np.random.default_rng(index))
    truth = GroundTruth(path=folder / f"reading-{index}.wav", duration=audio.size / RATE, sounds=sounds)
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", str(RATE), "-ac", "1", "-i", "-",
         "-ar", "44100", "-c:a", "pcm_s16le", str(truth.path)],
        input=np.clip(audio, -1, 1).astype("<f4").tobytes(),
        check=True,
    )  # fmt: skip
    return truth


def load_pcm(path: Path, rate: int) -> np.ndarray:
    """Any audio file as mono float32 at `rate`."""
    pcm = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(pcm, dtype=np.float32).copy()
