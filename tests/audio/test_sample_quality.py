"""What a listener notices in the samples: no word loses its tail, no sample holds noise or a tone, samples
have the asked length, the same loudness and bitrate, and the report says how they sound (DNSMOS)."""

import re
import subprocess

import numpy as np
import pytest

from tests import audio_factory
from voice_onboarding.audio import models
from voice_onboarding.audio.ffmpeg import bitrate_kbps, ffmpeg_exe, transcode_to_opus
from voice_onboarding.audio.loudness import integrated_lufs
from voice_onboarding.audio.splitter import Segment, refine_cuts, split_recording
from voice_onboarding.audio.vad import FRAME, FRAME_SECONDS
from voice_onboarding.contract.quality import CUT_GUARD_SECONDS, LOUDNESS_TARGET_LUFS, TRUE_PEAK_CEILING_DBTP


@pytest.fixture(scope="session")
def ground_truth(espeak_ng: None, tmp_path_factory: pytest.TempPathFactory) -> audio_factory.GroundTruth:
    """A minute of a slow female voice over a -50 dBFS pink floor, with a noise burst, a tone and a
    second speaker between sentences."""
    return audio_factory.ground_truth_recording(tmp_path_factory.mktemp("truth"), index=1, minutes=1.0)


def _ebur128(path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Integrated loudness and true peak as ffmpeg's EBU R128 meter reads them off the encoded file."""
    log = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
    ).stderr
    summary = log[log.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak


def test_every_cut_is_in_a_pause_clear_of_speech_and_no_sample_holds_noise_or_tone(ground_truth, tmp_path):
    result = split_recording(ground_truth.path, tmp_path, max_samples=100, sample_duration=5)
    assert len(result.samples) >= 5
    for sample in result.samples:
        start, end = sample.start, sample.start + sample.duration
        assert 0.6 * 5 <= sample.duration <= 1.1 * 5, sample
        for cut in (start, end):
            if 0.05 < cut < ground_truth.duration - 0.05:
                # The quiet tail of the last word counts as speech (ground truth at -60 dBFS, 10 dB
                # under the floor), and the cut keeps the guard from it.
                nearest = min(min(abs(cut - lo), abs(cut - hi)) for lo, hi in ground_truth.sounds)
                assert not any(lo < cut < hi for lo, hi in ground_truth.sounds), (cut, sample)
                assert nearest >= CUT_GUARD_SECONDS - 0.005, (cut, nearest)
        for lo, hi in ground_truth.contaminants:
            assert min(end, hi) - max(start, lo) <= 0.05, (sample, (lo, hi))


@pytest.mark.parametrize(
    "reading",
    [0, 1, 2, 3],
    ids=lambda i: "{} {}wpm floor {}".format(*audio_factory.READING_RECORDINGS[i][:3]),
)
def test_a_brisk_reader_with_short_sentence_pauses_gets_samples_cut_in_those_pauses(
    reading, espeak_ng, tmp_path_factory
):
    """espeak-ng reading a text pauses only ~0.3 s between sentences (0.23 s at 200 words per minute): too
    short for the full guard on both sides, so each cut lies in the pause's middle, never in a word."""
    folder = tmp_path_factory.mktemp("reading")
    truth = audio_factory.reading_recording(folder, reading, minutes=0.75)
    result = split_recording(truth.path, folder / "out", max_samples=25, sample_duration=8)
    assert len(result.samples) >= 3
    for sample in result.samples:
        assert 0.6 * 8 <= sample.duration <= 1.1 * 8, sample
        for cut in (sample.start, sample.start + sample.duration):
            if 0.05 < cut < truth.duration - 0.05:
                assert not any(lo < cut < hi for lo, hi in truth.sounds), (cut, sample)
                nearest = min(min(abs(cut - lo), abs(cut - hi)) for lo, hi in truth.sounds)
                assert nearest >= 0.05, (cut, nearest)


def test_samples_are_normalised_to_the_loudness_target(speech_recording, tmp_path):
    quiet = tmp_path / "quiet.wav"  # the same speech 15 dB quieter: the gain must bring it back
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_recording.path), "-af", "volume=-15dB", str(quiet)],
        check=True,
    )
    result = split_recording(quiet, tmp_path / "out", max_samples=3, sample_duration=8)
    for sample in result.samples:
        integrated, true_peak = _ebur128(sample.path)
        assert integrated == pytest.approx(LOUDNESS_TARGET_LUFS, abs=1.0)
        assert true_peak <= TRUE_PEAK_CEILING_DBTP
        assert sample.quality["loudness_lufs"] == pytest.approx(integrated, abs=1.0)
        assert (
            sample.quality["source_lufs"] < LOUDNESS_TARGET_LUFS - 5 < sample.quality["gain_db"] + LOUDNESS_TARGET_LUFS
        )


