"""CDAN+E: conditional domain-adversarial training with entropy conditioning (Long et al.
2018, https://arxiv.org/abs/1705.10667).

The discriminator sees the multilinear map h = f (x) g of features and class probabilities
(flattened outer product, (B, D*C)); when D*C exceeds ``max_dim`` a fixed random projection
stands in, h = (R_f f) * (R_g g) / sqrt(max_dim). Entropy conditioning weights each sample by
w = 1 + exp(-H(g)), so confident predictions count more:

    L_transfer = sum_i w_i BCE(D(R(h_i)), domain_i) / sum_i w_i       R: gradient reversal

Shapes: f (B, D), logits (B, C) -> scalar.
"""

from __future__ import annotations

import math

import torch

from graftlab.methods.adaptation import (Adaptation, discriminator, domain_loss, entropy,
                                         register_method)
from graftlab.methods.dann import reverse_gradient


@register_method("cdan")
class CDAN(Adaptation):
    needs_probabilities = True  # conditions on / confuses class probabilities
    def __init__(self, model, *, hidden: int = 256, max_dim: int = 1024,
                 entropy_conditioning: bool = True, **options) -> None:
        super().__init__(model, **options)
        d, c = self.feature_dim, self.num_classes
        self.randomized = d * c > max_dim
        out = max_dim if self.randomized else d * c
        if self.randomized:
            gen = torch.Generator().manual_seed(0)
            self.register_buffer("r_f", torch.randn(d, max_dim, generator=gen))
            self.register_buffer("r_g", torch.randn(c, max_dim, generator=gen))
        self.max_dim, self.entropy_conditioning = max_dim, entropy_conditioning
        self.discriminator = discriminator(out, hidden)

    def _map(self, f: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        if self.randomized:
            return (f @ self.r_f) * (probs @ self.r_g) / math.sqrt(self.max_dim)
        return torch.bmm(probs.unsqueeze(2), f.unsqueeze(1)).flatten(1)

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        p_s, p_t = logits_s.softmax(-1).detach(), logits_t.softmax(-1).detach()
        h_s = reverse_gradient(self._map(f_s, p_s))
        h_t = reverse_gradient(self._map(f_t, p_t))
        w_s = w_t = None
        if self.entropy_conditioning:
            w_s, w_t = 1 + torch.exp(-entropy(p_s)), 1 + torch.exp(-entropy(p_t))
        return domain_loss(self.discriminator, h_s, h_t, w_s, w_t)
