"""Sample scoring: speaker similarity against a robust centroid, combined with the split quality report.

Why robust: with a handful of samples a plain mean is dragged toward an outlier (another speaker,
a noise burst), which then looks less anomalous. Each sample is compared with the coordinate-wise
median of the *other* samples, and outliers are those far below the median similarity (MAD rule).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voice_onboarding.contract.quality import (
    MAX_CLIPPING_RATIO,
    MIN_SNR_DB,
    MIN_SPEECH_RATIO,
    MIXED_MIN_FRACTION,
    MIXED_WINDOW_MARGIN,
)

# Outlier rule: below median - max(MAD_K * 1.4826 * MAD, MIN_MARGIN), or below ABS_FLOOR.
MAD_K = 3.0
MIN_MARGIN = 0.08  # cosine; same-speaker resemblyzer similarities spread by a few hundredths
ABS_FLOOR = 0.55  # far below anything a same-speaker pair reaches with resemblyzer
SIMILARITY_WEIGHT = 0.7
# A sample is flagged below the split quality thresholds (contract/quality.py, the splitter's own values)
# even if the voice matches.


@dataclass
class Scored:
    sample_index: int
    score: float
    similarity: float
    flagged: bool
    reason: str | None
    synthesis_similarity: float | None = None


def normalize(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)


def robust_centroid(embeddings: np.ndarray) -> np.ndarray:
    """Normalised coordinate-wise median: one outlier among >= 3 samples barely moves it."""
    return normalize(np.median(embeddings, axis=0))


def loo_similarities(embeddings: np.ndarray) -> np.ndarray:
    """Cosine of each sample against the robust centroid of the others (1.0 for a single sample)."""
    n = len(embeddings)
    if n == 1:
        return np.ones(1, dtype=np.float32)
    sims = [float(embeddings[i] @ robust_centroid(np.delete(embeddings, i, axis=0))) for i in range(n)]
    return np.asarray(sims, dtype=np.float32)


def quality_score(quality: Mapping[str, Any] | None) -> tuple[float | None, str | None]:
    """Score in [0,1] from the split quality report (None when no known metric), plus a flag reason."""
    if not quality:
        return None, None
    parts: list[float] = []
    reasons: list[str] = []
    if (v := quality.get("speech_ratio")) is not None:
        parts.append(float(np.clip(v, 0, 1)))
        if v < MIN_SPEECH_RATIO:
            reasons.append(f"low speech ratio {v:.2f}")
    if (v := quality.get("snr_db")) is not None:
        parts.append(float(np.clip(v / 30.0, 0, 1)))  # 30 dB and above counts as clean
        if v < MIN_SNR_DB:
            reasons.append(f"low SNR {v:.1f} dB")
    if (v := quality.get("clipping_ratio")) is not None:
        parts.append(float(np.clip(1 - v / MAX_CLIPPING_RATIO, 0, 1)))
        if v > MAX_CLIPPING_RATIO:
            reasons.append(f"clipping {v:.1%}")
    if not parts:
        return None, None
    return float(np.mean(parts)), "; ".join(reasons) or None


def outlier_mask(similarities: np.ndarray) -> tuple[np.ndarray, float]:
    """Flags similarities far below the median (MAD-scaled, with a minimum margin) or below ABS_FLOOR."""
    med = float(np.median(similarities))
    mad = float(np.median(np.abs(similarities - med)))
    threshold = med - max(MAD_K * 1.4826 * mad, MIN_MARGIN)
    if len(similarities) < 3:
        threshold = -1.0  # no majority to define "the" voice; only the absolute floor applies
    return (similarities < threshold) | (similarities < ABS_FLOOR), threshold


def mixed_speakers(indices: Sequence[int], windows: Sequence[np.ndarray], window_seconds: float) -> dict[int, str]:
    """Samples whose windows disagree with the voice, with the reason, by sample index.

    A whole-sample embedding averages a second speaker away (a sample that is 25-50 % someone else scores
    only a little below clean ones), so each sample is also embedded in short windows. The voice is the
    robust centroid of every window of every sample; a window is another speaker when its similarity falls
    below the median window similarity by more than max(MIXED_WINDOW_MARGIN, MAD_K x scaled MAD). A sample
    is mixed when at least MIXED_MIN_FRACTION of its windows (and at least one) are."""
    nonempty = [w for w in windows if len(w)]
    if not nonempty:
        return {}
    everything = normalize(np.concatenate(nonempty))
    centroid = robust_centroid(everything)
    all_sims = everything @ centroid
    med = float(np.median(all_sims))
    mad = float(np.median(np.abs(all_sims - med)))
    threshold = med - max(MIXED_WINDOW_MARGIN, MAD_K * 1.4826 * mad)
    hop = window_seconds / 2
    mixed: dict[int, str] = {}
    for idx, sample_windows in zip(indices, windows, strict=True):
        if not len(sample_windows):
            continue
        sims = normalize(sample_windows) @ centroid
        odd = np.flatnonzero(sims < threshold)
        if odd.size and odd.size >= MIXED_MIN_FRACTION * sims.size:
            where = ", ".join(f"{i * hop:.1f}-{i * hop + window_seconds:.1f} s" for i in odd[:4])
            mixed[idx] = (
                f"mixed speakers: {odd.size} of {sims.size} windows ({where}) differ from the voice "
                f"(similarity {float(sims[odd].min()):.2f} vs median {med:.2f}, threshold {threshold:.2f})"
            )
    return mixed


def score_samples(
    indices: Sequence[int],
    embeddings: np.ndarray,
    qualities: Sequence[Mapping[str, Any] | None],
    test_similarities: Mapping[int, float] | None = None,
    mixed: Mapping[int, str] | None = None,
) -> tuple[list[Scored], np.ndarray]:
    """Returns the scores sorted best first and the centroid of the unflagged samples.

    `test_similarities`: per sample index, cosine of the test samples spoken from its artifact vs the sample
    itself (engines that synthesize): how well the artifact carries the voice; averaged into the similarity.
    `mixed`: reasons from mixed_speakers(); such samples are flagged (so never preferred).
    """
    embeddings = normalize(np.asarray(embeddings, dtype=np.float32))
    sims = loo_similarities(embeddings)
    voice_out, threshold = outlier_mask(sims)
    med = float(np.median(sims))
    scored: list[Scored] = []
    for i, idx in enumerate(indices):
        sim = float(sims[i])
        synth = None
        if test_similarities and idx in test_similarities:
            synth = round(float(test_similarities[idx]), 4)
            sim = 0.5 * (sim + synth)
        q, q_reason = quality_score(qualities[i])
        s = float(np.clip(sim, 0, 1))
        score = s if q is None else SIMILARITY_WEIGHT * s + (1 - SIMILARITY_WEIGHT) * q
        reasons = []
        if voice_out[i]:
            reasons.append(
                f"speaker mismatch: similarity {sims[i]:.2f} vs median {med:.2f} (threshold {threshold:.2f})"
            )
        if q_reason:
            reasons.append(q_reason)
        if mixed and idx in mixed:
            reasons.append(mixed[idx])
        scored.append(Scored(idx, round(score, 4), round(sim, 4), bool(reasons), "; ".join(reasons) or None, synth))
    scored.sort(key=lambda s: (s.flagged, -s.score))  # unflagged first, then best score
    # The centroid ignores mixed samples too: a second voice would pull it.
    clean = ~voice_out & np.array([not (mixed and idx in mixed) for idx in indices])
    keep = clean if clean.any() else np.ones(len(sims), dtype=bool)
    return scored, robust_centroid(embeddings[keep]) if keep.sum() >= 3 else normalize(embeddings[keep].mean(0))


def preferred(scored: Sequence[Scored]) -> int | None:
    """The best unflagged sample (scored is sorted best first), None when every sample is flagged:
    a flagged sample (another speaker, mixed, noisy) is never the voice's preferred sample."""
    return next((s.sample_index for s in scored if not s.flagged), None)