def test_loudness_meter_agrees_with_pyloudnorm():
    pyloudnorm = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(0)
    for rate in (16_000, 48_000):
        t = np.arange(int(3 * rate)) / rate
        # Speech-like: a modulated 150 Hz buzz with harmonics, a pause, and some hiss.
        signal = 0.2 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.1 * np.sin(
            2 * np.pi * 2500 * t
        )
        signal[rate : rate + rate // 2] = 0
        signal += 0.003 * rng.standard_normal(signal.size)
        expected = pyloudnorm.Meter(rate).integrated_loudness(signal)
        assert integrated_lufs(signal, rate) == pytest.approx(expected, abs=0.3)


def test_uploaded_audio_is_stored_as_opus_near_96kbps_and_samples_at_the_loudness_target(speech_recording, tmp_path):
    original = tmp_path / "upload.opus"
    transcode_to_opus(speech_recording.path, original)
    assert 88 <= bitrate_kbps(original) <= 104
    quiet = tmp_path / "quiet.wav"  # an uploaded sample recorded 18 dB too quiet
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_recording.path), "-t", "8", "-af", "volume=-18dB",
         str(quiet)],
        check=True,
    )  # fmt: skip
    sample = tmp_path / "sample.opus"
    transcode_to_opus(quiet, sample, normalise=True)
    integrated, true_peak = _ebur128(sample)
    assert integrated == pytest.approx(LOUDNESS_TARGET_LUFS, abs=1.0) and true_peak <= TRUE_PEAK_CEILING_DBTP
    assert 88 <= bitrate_kbps(sample) <= 104


def test_dnsmos_scores_noisy_speech_below_clean_speech(speech_recording):
    clean = audio_factory.load_pcm(speech_recording.path, 16_000)[: 16_000 * 9]
    noisy = clean + 0.03 * np.random.default_rng(1).standard_normal(clean.size).astype(np.float32)
    good, bad = models.dnsmos(clean), models.dnsmos(noisy)
    assert bad.bak < good.bak - 0.5
    assert bad.ovrl < good.ovrl
    assert all(1 <= v <= 5 for v in (good.sig, good.bak, good.ovrl))


def test_silero_hears_speech_not_silence_or_noise(speech_recording):
    speech = audio_factory.load_pcm(speech_recording.path, 16_000)[16_000 : 16_000 * 3]
    hiss = 0.05 * np.random.default_rng(2).standard_normal(16_000).astype(np.float32)
    probabilities = models.speech_probabilities(np.concatenate([np.zeros(16_000, np.float32), hiss, speech]))
    per_second = models.SAMPLE_RATE // models.SILERO_CHUNK
    assert probabilities[: 2 * per_second].max() < 0.5
    assert np.mean(probabilities[2 * per_second :] > 0.5) > 0.5


def test_a_cut_silero_hears_speech_at_moves_into_the_pause(speech_recording):
    """An end cut placed right on the last word (as an energy detector missing its tail would) is moved
    past the speech Silero hears, by the guard, and never beyond the pause's limit."""
    sentence = audio_factory.load_pcm(speech_recording.path, 16_000)[: int(speech_recording.pauses[0][0] * 16_000)]
    piece = np.concatenate([sentence, np.zeros(16_000, np.float32)])
    spoken = sentence.size // FRAME
    segment = Segment(start=0, end=spoken - 3, earliest=0, latest=spoken + int(0.8 / FRAME_SECONDS))
    refined = refine_cuts(segment, piece, offset=0)
    assert spoken - 3 < refined.end <= segment.latest
    assert refined.end - spoken >= 0  # the cut now lies after the sentence, in the silence
    assert refined.start == 0
