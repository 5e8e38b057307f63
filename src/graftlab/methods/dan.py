"""DAN: multi-kernel maximum mean discrepancy (Long et al. 2015, https://arxiv.org/abs/1502.02791).

    MMD^2 = E k(s, s') + E k(t, t') - 2 E k(s, t),   k = sum_i exp(-||a - b||^2 / (2 s_i^2))

with Gaussian bandwidths s_i^2 = m * 2^j (j in -2..2, m the mean squared pairwise distance of
the batch, the usual heuristic). The biased quadratic estimate over one batch.

Shapes: f_s (B_s, D), f_t (B_t, D) -> scalar.
"""

from __future__ import annotations

import torch

from graftlab.methods.adaptation import Adaptation, register_method


def mk_mmd(f_s: torch.Tensor, f_t: torch.Tensor, scales=(0.25, 0.5, 1.0, 2.0, 4.0)
           ) -> torch.Tensor:
    x = torch.cat([f_s, f_t])
    d2 = torch.cdist(x, x).pow(2)
    base = d2.detach().sum() / max(len(x) ** 2 - len(x), 1)
    k = sum(torch.exp(-d2 / (2 * base * s + 1e-8)) for s in scales)
    n = len(f_s)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


@register_method("dan")
class DAN(Adaptation):
    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return mk_mmd(f_s, f_t)
