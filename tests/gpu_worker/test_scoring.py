"""Scoring: robust centroid, MAD outliers, quality report."""

import numpy as np
from gpu_worker.audio import load_mono
from gpu_worker.engines.speaker_encoder import embed_utterance

from gpu_worker import scoring
from voice_onboarding.contract.quality import MIXED_WINDOW_SECONDS


def test_other_voice_scores_lowest_and_is_flagged(voices, encoder) -> None:
    order = ["same_0", "same_1", "other", "same_2"]
    emb = np.stack([embed_utterance(load_mono(voices[n]), 16000) for n in order])
    scored, centroid = scoring.score_samples([1, 2, 3, 4], emb, [None] * 4)
    assert scored[-1].sample_index == 3 and scored[-1].flagged and "speaker mismatch" in scored[-1].reason
    assert all(not s.flagged for s in scored[:-1])
    # The published centroid excludes the outlier: closer to the same-voice samples than to the other one.
    assert float(emb[0] @ centroid) > float(emb[2] @ centroid) + 0.1


def test_quality_report_lowers_score_and_flags() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=64)
    emb = np.stack([base + 0.05 * rng.normal(size=64) for _ in range(4)])
    good = {"speech_ratio": 0.95, "snr_db": 40, "clipping_ratio": 0}
    noisy = {"speech_ratio": 0.3, "snr_db": 4, "clipping_ratio": 0.05}
    scored, _ = scoring.score_samples([1, 2, 3, 4], emb, [good, noisy, good, None])
    worst = scored[-1]
    assert worst.sample_index == 2 and worst.flagged
    assert "low speech ratio" in worst.reason and "low SNR" in worst.reason and "clipping" in worst.reason


def test_single_sample_is_not_an_outlier() -> None:
    scored, centroid = scoring.score_samples([7], np.ones((1, 8)), [None])
    assert scored[0].sample_index == 7 and not scored[0].flagged and centroid.shape == (8,)


def test_a_sample_mixing_in_another_speaker_is_flagged_and_never_preferred(voices, encoder) -> None:
    """Whole-sample similarity barely moves when a third of a sample is someone else; its windows do."""
    from gpu_worker.engines.speaker_encoder import embed_windows

    same = [load_mono(voices[f"same_{i}"]) for i in range(3)]
    other = load_mono(voices["other"])
    pause = np.zeros(8000, dtype=np.float32)

    def joined(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate([x for part in parts for x in (part, pause)])

    samples = {1: joined(*same), 2: joined(same[1], same[2], same[0]), 3: joined(same[2], same[0], same[1])}
    samples[4] = joined(same[0], same[1], other)  # the other speaker is about a third of it
    windows = [embed_windows(wav, 16000, MIXED_WINDOW_SECONDS) for wav in samples.values()]
    mixed = scoring.mixed_speakers(list(samples), windows, MIXED_WINDOW_SECONDS)
    assert set(mixed) == {4}
    assert mixed[4].startswith("mixed speakers:") and "windows" in mixed[4]

    emb = np.stack([embed_utterance(wav, 16000) for wav in samples.values()])
    good = {"speech_ratio": 0.95, "snr_db": 40, "clipping_ratio": 0}
    scored, _ = scoring.score_samples(list(samples), emb, [good] * 4, None, mixed)
    flagged = {s.sample_index for s in scored if s.flagged}
    assert flagged == {4}
    assert scoring.preferred(scored) != 4 and scored[-1].sample_index == 4


def test_no_sample_is_preferred_when_every_sample_is_flagged() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(3, 16))
    noisy = {"speech_ratio": 0.9, "snr_db": 3, "clipping_ratio": 0}
    scored, _ = scoring.score_samples([1, 2, 3], emb, [noisy] * 3)
    assert all(s.flagged for s in scored) and scoring.preferred(scored) is None


def test_window_similarities_decide_mixed_samples() -> None:
    """The rule on synthetic embeddings: a sample is mixed when >= MIXED_MIN_FRACTION of its windows sit
    well below the voice's typical window similarity; one stray window among many does not flag."""
    rng = np.random.default_rng(2)
    voice, intruder = rng.normal(size=32), rng.normal(size=32)

    def windows(n_voice: int, n_other: int) -> np.ndarray:
        rows = [voice + 0.3 * rng.normal(size=32) for _ in range(n_voice)]
        return np.stack(rows + [intruder + 0.3 * rng.normal(size=32) for _ in range(n_other)])

    mixed = scoring.mixed_speakers([1, 2, 3, 4], [windows(10, 0), windows(9, 0), windows(12, 1), windows(7, 3)], 2.5)
    assert set(mixed) == {4}
    assert "3 of 10 windows" in mixed[4]
    assert scoring.mixed_speakers([1], [np.zeros((0, 32))], 2.5) == {}
