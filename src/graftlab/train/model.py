"""A grafted model: a backbone's layer, pooled (or not) as the head needs, into a head."""

from __future__ import annotations

import torch
from torch import nn

from graftlab.backbones.base import Backbone
from graftlab.errors import ConfigError
from graftlab.heads import Head

_KIND = {"image": "spatial", "text": "tokens"}


class GraftedModel(nn.Module):
    """``forward(batch) -> (B, num_outputs)``: backbone layer -> (pool) -> head."""

    def __init__(self, backbone: Backbone, head: Head, *, layer: str | None = None,
                 pooling: str | None = None) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        (self.layer,) = backbone.check_layers(layer)
        self.pooling = backbone.check_pooling(pooling)
        if head.input_kind != "pooled" and head.input_kind != _KIND[backbone.modality]:
            raise ConfigError(
                f"head {head.name!r} takes {head.input_kind} input, but a {backbone.modality} "
                f"backbone's layers give {_KIND[backbone.modality]} outputs.",
                hint="use 'conv' with image backbones, 'sequence' with text backbones, or "
                "'linear'/'mlp' with either.",
            )

    def trunk_blocks(self) -> list[tuple[str, nn.Module]]:
        """The backbone blocks that feed the chosen layer (later ones are never run)."""
        blocks = self.backbone.blocks()
        names = [n for n, _ in blocks]
        return blocks[: names.index(self.layer) + 1] if self.layer in names else blocks

    def _layer_output(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone.forward_layers(batch, [self.layer])[self.layer]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self._layer_output(batch)
        if self.head.input_kind == "pooled":
            x = self.backbone.pool(x, self.pooling, batch)
        return self.head(x, batch.get("attention_mask"))

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The layer's output pooled, (B, D): what a pooled head sees, what domain adaptation
        aligns, what maps show."""
        return self.backbone.pool(self._layer_output(batch), self.pooling, batch)
