"""PADA: partial adversarial domain adaptation (Cao et al. 2018,
https://arxiv.org/abs/1808.04205), for a source that has classes the target lacks.

DANN aligns the whole source to the target, so target samples get pulled towards source
classes they do not have (negative transfer). PADA weighs each source class by how much the
target seems to hold of it, the target's mean prediction normalised by its maximum:

    gamma = mean_t softmax(g(f(x_t)) / T);   gamma <- gamma / max(gamma)        (C,)
    L = sum_s gamma[y_s] CE(y_s, g(f(x_s))) / sum_s gamma[y_s]
        + lambda(p) * [ BCE(D(R(f_s)), 1) weighted by gamma[y_s] + BCE(D(R(f_t)), 0) ]

As the paper and TLlib's reference (``AutomaticUpdateClassWeightModule``) schedule it,
``gamma`` is all ones (plain DANN) for the first ``update_every`` steps, then replaced every
``update_every`` steps by the mean over the target predictions of the steps since the last
update (default a tenth of training: about one pass over the target when training runs ten),
never by the latest batch alone: an early, skewed guess would otherwise starve classes the
target holds and feed on itself. Shapes: f_s (B_s, D), f_t (B_t, D), logits (B, C) -> scalar.
"""

from __future__ import annotations

import torch

from graftlab.methods.adaptation import domain_loss, register_method
from graftlab.methods.dann import DANN, reverse_gradient


@register_method("pada")
class PADA(DANN):
    needs_probabilities = True  # weighs classes by the target's mean class probabilities

    def __init__(self, model, *, update_every: int | None = None, temperature: float = 1.0,
                 **options) -> None:
        super().__init__(model, **options)
        self.update_every = max(1, update_every or self.total_steps // 10)
        self.temperature = temperature
        self.register_buffer("class_weights", torch.ones(self.num_classes))
        self.register_buffer("_sum", torch.zeros(self.num_classes))
        self.register_buffer("_count", torch.zeros(()))
        self._weights_s: torch.Tensor | None = None

    def source_weights(self, source: dict, logits_t: torch.Tensor) -> torch.Tensor:
        if self.training:
            step = int(self.step)  # this step's index; forward counts it after the step
            if step and step % self.update_every == 0 and self._count > 0:
                gamma = self._sum / self._count  # the window: the steps since the last update
                self.class_weights.copy_(gamma / gamma.max())
                self._sum.zero_()
                self._count.zero_()
            probs = torch.softmax(logits_t.detach() / self.temperature, -1)
            self._sum += probs.sum(0)
            self._count += len(probs)
        labels = source["labels"]  # class ids, or soft labels (B, C) where batches are mixed
        weights = labels.to(self.class_weights.dtype) @ self.class_weights \
            if labels.is_floating_point() else self.class_weights[labels]
        selected = super().source_weights(source, logits_t)
        self._weights_s = weights if selected is None else weights * selected
        return self._weights_s

    def summary(self) -> dict:
        """The class weights in use when training ended: how much of each source class the
        target seems to hold (1 for the most; all ones if no update came)."""
        return {"class_weights": [round(float(w), 4) for w in self.class_weights]}

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        w_s = self._weights_s if self._weights_s is not None else f_s.new_ones(len(f_s))
        return domain_loss(self.discriminator, reverse_gradient(f_s), reverse_gradient(f_t),
                           w_s, f_t.new_ones(len(f_t)))
