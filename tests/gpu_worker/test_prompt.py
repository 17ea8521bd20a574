"""Voice-prompt selection on real speech: within the limit, ending in a pause (never mid-word), trimmed,
loudness-normalised."""

import numpy as np
import pyloudnorm
import pytest
from gpu_worker.audio import load_mono
from gpu_worker.prompt import TARGET_LUFS, select_prompt

from tests import audio_factory

SR = 24_000


@pytest.fixture(scope="module")
def phrases(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    if not audio_factory.espeak_available():
        pytest.skip("espeak-ng not installed")
    d = tmp_path_factory.mktemp("prompt")
    first = audio_factory.speech(d / "a.wav", "The quick brown fox jumps over the lazy dog")
    second = audio_factory.speech(d / "b.wav", "Please call Stella and ask her to bring these things with her")
    return load_mono(first, SR), load_mono(second, SR)


def _trim(wav: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(wav) > 0.01 * np.abs(wav).max())
    return wav[loud[0] : loud[-1] + 1]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def _tail_db(wav: np.ndarray, seconds: float) -> float:
    tail, body = wav[-int(seconds * SR) :], wav
    return 20 * np.log10(np.sqrt(np.mean(tail**2)) + 1e-9) - 20 * np.log10(np.sqrt(np.mean(body**2)) + 1e-9)


def test_cut_at_the_last_pause_inside_the_limit_never_mid_word(phrases) -> None:
    a, b = (_trim(p) for p in phrases)
    wav = np.concatenate([_silence(0.7), a, _silence(0.5), b, _silence(1.0)])
    limit = len(a) / SR + 1.5  # the pause after `a` fits, `b` does not
    prompt = select_prompt(wav, SR, limit)
    assert prompt.cut == "pause" and prompt.seconds <= limit
    # All of `a` (the leading silence dropped), then a short faded tail: it ends in the pause, not in `b`.
    assert prompt.start_seconds == pytest.approx(0.7 - 0.05, abs=0.03)
    assert len(a) / SR <= prompt.seconds <= len(a) / SR + 0.15
    assert _tail_db(prompt.wav, 0.05) < -30


def test_whole_sample_when_it_fits_with_trailing_silence_trimmed_and_loudness_normalised(phrases) -> None:
    a = _trim(phrases[0])
    quiet = np.concatenate([a * 0.05, _silence(3.0)])  # a quiet recording with a long silence after it
    prompt = select_prompt(quiet, SR, 10.0)
    assert prompt.cut == "end" and prompt.seconds <= len(a) / SR + 0.15  # 3 s of silence cut to < 0.1 s
    measured = pyloudnorm.Meter(SR).integrated_loudness(prompt.wav.astype(np.float64))
    assert measured == pytest.approx(TARGET_LUFS, abs=0.5) and prompt.loudness_lufs < TARGET_LUFS - 20
    loud = select_prompt(np.concatenate([a * 0.9, _silence(1.0)]), SR, 10.0)
    assert pyloudnorm.Meter(SR).integrated_loudness(loud.wav.astype(np.float64)) == pytest.approx(measured, abs=0.5)


def test_no_pause_inside_the_limit_cuts_at_the_limit_with_a_fade(phrases) -> None:
    a = _trim(phrases[0])
    prompt = select_prompt(np.concatenate([a, a]), SR, 1.5)  # espeak's word gaps are shorter than a pause
    assert prompt.seconds == pytest.approx(1.5, abs=0.03)
    assert prompt.cut in ("limit", "pause") and abs(prompt.wav[-1]) < 1e-3
    with pytest.raises(ValueError, match="no speech"):
        select_prompt(_silence(3.0), SR, 10.0)
