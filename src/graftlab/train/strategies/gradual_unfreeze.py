"""``gradual_unfreeze`` (ULMFiT, Howard & Ruder 2018): the head first, then one more block,
top down, every epoch. The schedule is a callback on the trainer's ``on_epoch_start``."""

from __future__ import annotations

from graftlab.train.callbacks import Callback
from graftlab.train.strategies.base import STRATEGIES, Strategy, set_trainable


class Unfreeze(Callback):
    """At epoch e, the top e blocks train (epoch 0: the head alone); a resumed run unfreezes
    the same blocks again before its first epoch."""

    def __init__(self, ordered: list) -> None:
        self.ordered = ordered

    def on_epoch_start(self, trainer, epoch: int) -> None:
        for block in self.ordered[:epoch]:
            set_trainable(block, True)


@STRATEGIES.register("gradual_unfreeze")
class GradualUnfreeze(Strategy):
    trains = "the head, then one more block (top down) every epoch"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        ordered = [block for _, block in reversed(model.trunk_blocks())]
        groups.append({"params": [p for b in ordered for p in b.parameters()],
                       "lr": lr_backbone, "name": "backbone", "weight_decay": weight_decay})
        return self.plan(groups, [Unfreeze(ordered)])
