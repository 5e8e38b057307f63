"""MCC: minimum class confusion (Jin et al. 2020, https://arxiv.org/abs/1912.03699).

On the target batch only: temperature-scaled probabilities Y (B, C); samples weighted by
certainty, W = B * softmax(1 + exp(-H(Y))); class correlation C = Y^T W Y (C, C), its rows
normalised to sum 1; the loss is the mass off the diagonal, averaged over classes:

    L_transfer = (sum(C) - trace(C)) / num_classes

Shapes: logits_t (B, C) -> scalar. Needs no discriminator and no source features.
"""

from __future__ import annotations

import torch

from graftlab.methods.adaptation import Adaptation, entropy, register_method


def mcc_loss(logits_t: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    probs = (logits_t / temperature).softmax(-1)
    b, c = probs.shape
    w = 1 + torch.exp(-entropy(probs.detach()))
    w = (b * w / w.sum()).unsqueeze(1)
    corr = (probs * w).T @ probs
    corr = corr / corr.sum(1, keepdim=True).clamp_min(1e-8)
    return (corr.sum() - corr.trace()) / c


@register_method("mcc")
class MCC(Adaptation):
    needs_probabilities = True  # conditions on / confuses class probabilities
    aligns = False  # acts on the target logits alone

    def __init__(self, model, *, temperature: float = 2.5, **options) -> None:
        super().__init__(model, **options)
        self.temperature = temperature

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return mcc_loss(logits_t, self.temperature)
