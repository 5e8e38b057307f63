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
    """Regularised H-score of ``features`` (N, D) for class labels ``y`` (N,).

    One Gram matrix serves both the Ledoit-Wolf shrinkage (the estimator of
    ``sklearn.covariance.LedoitWolf``, written out so it needs no second and third pass over
    the data) and the trace, which reduces to one quadratic form per class mean:
    tr(Σ_α⁻¹ cov(E[f | y])) = Σ_c N_c m_cᵀ Σ_α⁻¹ m_c / (N − 1)."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    n, d = f.shape
    cov, shrink = ledoit_wolf(f)
    onehot = one_hot(y)
    counts = onehot.sum(axis=0)
    means = (onehot.T @ f) / counts[:, None]  # (C, D) class means
    try:
        solved = np.linalg.solve(cov, means.T)
    except np.linalg.LinAlgError:
        solved = np.linalg.pinv(cov, rcond=1e-15) @ means.T
    return float((1 - shrink) * (counts * (means.T * solved).sum(axis=0)).sum() / (n - 1))


def ledoit_wolf(f: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit & Wolf (2004)'s shrunk covariance of centred ``f`` and its shrinkage, as
    ``sklearn.covariance.LedoitWolf(assume_centered=True)`` computes them."""
    n, d = f.shape
    emp = f.T @ f / n
    mu = np.trace(emp) / d
    beta_ = ((f * f).sum(axis=1) ** 2).sum()  # Σᵢ ‖xᵢ‖⁴
    delta_ = (emp * emp).sum()
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2 * mu * np.trace(emp) + d * mu ** 2) / d
    shrink = 0.0 if beta <= 0 or delta == 0 else float(min(beta, delta) / delta)
    cov = (1 - shrink) * emp
    cov.flat[:: d + 1] += shrink * mu
    return cov, shrink


@SCORES.register("hscore")
class HScore(Score):
    """Between-class variance under a shrinkage covariance (classification only)."""

    paper = "Ibrahim et al. 2022, https://arxiv.org/abs/2110.06893"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return hscore_regularised(features, y)
