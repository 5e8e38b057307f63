"""``surgical`` (Lee et al., "Surgical Fine-Tuning Improves Adaptation to Distribution
Shifts", ICLR 2023, https://arxiv.org/abs/2210.11466): tune only the *first* ``k`` blocks, and
the head. Under an input-level shift (colour, texture, corruptions: MNIST -> MNIST-M) the
low-level features are what must change; the upper blocks keep their pretrained behaviour."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES, Strategy, check_k, group


@STRATEGIES.register("surgical")
class Surgical(Strategy):
    options = {"k": 2}
    trains = "the first k blocks (input side), and the head"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        first = [block for _, block in check_k(model, self.opts["k"], self.name)[:self.opts["k"]]]
        for block in first:
            block.requires_grad_(True)
        groups.append(group(first, lr_backbone, "first_k", weight_decay))
        return self.plan(groups)
