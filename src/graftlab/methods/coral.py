"""Deep CORAL (Sun & Saenko 2016, https://arxiv.org/abs/1607.01719): align the second-order
statistics of source and target features.

    L_transfer = || C_s - C_t ||_F^2 / (4 d^2)         C = covariance of the (B, d) features

Shapes: f_s (B_s, d), f_t (B_t, d) -> scalar. Mean alignment (||mu_s - mu_t||^2, as in
TLlib's version) is added, so a shift in the means is corrected too.
"""

from __future__ import annotations

import torch

from graftlab.methods.adaptation import Adaptation, register_method


def coral_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    d = f_s.shape[1]
    mean_s, mean_t = f_s.mean(0, keepdim=True), f_t.mean(0, keepdim=True)
    c_s = (f_s - mean_s).T @ (f_s - mean_s) / max(len(f_s) - 1, 1)
    c_t = (f_t - mean_t).T @ (f_t - mean_t) / max(len(f_t) - 1, 1)
    return ((c_s - c_t) ** 2).sum() / (4 * d * d) + ((mean_s - mean_t) ** 2).mean()


@register_method("coral")
class CORAL(Adaptation):
    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return coral_loss(f_s, f_t)
