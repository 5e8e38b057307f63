"""``head_only``: the backbone frozen, the head trained (on augmented images by default)."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("head_only")
class HeadOnly(Strategy):
    trains = "the head only"
    moves_backbone = False
    augments_by_default = True

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        return self.plan(self.start(model, lr_head, weight_decay))

    def frozen_prefix(self, model):
        return model.layer
