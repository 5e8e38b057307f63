"""Fine-tuning strategies: what to train, at which learning rate. Each is a named option.

=====================  ==========================================================================
``linear_probe``       frozen backbone; a linear head trained on cached pooled features
``head_only``          frozen backbone; the head trained on (augmented) inputs
``last_k``             the last ``k`` blocks feeding the layer, and the head
``gradual_unfreeze``   ULMFiT: the head first, then one more block (top down) every epoch
``discriminative_lr``  everything, block i from the top at ``lr * lr_decay**i`` (layer-wise decay)
``full``               everything, one learning rate for the backbone
``lora``               low-rank adapters (peft) on the backbone's linear / 1x1-conv layers
``bitfit``             only the backbone's biases (and the head)
=====================  ==========================================================================

Frozen BatchNorm layers keep their running statistics (the trainer puts them in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from graftlab.errors import ConfigError, unknown_name
from graftlab.train.model import GraftedModel

STRATEGIES = ("linear_probe", "head_only", "last_k", "gradual_unfreeze", "discriminative_lr",
              "full", "lora", "bitfit")
# peft LoRA targets per backbone family: BERT attention projections; EfficientNet's 1x1 convs.
LORA_TARGETS = {"text": ["query", "key", "value", "dense"],
                "image": ["_expand_conv", "_project_conv", "0"]}


@dataclass
class Plan:
    """What a strategy decided: parameter groups for the optimiser and an epoch hook."""

    param_groups: list[dict]
    on_epoch_start: Callable[[int], None] | None = None
    notes: dict = field(default_factory=dict)

    @property
    def num_trainable(self) -> int:
        """Parameters in the optimiser's groups (for a gradual schedule, every block it could
        unfreeze; Grafter reports those its hook actually unfroze)."""
        return sum(p.numel() for g in self.param_groups for p in g["params"])


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _set(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def apply_strategy(model: GraftedModel, strategy: str, *, lr_head: float, lr_backbone: float,
                   k: int = 2, lr_decay: float = 0.7, lora_r: int = 8, lora_alpha: int = 16,
                   weight_decay: float = 0.01) -> Plan:
    """Set ``requires_grad`` across ``model`` for ``strategy``; return the optimiser groups."""
    if strategy not in STRATEGIES:
        raise unknown_name("strategy", strategy, STRATEGIES,
                           hint="see graftlab.train.strategies for what each one trains.")
    blocks = model.trunk_blocks()
    _set(model.backbone, False)
    _set(model.head, True)
    head = {"params": list(model.head.parameters()), "lr": lr_head, "name": "head",
            "weight_decay": weight_decay}
    groups = [head]
    hook = None
    if strategy == "last_k":
        if not 1 <= k <= len(blocks):
            raise ConfigError(
                f"last_k with k={k}: backbone {model.backbone.name!r} has {len(blocks)} blocks "
                f"up to layer {model.layer!r}.", hint=f"choose k between 1 and {len(blocks)}.")
        for _, block in blocks[-k:]:
            _set(block, True)
        groups.append(_group([b for _, b in blocks[-k:]], lr_backbone, "last_k", weight_decay))
    elif strategy == "gradual_unfreeze":
        ordered = list(reversed(blocks))
        groups.append({"params": [p for _, b in ordered for p in b.parameters()],
                       "lr": lr_backbone, "name": "backbone", "weight_decay": weight_decay})

        def hook(epoch: int) -> None:
            for _, block in ordered[:epoch]:  # epoch 0: head only; epoch e: e more blocks
                _set(block, True)
    elif strategy == "discriminative_lr":
        for depth, (name, block) in enumerate(reversed(blocks)):
            _set(block, True)
            groups.append(_group([block], lr_backbone * lr_decay**depth, name, weight_decay))
    elif strategy == "full":
        _set(model.backbone, True)
        groups.append(_group([model.backbone], lr_backbone, "backbone", weight_decay))
    elif strategy == "bitfit":
        biases = [p for n, p in model.backbone.named_parameters() if n.endswith("bias")]
        for p in biases:
            p.requires_grad_(True)
        groups.append({"params": biases, "lr": lr_backbone * 10, "name": "biases",
                       "weight_decay": 0.0})
    elif strategy == "lora":
        adapters = inject_lora(model, r=lora_r, alpha=lora_alpha)
        groups.append({"params": adapters, "lr": lr_head, "name": "lora",
                       "weight_decay": 0.0})
    groups = [g for g in groups if g["params"]]
    return Plan(groups, hook, {"strategy": strategy})


def _group(modules: list[nn.Module], lr: float, name: str, weight_decay: float) -> dict:
    return {"params": [p for m in modules for p in m.parameters()], "lr": lr, "name": name,
            "weight_decay": weight_decay}


def inject_lora(model: GraftedModel, *, r: int, alpha: int) -> list[nn.Parameter]:
    """Add peft LoRA adapters to the backbone's matching linear / conv layers (in place)."""
    from peft import LoraConfig, inject_adapter_in_model

    backbone = model.backbone
    wanted = set(LORA_TARGETS[backbone.modality])
    names = [n for n, m in backbone.named_modules()
             if isinstance(m, nn.Linear | nn.Conv2d) and n.rsplit(".", 1)[-1] in wanted
             and (not isinstance(m, nn.Conv2d) or m.kernel_size == (1, 1) and m.groups == 1)]
    if not names:
        raise ConfigError(f"backbone {backbone.name!r} has no layers LoRA can adapt.",
                          hint="use bitfit or last_k for it.")
    for name in names:  # peft re-creates a conv by its type: give it a plain Conv2d
        _plain_conv(backbone, name)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=names)
    inject_adapter_in_model(config, backbone)
    adapters = [p for n, p in backbone.named_parameters() if "lora_" in n]
    for p in adapters:
        p.requires_grad_(True)
    return adapters


def _plain_conv(root: nn.Module, name: str) -> None:
    """Swap a 1x1, stride-1 Conv2d subclass (e.g. a static-'same'-padding conv, whose padding
    is then zero) for a plain ``nn.Conv2d`` with the same weights: identical outputs, and a
    type peft can rebuild for its adapters."""
    module = root.get_submodule(name)
    if type(module) is nn.Conv2d or not isinstance(module, nn.Conv2d):
        return
    if module.kernel_size != (1, 1) or tuple(module.stride) != (1, 1):
        return
    plain = nn.Conv2d(module.in_channels, module.out_channels, 1, bias=module.bias is not None)
    plain.load_state_dict(module.state_dict(), strict=False)
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, plain)
