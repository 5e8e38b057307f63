"""KLIEP: the density ratio w(x) = p_target(x) / p_source(x) fitted directly (Sugiyama et al.
2008, "Direct importance estimation with model selection and its application to covariate
shift adaptation").

    w(x) = sum_l alpha_l k(x, c_l),   alpha >= 0
    maximise  mean_t log w(x_t)   subject to  mean_s w(x_s) = 1

by projected gradient ascent. The ``centres`` (at most ``n_centres``) are target samples, so the
kernel matrices are N x B and M x B (a Nystroem-style basis): memory stays bounded however
large the pool (never a dense N x M kernel). The ratio is clipped at ``clip`` times its median.
"""

from __future__ import annotations

import numpy as np

from graftlab.select.base import Selector, median_bandwidth, register_selector, standardise


def _rbf(x: np.ndarray, c: np.ndarray, bandwidth: float, chunk: int = 4096) -> np.ndarray:
    out = np.empty((len(x), len(c)))
    cc = (c ** 2).sum(1)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        d2 = (part ** 2).sum(1)[:, None] + cc[None, :] - 2 * part @ c.T
        out[start:start + chunk] = np.exp(-np.maximum(d2, 0) / bandwidth)
    return out


@register_selector("kliep")
class KLIEP(Selector):
    output = "weights"

    def __init__(self, *, n_centres: int = 200, iterations: int = 300, lr: float = 1e-3,
                 clip: float = 20.0, seed: int = 0) -> None:
        self.n_centres, self.iterations, self.lr = n_centres, iterations, lr
        self.clip, self.seed = clip, seed

    def _score(self, f_s, f_t, **given) -> np.ndarray:
        s, t = standardise(f_s, f_t)
        rng = np.random.default_rng(self.seed)
        centres = t[rng.permutation(len(t))[:self.n_centres]]
        h = median_bandwidth(np.vstack([s, t]), self.seed)
        k_t, k_s = _rbf(t, centres, h), _rbf(s, centres, h)
        b = k_s.mean(0)                       # the constraint: b . alpha = 1
        alpha = np.ones(len(centres)) / max(b.sum(), 1e-12)
        for _ in range(self.iterations):
            grad = (k_t / np.maximum(k_t @ alpha, 1e-12)[:, None]).mean(0)
            alpha = alpha + self.lr * grad / max(np.abs(grad).max(), 1e-12) * alpha.mean()
            alpha = alpha + (1 - b @ alpha) * b / max(b @ b, 1e-12)
            alpha = np.maximum(alpha, 0)
            alpha = alpha / max(b @ alpha, 1e-12)
        ratio = k_s @ alpha
        return np.minimum(ratio, self.clip * max(np.median(ratio), 1e-12))

    def _weights(self, scores: np.ndarray) -> np.ndarray:
        return scores / max(scores.mean(), 1e-12)
