"""The splitter cuts in pauses, honours its parameters, prefers clean speech and refuses recordings
without usable speech, with a reason a user can act on."""

import subprocess

import numpy as np
import pytest

from tests import audio_factory
from voice_onboarding.audio import splitter, vad
from voice_onboarding.audio.ffmpeg import bitrate_kbps, ffmpeg_exe, probe
from voice_onboarding.audio.splitter import (
    GUARD_FRAMES,
    SplitError,
    decode_features,
    plan_segments,
    split_recording,
)

TOLERANCE = 0.12  # seconds: one frame plus the padding kept on each side of a cut
QUALITY_KEYS = {
    "speech_ratio", "snr_db", "clipping_ratio", "rms_dbfs", "source_lufs", "gain_db", "loudness_lufs",
    "peak_dbfs", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
}  # fmt: skip


def _inside_a_pause(t: float, pauses: list[tuple[float, float]], total: float) -> bool:
    if t <= TOLERANCE or t >= total - TOLERANCE:
        return True
    return any(start - TOLERANCE <= t <= end + TOLERANCE for start, end in pauses)


def test_cut_points_fall_in_pauses(speech_recording, tmp_path):
    result = split_recording(speech_recording.path, tmp_path, max_samples=25, sample_duration=8)
    assert len(result.samples) >= 5
    for sample in result.samples:
        start, end = sample.start, sample.start + sample.duration
        assert _inside_a_pause(start, speech_recording.pauses, speech_recording.duration), (start, sample)
        assert _inside_a_pause(end, speech_recording.pauses, speech_recording.duration), (end, sample)
    # Greedy from the first word on: nothing is skipped in clean speech, samples never overlap.
    ends = [s.start + s.duration for s in result.samples]
    assert all(end <= nxt.start + 1e-6 for end, nxt in zip(ends, result.samples[1:], strict=False))
    assert result.samples[0].start < 0.2
    # Only the samples are left: no draft of a candidate the choice dropped, no scratch PCM.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s.index}.opus" for s in result.samples)


def test_counts_durations_and_timestamps_honour_parameters(speech_recording, tmp_path):
    result = split_recording(speech_recording.path, tmp_path, max_samples=3, sample_duration=8)
    assert len(result.samples) == 3
    assert [s.index for s in result.samples] == [1, 2, 3]
    starts = [s.start for s in result.samples]
    assert starts == sorted(starts)
    for sample in result.samples:
        assert 0.6 * 8 <= sample.duration <= 1.1 * 8
        minutes, seconds = divmod(int(sample.start), 60)
        assert sample.source_timestamp == f"{minutes:02d}:{seconds:02d}"
        assert set(sample.quality) == QUALITY_KEYS
        assert sample.quality["speech_ratio"] > 0.5
        assert 1 <= sample.quality["dnsmos_bak"] <= 5 and 1 <= sample.quality["dnsmos_ovrl"] <= 5
        assert sample.quality["clipping_ratio"] == 0
        assert sample.path == tmp_path / f"{sample.index}.opus"


def test_samples_are_opus_96kbps_mono_48khz_of_the_reported_length(speech_recording, tmp_path):
    result = split_recording(speech_recording.path, tmp_path, max_samples=2, sample_duration=10)
    for sample in result.samples:
        info = probe(sample.path)
        assert info.codec == "opus"
        assert info.duration == pytest.approx(sample.duration, abs=0.1)
        header = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(sample.path)], capture_output=True, text=True)
        assert "48000 Hz, mono" in header.stderr
        # libopus' default VBR would give ~160 kb/s on speech; the served file must be near 96.
        assert 88 <= bitrate_kbps(sample.path) <= 104


def test_longer_sample_duration_gives_fewer_longer_samples(speech_recording, tmp_path):
    short = split_recording(speech_recording.path, tmp_path / "a", max_samples=25, sample_duration=5)
    long = split_recording(speech_recording.path, tmp_path / "b", max_samples=25, sample_duration=15)
    assert len(short.samples) > len(long.samples) >= 2
    assert max(s.duration for s in short.samples) < min(s.duration for s in long.samples)
    assert all(0.6 * 15 <= s.duration <= 1.1 * 15 for s in long.samples)


def test_cleanest_samples_are_kept_when_there_are_more_than_asked(noisy_then_clean, speech_recording, tmp_path):
    everything = split_recording(noisy_then_clean, tmp_path / "all", max_samples=25, sample_duration=8)
    # A sample starting in the noisy part's last pause (up to 0.5 s before the clean speech) is clean audio.
    noisy = [s for s in everything.samples if s.start < speech_recording.duration - 0.5]
    assert noisy, "moderately noisy speech is still usable when nothing better exists"
    best = split_recording(noisy_then_clean, tmp_path / "best", max_samples=3, sample_duration=8)
    assert len(best.samples) == 3
    # A sample keeps up to guard + edge (0.45 s) of the pause before its first word: here the noisy part's
    # last pause, which ends where the clean speech begins.
    assert all(s.start >= speech_recording.duration - 0.5 for s in best.samples)
    assert min(s.quality["snr_db"] for s in best.samples) > max(s.quality["snr_db"] for s in noisy)


