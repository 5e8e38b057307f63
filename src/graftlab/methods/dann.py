"""DANN: domain-adversarial training (Ganin & Lempitsky 2015, https://arxiv.org/abs/1409.7495).

A discriminator D learns to tell source features from target features; a gradient reversal
layer between the features and D makes the feature extractor learn to fool it:

    L_transfer = BCE(D(R(f_s)), 1) + BCE(D(R(f_t)), 0)      R: identity forward, -grad backward

Shapes: f_s (B_s, D), f_t (B_t, D) -> scalar. The reversal's own coefficient is 1; the
schedule lambda(p) scales the whole term (as in the paper's practice, and TLlib's).
"""

from __future__ import annotations

import torch

from graftlab.methods.adaptation import Adaptation, discriminator, domain_loss, register_method


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    return _Reverse.apply(x)


@register_method("dann")
class DANN(Adaptation):
    def __init__(self, model, *, hidden: int = 256, **options) -> None:
        super().__init__(model, **options)
        self.discriminator = discriminator(self.feature_dim, hidden)

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return domain_loss(self.discriminator, reverse_gradient(f_s), reverse_gradient(f_t))
