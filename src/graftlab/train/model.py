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

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.backbone.forward_layers(batch, [self.layer])[self.layer]
        if self.head.input_kind == "pooled":
            x = self.backbone.pool(x, self.pooling, batch)
        return self.head(x, batch.get("attention_mask"))

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pooled features a pooled head sees, (B, D): what domain adaptation aligns."""
        if self.head.input_kind != "pooled":
            raise ConfigError(f"head {self.head.name!r} takes {self.head.input_kind} input; "
                              "domain adaptation aligns pooled features.",
                              hint="use head='linear' or head='mlp'.")
        x = self.backbone.forward_layers(batch, [self.layer])[self.layer]
        return self.backbone.pool(x, self.pooling, batch)
