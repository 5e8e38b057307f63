"""``linear_probe``: the frozen backbone's pooled features, a linear head solved on them
(graftlab's tuned logistic / ridge regression folded into the head's weights)."""

from __future__ import annotations

from graftlab.train.strategies.base import STRATEGIES
from graftlab.train.strategies.head_only import HeadOnly


@STRATEGIES.register("linear_probe")
class LinearProbe(HeadOnly):
    trains = "the head only, solved in closed form on cached pooled features"
    solved = True
    augments_by_default = False
