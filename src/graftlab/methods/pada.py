"""PADA: partial adversarial domain adaptation (Cao et al. 2018,
https://arxiv.org/abs/1808.04205), for a source that has classes the target lacks.

DANN aligns the whole source to the target, so target samples get pulled towards source
classes they do not have (negative transfer). PADA weighs each source class by how much the
target seems to hold of it, the target's mean prediction normalised by its maximum:

    gamma = mean_t softmax(g(f(x_t)));   gamma <- gamma / max(gamma)          (C,)
    L = sum_s gamma[y_s] CE(y_s, g(f(x_s))) / sum_s gamma[y_s]
        + lambda(p) * [ BCE(D(R(f_s)), 1) weighted by gamma[y_s] + BCE(D(R(f_t)), 0) ]

``gamma`` is a running mean over training steps (``momentum``; the paper recomputes it over the
whole target every few epochs) of the detached target predictions, starting from all ones.
Shapes: f_s (B_s, D), f_t (B_t, D), logits (B, C) -> scalar.
"""

from __future__ import annotations

import torch

from graftlab.methods.adaptation import domain_loss, register_method
from graftlab.methods.dann import DANN, reverse_gradient


@register_method("pada")
class PADA(DANN):
    needs_probabilities = True  # weighs classes by the target's mean class probabilities

    def __init__(self, model, *, momentum: float = 0.9, **options) -> None:
        super().__init__(model, **options)
        self.momentum = momentum
        self.register_buffer("class_weights", torch.ones(self.num_classes))
        self._weights_s: torch.Tensor | None = None

    def source_weights(self, source: dict, logits_t: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = torch.softmax(logits_t.detach(), -1).mean(0)
            gamma = self.momentum * self.class_weights + (1 - self.momentum) * mean / mean.max()
            self.class_weights.copy_(gamma / gamma.max())
        weights = self.class_weights[source["labels"]]
        selected = super().source_weights(source, logits_t)
        self._weights_s = weights if selected is None else weights * selected
        return self._weights_s

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        w_s = self._weights_s if self._weights_s is not None else f_s.new_ones(len(f_s))
        return domain_loss(self.discriminator, reverse_gradient(f_s), reverse_gradient(f_t),
                           w_s, f_t.new_ones(len(f_t)))
