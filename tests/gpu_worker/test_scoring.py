"""Scoring: robust centroid, MAD outliers, quality report."""

import numpy as np
from gpu_worker.audio import load_mono
from gpu_worker.engines.speaker_encoder import embed_utterance

from gpu_worker import scoring


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