def test_a_tone_between_speech_is_skipped_and_splitting_resumes_after_it(interrupted_recording, tmp_path):
    result = split_recording(interrupted_recording.path, tmp_path, max_samples=25, sample_duration=8)
    tone_start, tone_end = interrupted_recording.tone
    for sample in result.samples:
        overlap = min(sample.start + sample.duration, tone_end) - max(sample.start, tone_start)
        assert overlap < 0.5, sample  # at most the smear of the 0.6 s analysis window at the junction
    assert any(s.start + s.duration <= tone_start for s in result.samples)
    assert any(s.start >= tone_end - 0.5 for s in result.samples)


def test_clipped_speech_is_refused_as_distorted(speech_recording, tmp_path):
    clipped = tmp_path / "clipped.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_recording.path), "-af", "volume=25dB", str(clipped)],
        check=True,
    )
    with pytest.raises(SplitError, match="clipped"):
        split_recording(clipped, tmp_path / "out", 5, 8)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: audio_factory.silence(p / "s.wav", 30), "no speech \\(it is silent\\)"),
        (lambda p: audio_factory.noise(p / "n.wav", 30), "only steady noise or tone"),
        (lambda p: audio_factory.tone(p / "t.wav", 30), "only steady noise or tone"),
        (
            lambda p: audio_factory.concat(
                p / "bursts.wav", [audio_factory.noise(p / "b.wav", 2), audio_factory.silence(p / "q.wav", 1)] * 6
            ),
            "no speech",
        ),
    ],
    ids=["silence", "white-noise", "tone", "noise-bursts"],
)
def test_no_speech_is_refused_with_a_reason(tmp_path, make, fragment):
    with pytest.raises(SplitError, match=fragment):
        split_recording(make(tmp_path), tmp_path / "out", 5, 10)
    assert not (tmp_path / "out").exists()


def test_shorter_than_one_sample_is_refused(tmp_path, espeak_ng):
    short = audio_factory.speech(tmp_path / "short.wav", "Hello there, how are you?")
    with pytest.raises(SplitError, match="too short: [0-9.]+ s of speech, a 15 s sample needs at least 9 s"):
        split_recording(short, tmp_path / "out", 5, 15)


def test_speech_that_never_pauses_is_refused_with_a_reason(tmp_path, espeak_ng):
    """espeak-ng reading 40 s of text stripped of its punctuation hardly pauses at all: no cut could avoid
    cutting a word, and the reason says so (not "noise", which the user would look for in vain)."""
    text = " ".join(audio_factory.VARIED_SENTENCES * 2).replace(".", "").replace(",", "")
    recording = audio_factory.speech(tmp_path / "unbroken.wav", text, speed=175)
    with pytest.raises(SplitError, match="Recording has no pauses to cut at: [0-9]+ s of it runs on without a break"):
        split_recording(recording, tmp_path / "out", 5, 8)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"OggS" + b"\x00" * 500, b"", b"not audio at all" * 100])
def test_undecodable_is_refused(tmp_path, content):
    junk = tmp_path / "junk.opus"
    junk.write_bytes(content)
    with pytest.raises(SplitError, match="could not be decoded"):
        split_recording(junk, tmp_path / "out", 5, 10)


@pytest.mark.parametrize(("max_samples", "sample_duration"), [(0, 10), (101, 10), (5, 4), (5, 61)])
def test_parameters_outside_the_api_ranges_are_programming_errors(tmp_path, max_samples, sample_duration):
    with pytest.raises(ValueError):
        split_recording(tmp_path / "never-read.opus", tmp_path, max_samples, sample_duration)


