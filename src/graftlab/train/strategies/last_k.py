"""``last_k``: the last ``k`` blocks feeding the head's layer, and the head. The blocks below
stay frozen, so the engine trains from their cached output where the backbone can resume."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES, Strategy, check_k, group


@STRATEGIES.register("last_k")
class LastK(Strategy):
    options = {"k": 2}
    trains = "the last k blocks below the layer, and the head"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        top = [block for _, block in check_k(model, self.opts["k"], self.name)[-self.opts["k"]:]]
        groups.append(group(top, lr_backbone, "last_k", weight_decay))
        for block in top:
            block.requires_grad_(True)
        return self.plan(groups)

    def frozen_prefix(self, model):
        blocks = [name for name, _ in model.trunk_blocks()]
        k = self.opts["k"]
        return blocks[-k - 1] if k < len(blocks) else None
