"""What a fine-tuning strategy is: a small class that declares what it does.

A strategy sets ``requires_grad`` across a :class:`~graftlab.train.model.GraftedModel` and
returns a :class:`Plan` (the optimiser's parameter groups, plus callbacks for a schedule). It
declares, as class attributes, the options it takes and what the engine may assume:

``options``              the options it reads, with their defaults (``k``, ``lr_decay`` ...)
``trains``               what it trains, in words (CLI listings, reports)
``moves_backbone``       whether any backbone weight below the head changes
``solved``               the linear head is solved in closed form, not trained (linear_probe)
``augments_by_default``  image inputs are augmented unless the user says otherwise

and :meth:`Strategy.frozen_prefix`: the deepest layer whose output training leaves unchanged,
so the engine can train from its cached output. A new strategy is one file in this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from graftlab.errors import ConfigError, closest
from graftlab.registry import Registry
from graftlab.train.callbacks import Callback
from graftlab.train.model import GraftedModel

STRATEGIES: Registry[type[Strategy]] = Registry(
    "strategy", hint="`graftlab strategies` lists what each one trains.")


@dataclass
class Plan:
    """What a strategy decided: parameter groups for the optimiser, and callbacks that change
    what trains during the run (gradual unfreezing)."""

    param_groups: list[dict]
    callbacks: list[Callback] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @property
    def num_trainable(self) -> int:
        """Parameters in the optimiser's groups (for a schedule, every block it could
        unfreeze; the engine reports those it actually unfroze)."""
        return sum(p.numel() for g in self.param_groups for p in g["params"])

    @property
    def scheduled(self) -> bool:
        return bool(self.callbacks)


class Strategy:
    """Base: subclasses declare the class attributes and implement :meth:`apply`."""

    name: ClassVar[str] = "strategy"
    options: ClassVar[dict[str, Any]] = {}
    trains: ClassVar[str] = ""
    moves_backbone: ClassVar[bool] = True
    solved: ClassVar[bool] = False
    augments_by_default: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            guess = closest(unknown[0], self.options)
            raise ConfigError(
                f"strategy {self.name!r} has no option {unknown[0]!r} (its options: {known})."
                + (f" Did you mean {guess!r}?" if guess else ""),
                hint="drop it, or pick a strategy that takes it (`graftlab strategies`).")
        self.opts = {**self.options, **options}

    def apply(self, model: GraftedModel, *, lr_head: float, lr_backbone: float,
              weight_decay: float) -> Plan:
        """Freeze / unfreeze ``model``; return the optimiser groups (head first)."""
        raise NotImplementedError

    def frozen_prefix(self, model: GraftedModel) -> str | None:
        """The deepest layer whose output never changes during training (None: none does)."""
        return None

    # ---- shared pieces ------------------------------------------------------------------
    def start(self, model: GraftedModel, lr_head: float, weight_decay: float) -> list[dict]:
        """Everything in the backbone frozen, the head trained: the head's group."""
        set_trainable(model.backbone, False)
        set_trainable(model.head, True)
        return [group([model.head], lr_head, "head", weight_decay)]

    def plan(self, groups: list[dict], callbacks: list[Callback] | None = None) -> Plan:
        return Plan([g for g in groups if g["params"]], list(callbacks or []),
                    {"strategy": self.name, **self.opts})


def set_trainable(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def group(modules: list[nn.Module], lr: float, name: str, weight_decay: float) -> dict:
    return {"params": [p for m in modules for p in m.parameters()], "lr": lr, "name": name,
            "weight_decay": weight_decay}


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def check_k(model: GraftedModel, k: int, strategy: str) -> list[tuple[str, nn.Module]]:
    """The trunk's blocks, after checking that ``k`` of them exist."""
    blocks = model.trunk_blocks()
    if not isinstance(k, int) or not 1 <= k <= len(blocks):
        raise ConfigError(
            f"{strategy} with k={k}: backbone {model.backbone.name!r} has {len(blocks)} blocks "
            f"up to layer {model.layer!r}.", hint=f"choose k between 1 and {len(blocks)}.")
    return blocks
