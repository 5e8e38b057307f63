"""``lora`` (Hu et al. 2021, https://arxiv.org/abs/2106.09685): low-rank adapters (peft) on
the backbone's linear and 1x1-conv layers whose names its backbone declares
(``Backbone.lora_targets``: BERT's attention projections, EfficientNet's 1x1 convs)."""

from __future__ import annotations

from torch import nn

from graftlab.errors import ConfigError
from graftlab.train.model import GraftedModel
from graftlab.train.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("lora")
class LoRA(Strategy):
    options = {"lora_r": 8, "lora_alpha": 16}
    trains = "low-rank adapters on the backbone's projections, and the head"

    def apply(self, model, *, lr_head, lr_backbone, weight_decay):
        groups = self.start(model, lr_head, weight_decay)
        adapters = inject_lora(model, r=self.opts["lora_r"], alpha=self.opts["lora_alpha"])
        groups.append({"params": adapters, "lr": lr_head, "name": "lora", "weight_decay": 0.0})
        return self.plan(groups)


def inject_lora(model: GraftedModel, *, r: int, alpha: int) -> list[nn.Parameter]:
    """Add peft LoRA adapters to the backbone's matching linear / conv layers (in place)."""
    from peft import LoraConfig, inject_adapter_in_model

    backbone = model.backbone
    wanted = set(backbone.lora_targets)
    names = [n for n, m in backbone.named_modules()
             if isinstance(m, nn.Linear | nn.Conv2d) and n.rsplit(".", 1)[-1] in wanted
             and (not isinstance(m, nn.Conv2d) or m.kernel_size == (1, 1) and m.groups == 1)]
    if not names:
        raise ConfigError(f"backbone {backbone.name!r} has no layers LoRA can adapt "
                          f"(it declares lora_targets={list(backbone.lora_targets)}).",
                          hint="use bitfit or last_k for it, or pass lora_targets= when "
                          "wrapping your module.")
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
