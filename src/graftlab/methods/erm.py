"""Empirical risk minimisation on labelled data, with the usual regularisers of fine-tuning.

    L = CE(y, f(x); label smoothing) [on mixup'd inputs]  +  alpha/2 * ||w - w0||^2 (L2-SP)

L2-SP (Li et al. 2018, https://arxiv.org/abs/1802.01483) pulls the trained backbone weights
``w`` towards their pretrained values ``w0`` instead of towards zero. Mixup (Zhang et al. 2018,
https://arxiv.org/abs/1710.09412) trains on convex mixtures of image pairs and of their
labels. Weight decay lives in the optimiser groups; early stopping is a trainer callback.
Regression (``num_classes == 0``) uses the mean squared error. A ``distill`` term
(:class:`~graftlab.methods.distill.Distillation`) mixes the task loss with a teacher's soft
targets on the same (augmented, mixed) inputs; validation still scores the labels alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from graftlab.errors import ConfigError
from graftlab.methods.distill import Distillation


def task_loss(logits: torch.Tensor, labels: torch.Tensor, num_classes: int,
              label_smoothing: float = 0.0, weights: torch.Tensor | None = None
              ) -> torch.Tensor:
    """Cross-entropy over ``num_classes`` classes, or the mean squared error when it is 0;
    with per-sample ``weights``, their weighted mean (a selection's importance weights)."""
    if weights is not None:
        if num_classes == 0:
            per = F.mse_loss(logits.squeeze(-1), labels.float(), reduction="none")
        else:
            per = F.cross_entropy(logits, labels, label_smoothing=label_smoothing,
                                  reduction="none")
        return (per * weights).sum() / weights.sum().clamp_min(1e-12)
    if num_classes == 0:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


class ERM(nn.Module):
    """Wraps a model ``f(inputs) -> logits``; batches are ``{"inputs": ..., "labels": ...}``."""

    def __init__(self, model: nn.Module, *, num_classes: int, label_smoothing: float = 0.0,
                 mixup: float = 0.0, l2sp: float = 0.0, augment: nn.Module | None = None,
                 distill: Distillation | None = None, mix: nn.Module | None = None) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        if mixup < 0 or l2sp < 0:
            raise ConfigError(f"mixup and l2sp must be >= 0, got {mixup} and {l2sp}.")
        self.model, self.num_classes = model, num_classes
        self.label_smoothing, self.mixup, self.l2sp = label_smoothing, mixup, l2sp
        self.augment, self.distill = augment, distill
        # mixes samples and soft labels ``(x, y) -> (x, y)``: input pixels or, where it
        # declares applies_to == "features", the pooled features the head sees
        self.mix = mix
        self._anchor: dict[str, torch.Tensor] = {}

    def anchor_pretrained(self) -> None:
        """Remember the current (pretrained) backbone weights as L2-SP's anchor (none when the
        model is a head over cached features: no backbone weight trains)."""
        if self.l2sp and getattr(self.model, "backbone", None) is not None:
            self._anchor = {n: p.detach().clone() for n, p in
                            self.model.backbone.named_parameters() if p.requires_grad}

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
        return task_loss(logits, labels, self.num_classes, self.label_smoothing, weights)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        inputs, labels = dict(batch["inputs"]), batch["labels"]
        w = batch.get("weights")  # per-sample weights (a selection's), or None
        pixels = inputs.get("pixel_values")
        if self.training and pixels is not None and self.augment is not None:
            inputs["pixel_values"] = pixels = self.augment(pixels)
        if self.training and self.mix is not None and self.num_classes:
            logits, loss = self._mixed(inputs, labels)
        elif self.training and self.mixup and pixels is not None and self.num_classes:
            lam = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
            perm = torch.randperm(len(labels))
            inputs["pixel_values"] = lam * pixels + (1 - lam) * pixels[perm]
            logits = self.model(inputs)
            loss = lam * self._loss(logits, labels, w) + (1 - lam) * self._loss(
                logits, labels[perm], None if w is None else w[perm])
        else:
            logits = self.model(inputs)
            loss = self._loss(logits, labels, w)
        out = {"loss": loss, "logits": logits.detach()}
        if self.distill is not None:
            out.update(self.distill(loss, logits, inputs, batch))
        if self.training and self._anchor:
            params = dict(self.model.backbone.named_parameters())
            reg = sum(((params[n] - w0) ** 2).sum() for n, w0 in self._anchor.items())
            out["l2sp"] = reg.detach()
            out["loss"] = out["loss"] + 0.5 * self.l2sp * reg
        return out

    def _mixed(self, inputs: dict, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the cross-entropy against the mixed soft labels."""
        soft = F.one_hot(labels, self.num_classes).float()
        if getattr(self.mix, "applies_to", "inputs") == "features":
            feats, soft = self.mix(self.model.features(inputs), soft)
            logits = self.model.head(feats)
        else:
            key = "pixel_values" if "pixel_values" in inputs else "features"
            inputs[key], soft = self.mix(inputs[key], soft)
            logits = self.model(inputs)
        return logits, F.cross_entropy(logits, soft, label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, float]:
        """Sums over the batch (the trainer divides by ``count``)."""
        logits = self.model(batch["inputs"])
        labels = batch["labels"]
        n = len(labels)
        out = {"loss": float(self._loss(logits, labels)) * n, "count": n}
        if self.num_classes:
            out["accuracy"] = float((logits.argmax(-1) == labels).sum())
        return out
