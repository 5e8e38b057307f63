"""``full``: every backbone weight trains, at one learning rate."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES, Strategy, group


@STRATEGIES.register("full")
class Full(Strategy):
    trains = "everything"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        model.backbone.requires_grad_(True)
        groups.append(group([model.backbone], lr_backbone, "backbone", weight_decay))
        return self.plan(groups)
