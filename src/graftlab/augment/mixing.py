"""Mixing samples and their labels: mixup (Zhang et al. 2018, https://arxiv.org/abs/1710.09412)
and CutMix (Yun et al. 2019, https://arxiv.org/abs/1905.04899) on input batches, and mixup of
pooled features (Verma et al. 2019, Manifold Mixup, https://arxiv.org/abs/1806.05236, at the
head's input), which works on cached features, text included.

Each takes soft labels ``y`` ``(B, C)`` and returns the mixed batch with its mixed labels:

    x' = lam * x + (1 - lam) * x[perm]       y' = lam * y + (1 - lam) * y[perm]

(CutMix pastes a box of ``x[perm]``; its ``lam`` is the area left). Cross-entropy against
``y'`` equals the lam-combined loss of the two label sets.
"""

from __future__ import annotations

import math

import torch

from graftlab.augment.base import Augmentation, register_augmentation


def _beta(alpha: float) -> float:
    return float(torch.distributions.Beta(alpha, alpha).sample())


def mix_pairs(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


@register_augmentation("mixup")
class Mixup(Augmentation):
    """Input mixup, one ``lam ~ Beta(alpha, alpha)`` per batch."""

    mixes_labels = True

    def __init__(self, *, alpha: float = 0.2) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mix_pairs(x, y, _beta(self.alpha), torch.randperm(len(x), device=x.device))


@register_augmentation("cutmix")
class CutMix(Augmentation):
    """A box of another sample pasted into each image (one box per batch, area ~ 1 - lam)."""

    mixes_labels = True

    def __init__(self, *, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        cut = math.sqrt(1 - _beta(self.alpha))
        bh, bw = int(h * cut), int(w * cut)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        top, bottom = max(cy - bh // 2, 0), min(cy + bh // 2, h)
        left, right = max(cx - bw // 2, 0), min(cx + bw // 2, w)
        perm = torch.randperm(len(x), device=x.device)
        out = x.clone()
        out[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / (h * w)  # the area actually kept
        return out, lam * y + (1 - lam) * y[perm]


@register_augmentation("mix")
class MixupOrCutMix(Augmentation):
    """Mixup or CutMix, drawn per batch with probability ``p_cutmix`` for CutMix (timm's way)."""

    mixes_labels = True

    def __init__(self, *, mixup_alpha: float = 0.2, cutmix_alpha: float = 1.0,
                 p_cutmix: float = 0.5) -> None:
        super().__init__()
        self.mixup, self.cutmix = Mixup(alpha=mixup_alpha), CutMix(alpha=cutmix_alpha)
        self.p_cutmix = p_cutmix

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        use_cutmix = float(torch.rand(())) < self.p_cutmix
        return (self.cutmix if use_cutmix else self.mixup)(x, y)


@register_augmentation("feature_mixup")
class FeatureMixup(Mixup):
    """Mixup of the pooled features ``(B, D)`` the head sees (cached or not)."""

    modality = "features"
    applies_to = "features"


@register_augmentation("domain_mix")
class DomainMix(Augmentation):
    """Source-target mixing: ``x_s' = lam * x_s + (1 - lam) * x_t`` with one ``lam`` per sample
    drawn from Beta(alpha, alpha) and folded to [0.5, 1], so the source sample dominates and
    keeps its label (the target's is unknown); it moves the labelled data towards the target
    (in the spirit of inter-domain mixup, Xu et al. 2020, https://arxiv.org/abs/1912.01805).
    Without ``other`` (no target: fine-tuning) it mixes within the batch."""

    mixes_labels = True

    def __init__(self, *, alpha: float = 0.4) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor, y: torch.Tensor, other: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if other is None:
            other = x[torch.randperm(len(x), device=x.device)]
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((len(x),))
        lam = torch.maximum(lam, 1 - lam).to(x.device, x.dtype)
        lam = lam.view(-1, *([1] * (x.ndim - 1)))
        return lam * x + (1 - lam) * other[: len(x)], y


@register_augmentation("feature_domain_mix")
class FeatureDomainMix(DomainMix):
    """Source-target mixing of the pooled features the head sees (cached features too)."""

    modality = "features"
    applies_to = "features"
