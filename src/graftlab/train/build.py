"""Build what trains, from names: backbone + layer + head -> a GraftedModel, and a strategy's
plan for it (what trains, at which learning rate)."""

from __future__ import annotations

import copy

from typing import Any

import torch

from graftlab.backbones import Backbone, create_backbone
from graftlab.config import TrainConfig
from graftlab.config.loading import check_ranges
from graftlab.heads import check_head_task, create_head
from graftlab.train.model import GraftedModel
from graftlab.train.strategies import STRATEGIES, Plan, Strategy, make_strategy


def layer_output_shape(backbone: Backbone, layer: str) -> tuple[int, ...]:
    """The shape of one sample's unpooled output at ``layer``, from a tiny dummy input."""
    with torch.no_grad():
        out = backbone.forward_layers(backbone.probe_batch(), [layer])[layer]
    return tuple(out.shape[1:])


def build_model(backbone: Any, *, head: str = "linear", head_options: dict | None = None,
                layer: str | None = None, pooling: str | None = None, num_outputs: int,
                pretrained: bool = True, seed: int = 0,
                backbone_options: dict | None = None, task: str = "sample") -> GraftedModel:
    """Backbone (pretrained, or re-drawn for the from-scratch baseline) + a head sized to the
    chosen layer. Seeded, so the same arguments give the same initial model. ``task``
    (``sample`` or ``tokens``: one output per sample or per token) must be the head's."""
    torch.manual_seed(seed)
    net = create_backbone(backbone, **(backbone_options or {})).eval()
    if not pretrained:
        if not isinstance(backbone, str):  # an object given may be shared (tune's folds, the
            net = copy.deepcopy(net)       # user's own module): re-draw a copy of it
        reinitialise(net)
    (layer,) = net.check_layers(layer)
    shape = layer_output_shape(net, layer)
    width = shape[0] if len(shape) in (1, 3) else shape[-1]  # (C,) / (C, H, W) / (T, D)
    grafted_head = create_head(head, in_features=int(width), num_outputs=num_outputs,
                               **(head_options or {}))
    check_head_task(grafted_head, task)
    return GraftedModel(net, grafted_head, layer=layer, pooling=pooling)


def strategy_from(name: str, settings: dict[str, Any], explicit: dict | None = None
                  ) -> Strategy:
    """The strategy ``name`` with the options it declares, read from an estimator's
    ``settings`` (its ``k``, ``lr_decay`` ...) and overridden by ``explicit`` options."""
    cls = STRATEGIES.get(name)
    declared = {key: settings[key] for key in cls.options if key in settings}
    return make_strategy(name, **{**declared, **(explicit or {})})


def make_plan(model: GraftedModel, strategy: Strategy, *, lr_head: float,
              lr_backbone: float | None, weight_decay: float) -> Plan:
    """Apply ``strategy`` to ``model``; the backbone's learning rate defaults to the one its
    family declares (``Backbone.lr_backbone``)."""
    return strategy.apply(model, lr_head=lr_head,
                          lr_backbone=lr_backbone or model.backbone.lr_backbone,
                          weight_decay=weight_decay)


# the estimator settings checked before training, in the ranges the fit command's schema
# names (``graftlab.config``: one place for every range)
NUMBERS = ("epochs", "batch_size", "lr", "lr_backbone", "weight_decay", "k", "lora_r",
           "lora_alpha", "lr_decay", "early_stopping", "validation_fraction",
           "label_smoothing")


def check_numbers(settings: dict[str, Any]) -> None:
    """Refuse an estimator's training numbers that cannot train (``lr=0`` trains nothing,
    ``batch_size=0`` divides by zero), naming the setting, before anything is built."""
    check_ranges(TrainConfig, {name: settings.get(name) for name in NUMBERS})


def backbone_modality(backbone: Any, options: dict | None = None) -> str:
    """``"image"`` or ``"text"``, without loading weights where the registry can tell."""
    from graftlab.backbones.registry import describe_backbone, prefix_modality

    if isinstance(backbone, str) and prefix_modality(backbone):
        return prefix_modality(backbone)  # e.g. an hf: folder; fit builds it once, later
    desc = describe_backbone(backbone, **(options or {})) if isinstance(backbone, str) else None
    if desc is not None:
        return desc.modality
    return create_backbone(backbone, **(options or {})).modality


def reinitialise(module: torch.nn.Module) -> None:
    """Random weights in the same architecture (the from-scratch baseline): every layer that
    can re-draw its parameters (and reset its BatchNorm statistics) does."""
    for sub in module.modules():
        if sub is not module and callable(getattr(sub, "reset_parameters", None)):
            sub.reset_parameters()
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
            # Ported TF weights use momentum 0.01; statistics that start from nothing need
            # PyTorch's 0.1 to catch up within a short training run.
            sub.momentum = 0.1
