"""Split a recording into clean speech samples of about `sample_duration` seconds, cut only in pauses.

1. Decode: ffmpeg streams 16 kHz mono s16le PCM through a pipe, read in 60 s windows and reduced to
   per-frame features (audio/vad.py); memory stays flat with the recording's length.
2. Detect speech (adaptive noise floor, noise/tone rejection) and plan segments greedily: from a
   pause, pick the pause whose distance is closest to the target (60-140 % of it), preferring longer
   pauses (sentence ends); never across a long silence or a noise stretch.
3. Score every segment (speech ratio, SNR, clipping, level), drop unusable ones, keep the best
   `max_samples` (ties: earliest), returned in recording order.
4. Encode: cut each sample from the original (full bandwidth, not the 16 kHz analysis PCM) with
   input seeking `-ss/-t`, opus 96 kbps mono; one ffmpeg process per batch of samples, whose
   encoder threads use every core."""

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from voice_onboarding.audio import vad
from voice_onboarding.audio.ffmpeg import OPUS_BITRATE, ffmpeg_exe
from voice_onboarding.audio.vad import FRAME, FRAME_SECONDS, SAMPLE_RATE, FrameFeatures, SpeechMap
from voice_onboarding.domain.voice import format_timestamp

READ_SECONDS = 60  # PCM held at once: 60 s = 1.9 MB
LONG_SILENCE_SECONDS = 1.5  # a sample never spans a silence this long
EDGE_PADDING_SECONDS = 0.09  # keep a breath of the pause on each side so onsets/decays aren't clipped
MIN_LENGTH_FRACTION = 0.6  # samples are 60..140 % of the target duration
MAX_LENGTH_FRACTION = 1.4
SILENT_DBFS = -55.0  # a recording whose loud parts stay below this is silent
# A sample is rejected when it is distorted, noise-dominated or mostly pauses.
MAX_CLIPPING_RATIO = 0.002
MIN_SNR_DB = 12.0
MIN_SPEECH_RATIO = 0.5
ENCODE_BATCH = 20  # samples per ffmpeg process (one input + one output each)


class SplitError(Exception):
    """The recording cannot give a single usable sample; the message is shown to the user."""


class SplitSample(BaseModel):
    index: int
    path: Path
    start: float
    duration: float
    source_timestamp: str
    quality: dict[str, float]


class SplitResult(BaseModel):
    samples: list[SplitSample]
    recording_duration: float
    speech_seconds: float


class Segment(BaseModel):
    """A planned sample in frames [start, end), with its quality report once measured."""

    model_config = ConfigDict(frozen=True)

    start: int
    end: int
    quality: dict[str, float] = {}

    @property
    def seconds(self) -> float:
        return (self.end - self.start) * FRAME_SECONDS


def decode_features(source: Path) -> FrameFeatures:
    """Stream-decode any format ffmpeg reads into per-frame features, one window at a time."""
    command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(source), "-vn", "-map", "0:a:0",
               "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]  # fmt: skip
    extractor = vad.FeatureExtractor()
    # stderr goes to a file, not a pipe: a corrupt hour-long input can log a line per bad packet, and a
    # full stderr pipe nobody reads while we block on stdout would deadlock the decoder.
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as process:
            assert process.stdout is not None
            while chunk := process.stdout.read(READ_SECONDS * SAMPLE_RATE * 2):
                extractor.feed(chunk)
            returncode = process.wait()
        errors.seek(0)
        stderr = errors.read()[-4000:].decode(errors="replace").strip()
    features = extractor.finish()
    if features.frames == 0 or (returncode != 0 and features.seconds < 1):
        reason = stderr.splitlines()[-1] if stderr else "no audio stream"
        raise SplitError(f"Recording could not be decoded: {reason[:200]}")
    return features


class _Pause(BaseModel):
    start: int
    end: int
    hard: bool  # a long silence or noise: a sample never spans it
    lead: int  # silent frames after `start` usable as padding at a sample's end
    trail: int  # silent frames before `end` usable as padding at a sample's start


