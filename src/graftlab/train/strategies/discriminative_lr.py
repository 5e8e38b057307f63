"""``discriminative_lr``: everything trains, block i from the top at ``lr * lr_decay**i``
(layer-wise learning-rate decay)."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES, Strategy, group


@STRATEGIES.register("discriminative_lr")
class DiscriminativeLR(Strategy):
    options = {"lr_decay": 0.7}
    trains = "every block, each one lower at a smaller learning rate"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        for depth, (name, block) in enumerate(reversed(model.trunk_blocks())):
            block.requires_grad_(True)
            groups.append(group([block], lr_backbone * self.opts["lr_decay"] ** depth, name,
                                weight_decay))
        return self.plan(groups)