def test_features_do_not_depend_on_how_the_stream_is_chunked(speech_recording):
    """The decoder pipe delivers arbitrary chunk sizes; frames must line up across them."""
    reference = decode_features(speech_recording.path)
    pcm = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(speech_recording.path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    extractor = vad.FeatureExtractor()
    for start in range(0, len(pcm), 7777):  # odd size: not a multiple of a frame or even a sample
        extractor.feed(pcm[start : start + 7777])
    chunked = extractor.finish()
    assert chunked.frames == reference.frames == len(pcm) // (2 * vad.FRAME)
    np.testing.assert_allclose(chunked.db, reference.db, atol=1e-4)
    np.testing.assert_allclose(chunked.flatness, reference.flatness, atol=1e-5)


def _synthetic_map(frames: int, utterance: int, pause: int) -> vad.SpeechMap:
    speech = (np.arange(frames) % (utterance + pause)) < utterance
    return vad.SpeechMap(speech=speech, noise=np.zeros(frames, bool), floor_db=np.full(frames, -70.0))


def test_planning_two_hours_of_frames_is_fast_and_every_cut_is_in_a_pause():
    frames = int(2 * 3600 / vad.FRAME_SECONDS)
    utterance, pause = 100, 20  # 3 s phrases, 0.6 s pauses
    segments = plan_segments(_synthetic_map(frames, utterance, pause), sample_duration=15)
    assert len(segments) > 400  # the whole two hours is usable
    period = utterance + pause
    for segment in segments:
        assert 0.6 * 15 <= segment.seconds <= 1.1 * 15
        # Both cuts lie in a pause, at least the guard away from the phrases on either side.
        for cut in (segment.start, segment.end):
            assert cut == 0 or utterance + GUARD_FRAMES <= cut % period <= period - GUARD_FRAMES


def test_unbroken_sound_longer_than_a_sample_is_skipped_not_cut():
    frames = 3000
    speech = np.zeros(frames, bool)
    speech[100:1100] = True  # 30 s with no pause at all
    speech[1200:1400] = True  # 6 s phrase: a sample on its own (60 % of 10 s); with the next it is too long
    speech[1420:1700] = True  # 8.4 s phrase
    speech_map = vad.SpeechMap(speech=speech, noise=np.zeros(frames, bool), floor_db=np.full(frames, -70.0))
    segments = plan_segments(speech_map, sample_duration=10)
    # The first sample starts in the long silence, the guard plus the kept edge of pause before its
    # speech; both share the cut in the short pause between them (the quietest frame, the first when flat).
    edge = 10  # EDGE_PAUSE_SECONDS in frames
    first = 1200 - GUARD_FRAMES - edge
    assert [(s.start, s.end) for s in segments] == [
        (first, 1400 + GUARD_FRAMES),
        (1400 + GUARD_FRAMES, 1700 + GUARD_FRAMES),
    ]


def test_short_pauses_are_cut_in_their_middle_only_where_the_speaker_never_pauses_longer():
    frames = 4000
    speech = np.zeros(frames, bool)
    # 0-60 s: a brisk reader, 3 s sentences and 0.24 s pauses (8 frames: too short for the guard twice).
    for start in range(0, 2000, 108):
        speech[start : start + 100] = True
    # 60-120 s: a speaker with 0.6 s pauses between sentences and two 0.15 s dips between words in each.
    for start in range(2100, 4000, 120):
        speech[start : start + 100] = True
        speech[start + 30 : start + 35] = False
        speech[start + 65 : start + 70] = False
    speech_map = vad.SpeechMap(speech=speech, noise=np.zeros(frames, bool), floor_db=np.full(frames, -70.0))
    segments = plan_segments(speech_map, sample_duration=10)
    reader = [s for s in segments if s.end <= 2000]
    assert len(reader) >= 4  # the brisk reader gives samples
    for segment in reader:
        for cut in (segment.start, segment.end):
            assert cut == 0 or 102 <= cut % 108 <= 106  # in a pause, at least 2 frames from its sentences
    assert len(segments) - len(reader) >= 4
    for segment in segments[len(reader) :]:
        for cut in (segment.start, segment.end):
            # never in a dip between words: only in the sentence pauses, with the full guard
            assert 100 + GUARD_FRAMES <= (cut - 2100) % 120 <= 120 - GUARD_FRAMES, cut


def test_decoding_in_parts_gives_the_same_pcm_and_features(speech_recording, tmp_path, monkeypatch):
    """A long recording is decoded in parts at once (one ffmpeg per vCPU); stitched, they must equal one
    continuous decode bit for bit, or cuts and quality reports would depend on the machine."""
    whole = decode_features(speech_recording.path, tmp_path / "whole.s16le")
    monkeypatch.setattr(splitter, "PART_MIN_FRAMES", 200)  # 6 s: the ~55 s recording splits in three
    calls = []
    real = splitter._decode_part
    monkeypatch.setattr(splitter, "_decode_part", lambda *a: calls.append(a[2:]) or real(*a))
    parts = decode_features(speech_recording.path, tmp_path / "parts.s16le", parts=3)
    assert len(calls) == 3 and calls[0] == (0, calls[1][0])
    assert (tmp_path / "parts.s16le").read_bytes() == (tmp_path / "whole.s16le").read_bytes()
    for name in ("db", "clipped", "flatness"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))


def test_refusal_after_dnsmos_leaves_no_candidate_encoded(speech_recording, tmp_path, monkeypatch):
    """Candidates are encoded while DNSMOS scores them; when DNSMOS then rejects them all, the user gets
    the reason and the output folder holds no half-made sample."""
    monkeypatch.setattr(splitter.models, "dnsmos", lambda audio: splitter.models.Dnsmos(sig=1.0, bak=1.0, ovrl=1.0))
    with pytest.raises(SplitError, match="heavily degraded"):
        split_recording(speech_recording.path, tmp_path / "out", 5, 8)
    assert list((tmp_path / "out").iterdir()) == []