def _pauses(speech_map: SpeechMap) -> list[_Pause]:
    """Every gap between speech of at least a pause's length, plus the recording's two edges."""
    speech, noise = speech_map.speech, speech_map.noise
    n = speech.size
    padding = int(round(EDGE_PADDING_SECONDS / FRAME_SECONDS))
    min_pause = int(round(vad.MIN_PAUSE_SECONDS / FRAME_SECONDS))
    long_silence = int(round(LONG_SILENCE_SECONDS / FRAME_SECONDS))
    pauses = []
    for start, end in vad.runs(~speech):
        if end - start < min_pause and 0 < start and end < n:
            continue
        gap_noise = np.flatnonzero(noise[start:end])
        lead = int(gap_noise[0]) if gap_noise.size else end - start
        trail = int(end - start - 1 - gap_noise[-1]) if gap_noise.size else end - start
        hard = end - start >= long_silence or gap_noise.size > 0 or start == 0 or end == n
        pauses.append(_Pause(start=start, end=end, hard=hard, lead=min(lead, padding), trail=min(trail, padding)))
    if not pauses or pauses[0].start > 0:
        pauses.insert(0, _Pause(start=0, end=0, hard=True, lead=0, trail=0))
    if pauses[-1].end < n:
        pauses.append(_Pause(start=n, end=n, hard=True, lead=0, trail=0))
    return pauses


def plan_segments(speech_map: SpeechMap, sample_duration: float) -> list[Segment]:
    """Greedy left-to-right: each segment starts and ends inside a pause and is 60-140 % of the target.
    Stretches that cannot give one (a fragment before a long silence, unbroken sound) are skipped."""
    target = sample_duration / FRAME_SECONDS
    shortest, longest = MIN_LENGTH_FRACTION * target, MAX_LENGTH_FRACTION * target
    pauses = _pauses(speech_map)
    segments: list[Segment] = []
    i = 0  # index of the pause the next segment starts in
    while i < len(pauses) - 1:
        begin = pauses[i].end - pauses[i].trail
        reachable: list[int] = []
        for j in range(i + 1, len(pauses)):
            if pauses[j].start - begin > longest:
                break
            reachable.append(j)
            if pauses[j].hard:
                break
        fitting = [j for j in reachable if pauses[j].start - begin >= shortest]
        if fitting:
            # Closest to the target; a longer pause (a sentence end rather than a comma) wins near-ties.
            misses = [abs(pauses[k].start - begin - target) - min(pauses[k].end - pauses[k].start, 20) for k in fitting]
            j = fitting[misses.index(min(misses))]
            segments.append(Segment(start=begin, end=pauses[j].start + pauses[j].lead))
            i = j
        elif reachable:
            i = reachable[-1]  # a fragment too short to be a sample: drop it, continue from there
        else:
            i += 1  # unbroken sound longer than a sample: skip to the next pause
    return segments


def measure(features: FrameFeatures, speech_map: SpeechMap, segment: Segment) -> dict[str, float]:
    """The quality report stored with each sample."""
    window = slice(segment.start, segment.end)
    db, speech = features.db[window], speech_map.speech[window]
    floor = float(np.mean(speech_map.floor_db[window]))
    speech_db = float(np.mean(db[speech])) if speech.any() else floor
    mean_power = float(np.mean(10.0 ** (db / 10.0)))
    return {
        "speech_ratio": round(float(np.mean(speech)), 3),
        "snr_db": round(speech_db - floor, 1),
        "clipping_ratio": round(float(features.clipped[window].sum()) / ((segment.end - segment.start) * FRAME), 5),
        "rms_dbfs": round(10.0 * float(np.log10(mean_power + 1e-12)), 1),
    }


def _rejection(quality: dict[str, float]) -> str | None:
    if quality["clipping_ratio"] > MAX_CLIPPING_RATIO:
        return "clipping"
    if quality["snr_db"] < MIN_SNR_DB:
        return "noise"
    if quality["speech_ratio"] < MIN_SPEECH_RATIO:
        return "sparse"
    return None


def _score(segment: Segment, target_frames: float) -> float:
    """Higher is better: clean (SNR, capped: beyond 40 dB nobody hears a difference), dense speech,
    close to the asked duration."""
    q = segment.quality
    closeness = 1.0 - abs(segment.end - segment.start - target_frames) / target_frames
    return min(q["snr_db"], 40.0) / 40.0 + q["speech_ratio"] + 0.5 * closeness


_REASONS = {
    "clipping": "the audio is clipped (distorted by too high a recording level)",
    "noise": "background noise is too loud compared with the voice",
    "sparse": "there is too little speech between the pauses",
}


