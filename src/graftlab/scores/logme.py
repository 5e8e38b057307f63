"""LogME: the log of the maximum evidence of a Bayesian linear model on the features.

You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021 (https://arxiv.org/abs/2102.11005; reference code: github.com/thuml/LogME).
For each target column y (a class's indicator, or a regression target), with the prior
w ~ N(0, α⁻¹ I) and noise N(0, β⁻¹):

    log p(y | F, α, β) = D/2 log α + N/2 log β − ½ log|A| − β/2 ‖Fm − y‖² − α/2 mᵀm − N/2 log 2π

with A = αI + βFᵀF and m = βA⁻¹Fᵀy; α and β maximise it by MacKay's fixed point
(γ = Σ βσᵢ/(α + βσᵢ), α ← γ/mᵀm, β ← (N − γ)/‖Fm − y‖²), all in the eigenbasis of FᵀF so
each step costs O(D). The score is the evidence divided by N, averaged over the columns.
(Not the PyPI package named ``logme``, which is a logging library.)
"""

from __future__ import annotations

import numpy as np

from graftlab.scores.base import SCORES, Score, one_hot

MAX_ITER, TOL = 100, 1e-3


def logme(features: np.ndarray, y: np.ndarray, *, regression: bool = False) -> float:
    """LogME of ``features`` (N, D) for labels or (with ``regression``) targets (N,) / (N, K)."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    targets = np.asarray(y, dtype=np.float64).reshape(n, -1) if regression else one_hot(y)
    if n > d:  # the D x D Gram matrix is the cheaper decomposition
        sigma, v = np.linalg.eigh(f.T @ f)
        keep = sigma > 1e-10 * max(sigma.max(), 1e-300)
        sigma = sigma[keep]
        u = (f @ v[:, keep]) / np.sqrt(sigma)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        keep = s > 1e-5 * max(s.max(), 1e-300)
        u, sigma = u[:, keep], s[keep] ** 2
    if sigma.size == 0:
        return float("nan")  # all-zero features: no evidence to speak of
    return float(np.mean([_evidence(u.T @ t, float(t @ t), sigma, n, d) for t in targets.T]))


def _evidence(x: np.ndarray, yy: float, sigma: np.ndarray, n: int, d: int) -> float:
    """Maximised evidence / N for one target column, given its coordinates ``x`` on the
    features' left singular vectors, ``yy`` = yᵀy and the eigenvalues ``sigma`` of FᵀF."""
    x2 = x ** 2
    outside = max(yy - x2.sum(), 0.0)  # the part of y no feature direction reaches
    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITER):
        t = alpha / beta
        gamma = (sigma / (sigma + t)).sum()
        m2, res2 = _fit(x2, outside, sigma, t)
        alpha, beta = gamma / m2, (n - gamma) / res2
        if abs(alpha / beta - t) / t < TOL:
            break
    m2, res2 = _fit(x2, outside, sigma, alpha / beta)  # m at the final α, β
    k = sigma.size  # FᵀF's other D - k eigenvalues are 0: each adds log α to log|A|
    log_det = np.log(alpha + beta * sigma).sum() + (d - k) * np.log(alpha)
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2
                - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
    return float(evidence / n)


def _fit(x2: np.ndarray, outside: float, sigma: np.ndarray, t: float) -> tuple[float, float]:
    """mᵀm and ‖Fm − y‖² of the posterior mean at α/β = ``t`` (floored away from 0)."""
    m2 = (sigma * x2 / (sigma + t) ** 2).sum()
    res2 = (x2 * (t / (sigma + t)) ** 2).sum() + outside
    return max(m2, 1e-12), max(res2, 1e-12)


@SCORES.register("logme")
class LogME(Score):
    """Maximum evidence of a Bayesian linear model (labels one-hot, or regression targets)."""

    regression = True
    paper = "You et al. 2021, https://arxiv.org/abs/2102.11005"

    def compute(self, features, y, *, regression=False, source_probs=None, seed=0) -> float:
        return logme(features, y, regression=regression)
