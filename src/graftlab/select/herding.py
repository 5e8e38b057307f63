"""MMD-greedy selection: kernel herding towards the target's mean embedding (Chen, Welling &
Smola 2010, https://arxiv.org/abs/1203.3472).

The kept source set S is grown greedily so that its mean embedding approaches the target's,
i.e. the MMD between S and the target shrinks:

    x_next = argmax_x  mean_t k(x, x_t)  -  (1 / (|S| + 1)) * sum_{s in S} k(x, s)

with an RBF kernel at the median bandwidth, approximated by ``n_features`` random Fourier
features (memory N x R, never N x M). Samples are added ``batch`` at a time (the first
``1/steps`` of the pool per step), so the whole order costs ``steps`` passes over the pool.
The score is the reverse of the order in which samples were picked.
"""

from __future__ import annotations

import numpy as np

from graftlab.select.base import (Selector, median_bandwidth, random_features,
                                  register_selector, rff_params, standardise)


@register_selector("mmd_herding")
class MMDHerding(Selector):
    output = "subset"

    def __init__(self, *, n_features: int = 512, steps: int = 200, seed: int = 0) -> None:
        self.n_features, self.steps, self.seed = n_features, steps, seed

    def _score(self, f_s, f_t, **given) -> np.ndarray:
        s, t = standardise(f_s, f_t)
        omega, phase = rff_params(s.shape[1], median_bandwidth(np.vstack([s, t]), self.seed),
                                  self.n_features, self.seed)
        phi_s = random_features(s, omega, phase)
        attraction = phi_s @ random_features(t, omega, phase).mean(0)  # mean_t k(x, x_t)
        repulsion = np.zeros(len(s))                                   # sum_S k(x, s)
        order, free = [], np.ones(len(s), dtype=bool)
        batch = max(1, int(np.ceil(len(s) / max(1, self.steps))))
        while free.any():
            gain = attraction - repulsion / (len(order) + 1)
            gain[~free] = -np.inf
            picked = np.argsort(-gain, kind="stable")[:min(batch, int(free.sum()))]
            order.extend(picked.tolist())
            free[picked] = False
            repulsion += phi_s @ phi_s[picked].sum(0)
        scores = np.empty(len(s))
        scores[np.asarray(order)] = np.arange(len(s), 0, -1, dtype=np.float64)
        return scores