def choose(features: FrameFeatures, speech_map: SpeechMap, sample_duration: int, max_samples: int) -> list[Segment]:
    """The best `max_samples` usable segments in recording order; SplitError says why there are none."""
    planned = plan_segments(speech_map, sample_duration)
    usable: list[Segment] = []
    rejected: dict[str, int] = {}
    for segment in planned:
        measured = segment.model_copy(update={"quality": measure(features, speech_map, segment)})
        reason = _rejection(measured.quality)
        if reason:
            rejected[reason] = rejected.get(reason, 0) + 1
        else:
            usable.append(measured)
    if not usable:
        if rejected:
            why = _REASONS[max(rejected, key=lambda r: rejected[r])]
        else:
            why = "speech must pause briefly between phrases, without long noise"
        raise SplitError(f"No clean {sample_duration} s stretch of speech found: {why}")
    target = sample_duration / FRAME_SECONDS
    # Stable sort on score, so equal scores keep the earlier segment.
    best = sorted(usable, key=lambda s: -_score(s, target))[:max_samples]
    return sorted(best, key=lambda s: s.start)


def _refuse_without_speech(features: FrameFeatures, speech_map: SpeechMap, sample_duration: int) -> None:
    if float(np.percentile(features.db, 95)) < SILENT_DBFS:
        raise SplitError("Recording contains no speech (it is silent)")
    if speech_map.speech_seconds == 0:
        raise SplitError("Recording contains no speech: only steady noise or tone")
    shortest = MIN_LENGTH_FRACTION * sample_duration
    if speech_map.speech_seconds < shortest:
        if speech_map.noise_seconds > speech_map.speech_seconds:
            raise SplitError("Recording contains no usable speech: it is mostly noise")
        raise SplitError(
            f"Recording is too short: {speech_map.speech_seconds:.1f} s of speech, a {sample_duration} s "
            f"sample needs at least {shortest:.0f} s"
        )


Progress = Callable[[str], None]


def _quiet(step: str) -> None:
    pass


def encode_samples(source: Path, cuts: list[tuple[Path, float, float]], progress: Progress = _quiet) -> None:
    """Cut (target, start s, duration s) pieces of the source to opus 96 kbps mono."""
    for first in range(0, len(cuts), ENCODE_BATCH):
        batch = cuts[first : first + ENCODE_BATCH]
        progress(f"cutting {first + len(batch)}/{len(cuts)}")
        inputs: list[str] = []
        outputs: list[str] = []
        for number, (target, start, duration) in enumerate(batch):
            # -ss before -i: the demuxer seeks, so a cut an hour in does not decode the hour before it.
            inputs += ["-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-i", str(source)]
            outputs += ["-map", f"{number}:a:0", "-ac", "1", "-ar", "48000", "-c:a", "libopus",
                        "-b:a", OPUS_BITRATE, "-f", "ogg", str(target)]  # fmt: skip
        command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *inputs, *outputs]
        result = subprocess.run(command, capture_output=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed to encode samples: {result.stderr.decode(errors='replace')[-300:]}")


def split_recording(
    source: Path, out_dir: Path, max_samples: int, sample_duration: int, progress: Progress = _quiet
) -> SplitResult:
    """Split `source` into at most `max_samples` opus files `out_dir/{1..n}.opus` of about
    `sample_duration` seconds. Raises SplitError with a user-facing reason when nothing is usable.
    `progress` is called with a short step name before each phase (for the voice's `progress`)."""
    if not 1 <= max_samples <= 100 or not 5 <= sample_duration <= 60:
        raise ValueError("max_samples must be 1-100 and sample_duration 5-60 s")
    progress("decoding")
    features = decode_features(source)
    progress("detecting speech")
    speech_map = vad.detect_speech(features)
    _refuse_without_speech(features, speech_map, sample_duration)
    chosen = choose(features, speech_map, sample_duration, max_samples)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = [
        SplitSample(
            index=index, path=out_dir / f"{index}.opus", start=round(segment.start * FRAME_SECONDS, 2),
            duration=round(segment.seconds, 2), source_timestamp=format_timestamp(segment.start * FRAME_SECONDS),
            quality=segment.quality,
        )
        for index, segment in enumerate(chosen, start=1)
    ]  # fmt: skip
    encode_samples(source, [(s.path, s.start, s.duration) for s in samples], progress)
    return SplitResult(
        samples=samples,
        recording_duration=round(features.seconds, 2),
        speech_seconds=round(speech_map.speech_seconds, 2),
    )
