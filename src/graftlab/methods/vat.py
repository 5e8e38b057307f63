"""VAT: virtual adversarial training (Miyato et al. 2018, https://arxiv.org/abs/1704.03976),
and VADA, VAT + DANN + conditional entropy on the target (Shu et al. 2018, "A DIRT-T Approach
to Unsupervised Domain Adaptation", https://arxiv.org/abs/1802.08735).

VAT penalises how much the prediction moves under the worst small perturbation ``r`` of the
input ``x`` of the trained part (the cached pooled features with ``head_only``, the frozen
prefix's activations with ``last_k``, the pixels when the whole network runs; for text run end
to end, the pooled features):

    d ~ N(0, I);  g = grad_r KL(p(x) || p(x + r)) at r = xi * d / ||d||   (one power iteration)
    r_adv = eps * ||x|| * g / ||g||;   L_vat(x) = KL(p(x) || p(x + r_adv))     (p(x) held fixed)

``xi`` and ``eps`` are relative to each sample's norm, so one setting fits pixels and
features of any scale. Shapes: x (B, ...) -> scalar. Conditional entropy
``H_t = mean_i H(p(x_t,i))`` pushes decision boundaries away from the target's dense regions.

    vat:   L_transfer = source_weight * L_vat(x_s) + target_weight * (H_t + L_vat(x_t))
    vada:  L_transfer = L_dann + the same                          (DANN as ``dann`` runs it)

The paper scales its terms as lambda_d = 1e-2, lambda_s = 1, lambda_t = 1e-2 on most digit
pairs; here the domain term keeps ``dann``'s weight (so ``vada`` is ``dann`` plus VAT) and the
defaults below were not tuned on any target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graftlab.methods.adaptation import Adaptation, entropy, register_method
from graftlab.methods.dann import DANN

def kl_logits(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(softmax(p) || softmax(q))."""
    log_p = F.log_softmax(p_logits, -1)
    return (log_p.exp() * (log_p - F.log_softmax(q_logits, -1))).sum(-1).mean()


def _unit(d: torch.Tensor) -> torch.Tensor:
    norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
    return d / norm.view(-1, *([1] * (d.ndim - 1)))


def vat_loss(logits_of, x: torch.Tensor, logits: torch.Tensor, *, xi: float = 1e-3,
             eps: float = 0.1, power_iterations: int = 1) -> torch.Tensor:
    """L_vat at ``x`` (B, ...): ``logits_of(x')`` gives the logits of a perturbed ``x'``;
    ``logits`` are the clean ones (held fixed as the target distribution)."""
    x, target = x.detach(), logits.detach()
    scale = x.flatten(1).norm(dim=1).clamp_min(1e-6).view(-1, *([1] * (x.ndim - 1)))
    d = torch.randn_like(x)
    for _ in range(power_iterations):
        d = (xi * scale * _unit(d)).requires_grad_()
        with torch.enable_grad():
            distance = kl_logits(target, logits_of(x + d))
            d = torch.autograd.grad(distance, d)[0]
    r_adv = eps * scale * _unit(d)
    return kl_logits(target, logits_of(x + r_adv.detach()))


class _Consistency:
    """The VAT and entropy terms, for an Adaptation that keeps its batch during ``forward``."""

    def _init_terms(self, source_weight: float, target_weight: float, xi: float,
                    eps: float) -> None:
        self.source_weight, self.target_weight = source_weight, target_weight
        self.xi, self.eps = xi, eps
        self._batch: dict | None = None

    def _vat(self, inputs: dict, logits: torch.Tensor) -> torch.Tensor:
        head, model = self.model.head, self.model
        # the float input of the trained part: cached features, activations or pixels
        key = next((k for k, v in inputs.items()
                    if torch.is_tensor(v) and v.is_floating_point()), None)
        if key is None:  # token ids: perturb the pooled features the head sees
            with torch.no_grad():
                feats = model.features(inputs)
            return vat_loss(lambda f: head.classify(head.embed(f)), feats, logits,
                            xi=self.xi, eps=self.eps)

        def logits_of(x: torch.Tensor) -> torch.Tensor:
            return head.classify(head.embed(model.features({**inputs, key: x})))

        return vat_loss(logits_of, inputs[key], logits, xi=self.xi, eps=self.eps)

    def consistency(self, logits_s: torch.Tensor, logits_t: torch.Tensor) -> torch.Tensor:
        src, tgt = self._batch["source"]["inputs"], self._batch["target"]["inputs"]
        loss = logits_t.new_zeros(())
        if self.source_weight:
            loss = loss + self.source_weight * self._vat(src, logits_s)
        if self.target_weight:
            cond_entropy = entropy(logits_t.softmax(-1)).mean()
            loss = loss + self.target_weight * (cond_entropy + self._vat(tgt, logits_t))
        return loss

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        self._batch = batch  # the inputs VAT perturbs; dropped after the step
        try:
            return super().forward(batch)
        finally:
            self._batch = None


@register_method("vat")
class VAT(_Consistency, Adaptation):
    aligns = False  # smooths the classifier around each sample; aligns no features
    needs_probabilities = True  # KL between class probabilities, the target's entropy

    def __init__(self, model, *, source_weight: float = 1.0, target_weight: float = 0.1,
                 xi: float = 1e-3, eps: float = 0.1, **options) -> None:
        super().__init__(model, **options)
        self._init_terms(source_weight, target_weight, xi, eps)

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return self.consistency(logits_s, logits_t)


@register_method("vada")
class VADA(_Consistency, DANN):
    needs_probabilities = True  # as VAT

    def __init__(self, model, *, source_weight: float = 1.0, target_weight: float = 0.1,
                 xi: float = 1e-3, eps: float = 0.1, **options) -> None:
        super().__init__(model, **options)
        self._init_terms(source_weight, target_weight, xi, eps)

    def transfer(self, f_s, f_t, logits_s, logits_t) -> torch.Tensor:
        return super().transfer(f_s, f_t, logits_s, logits_t) + \
            self.consistency(logits_s, logits_t)
