"""The splitter cuts in pauses, honours its parameters and refuses recordings without speech."""

import pytest

from tests import audio_factory
from voice_onboarding.audio.splitter import SplitError, split_recording

TOLERANCE = 0.12  # seconds: frame size plus the padding kept on each side of a cut


def _inside_a_pause(t: float, pauses: list[tuple[float, float]], total: float) -> bool:
    if t <= TOLERANCE or t >= total - TOLERANCE:
        return True
    return any(start - TOLERANCE <= t <= end + TOLERANCE for start, end in pauses)


def test_cut_points_fall_in_pauses(speech_recording, tmp_path):
    result = split_recording(speech_recording.path, tmp_path, max_samples=25, sample_duration=8)
    assert len(result.samples) >= 4
    for sample in result.samples:
        start, end = sample.start, sample.start + sample.duration
        assert _inside_a_pause(start, speech_recording.pauses, speech_recording.duration), (start, sample)
        assert _inside_a_pause(end, speech_recording.pauses, speech_recording.duration), (end, sample)


def test_counts_durations_and_timestamps_honour_parameters(speech_recording, tmp_path):
    result = split_recording(speech_recording.path, tmp_path, max_samples=3, sample_duration=8)
    assert len(result.samples) == 3
    assert [s.index for s in result.samples] == [1, 2, 3]
    starts = [s.start for s in result.samples]
    assert starts == sorted(starts)
    for sample in result.samples:
        assert 0.6 * 8 <= sample.duration <= 1.4 * 8 + 0.2
        minutes, seconds = divmod(int(sample.start), 60)
        assert sample.source_timestamp == f"{minutes:02d}:{seconds:02d}"
        assert sample.path.read_bytes()[:4] == b"OggS"
        assert set(sample.quality) == {"speech_ratio", "snr_db", "clipping_ratio", "rms_dbfs"}
        assert sample.quality["speech_ratio"] > 0.5


def test_longer_sample_duration_gives_fewer_longer_samples(speech_recording, tmp_path):
    short = split_recording(speech_recording.path, tmp_path / "a", max_samples=25, sample_duration=5)
    long = split_recording(speech_recording.path, tmp_path / "b", max_samples=25, sample_duration=15)
    assert len(short.samples) > len(long.samples) >= 1
    assert max(s.duration for s in short.samples) < min(s.duration for s in long.samples)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: audio_factory.silence(p / "s.wav", 30), "silent"),
        (lambda p: audio_factory.noise(p / "n.wav", 30), "steady noise"),
        (lambda p: audio_factory.tone(p / "t.wav", 30), "steady noise or tone"),
    ],
)
def test_no_speech_is_refused_with_a_reason(tmp_path, make, fragment):
    with pytest.raises(SplitError, match=fragment):
        split_recording(make(tmp_path), tmp_path / "out", 5, 10)
    assert not list((tmp_path / "out").glob("*.opus")) if (tmp_path / "out").exists() else True


def test_shorter_than_one_sample_is_refused(tmp_path):
    short = audio_factory.speech(tmp_path / "short.wav", "Hello there.")
    with pytest.raises(SplitError, match="too short"):
        split_recording(short, tmp_path / "out", 5, 15)


def test_undecodable_is_refused(tmp_path):
    junk = tmp_path / "junk.opus"
    junk.write_bytes(b"OggS" + b"\x00" * 500)
    with pytest.raises(SplitError, match="could not be decoded"):
        split_recording(junk, tmp_path / "out", 5, 10)
