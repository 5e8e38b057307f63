"""``bitfit`` (Ben Zaken et al. 2022): only the backbone's biases train (at 10x the backbone
learning rate, no weight decay), and the head."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("bitfit")
class BitFit(Strategy):
    trains = "the backbone's biases and the head"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        biases = [p for n, p in model.backbone.named_parameters() if n.endswith("bias")]
        for p in biases:
            p.requires_grad_(True)
        groups.append({"params": biases, "lr": lr_backbone * 10, "name": "biases",
                       "weight_decay": 0.0})
        return self.plan(groups)
