"""H-score with a shrinkage covariance (the regularised H-score).

Bao et al. 2019 defined H(f) = tr(cov(f)⁻¹ cov(E[f | y])): how much of the features'
variance lies between the classes. Its inverse covariance is unstable in high dimension;
Ibrahim, Ponomareva, Mazumder, "Newer is not always better: Rethinking transferability
metrics, their peculiarities, stability and performance", ECML-PKDD 2022
(https://arxiv.org/abs/2110.06893) replace it by the Ledoit-Wolf shrinkage estimate
Σ_α = (1 − α) Σ + α (tr Σ / D) I, and the class-mean covariance by (1 − α) cov(E[f | y]):

    H_α(f) = tr(Σ_α⁻¹ (1 − α) cov(E[f | y]))
"""

from __future__ import annotations

import numpy as np

from graftlab.scores.base import SCORES, Score, one_hot


def hscore_regularised(features: np.ndarray, y: np.ndarray) -> float:
    """Regularised H-score of ``features`` (N, D) for class labels ``y`` (N,)."""
    from sklearn.covariance import LedoitWolf

    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    estimate = LedoitWolf(assume_centered=True).fit(f)
    shrink = float(estimate.shrinkage_)
    onehot = one_hot(y)
    means = (onehot.T @ f) / onehot.sum(axis=0)[:, None]  # (C, D) class means
    g = onehot @ means  # each sample's class mean
    cov_g = g.T @ g / (len(f) - 1)
    try:
        solved = np.linalg.solve(estimate.covariance_, cov_g)
    except np.linalg.LinAlgError:
        solved = np.linalg.pinv(estimate.covariance_, rcond=1e-15) @ cov_g
    return float((1 - shrink) * np.trace(solved))


@SCORES.register("hscore")
class HScore(Score):
    """Between-class variance under a shrinkage covariance (classification only)."""

    paper = "Ibrahim et al. 2022, https://arxiv.org/abs/2110.06893"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return hscore_regularised(features, y)
