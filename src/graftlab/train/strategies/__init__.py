"""Fine-tuning strategies: what trains, at which learning rate. One file per strategy.

=====================  ==========================================================================
``linear_probe``       frozen backbone; a linear head solved on cached pooled features
``head_only``          frozen backbone; the head trained on (augmented) inputs
``last_k``             the last ``k`` blocks feeding the layer, and the head
``surgical``           the first ``k`` blocks (input side), and the head (Lee et al. 2023)
``gradual_unfreeze``   ULMFiT: the head first, then one more block (top down) every epoch
``discriminative_lr``  everything, block i from the top at ``lr * lr_decay**i`` (layer-wise decay)
``full``               everything, one learning rate for the backbone
``lora``               low-rank adapters (peft) on the backbone's declared projections
``bitfit``             only the backbone's biases (and the head)
=====================  ==========================================================================

Each declares its options and what the engine may assume (see :mod:`.base`). Frozen BatchNorm
layers keep their running statistics (the trainer puts them in eval mode).
"""

# each registers itself; imported in the order listings show them
from graftlab.train.strategies import linear_probe, head_only, last_k  # noqa: F401, I001
from graftlab.train.strategies import surgical, gradual_unfreeze, discriminative_lr  # noqa: F401
from graftlab.train.strategies import full, lora, bitfit  # noqa: F401
from graftlab.train.strategies.base import (
    STRATEGIES,
    Plan,
    Strategy,
    group,
    set_trainable,
    trainable_parameters,
)
from graftlab.train.strategies.lora import inject_lora


def make_strategy(name: str, **options) -> Strategy:
    """The registered strategy ``name`` with its options (unknown ones are refused)."""
    return STRATEGIES.get(name)(**options)


__all__ = ["STRATEGIES", "Plan", "Strategy", "group", "inject_lora", "make_strategy",
           "set_trainable", "trainable_parameters"]
