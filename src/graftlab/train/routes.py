"""Where training and prediction read their inputs from, chosen once per fit.

=================  ===========================================================================
``pooled``         the frozen backbone's pooled features, once, through the feature cache; the
                   head alone runs per step (linear_probe, head_only without augmentation)
``activations``    the unpooled output of the frozen prefix's last layer, cached; the blocks
                   above it and the head run per step (last_k, or a head on a layer's output)
``inputs``         raw inputs preprocessed per batch; the whole model runs (anything that
                   moves the lower network, augments inputs or starts from random weights)
=================  ===========================================================================

Each route is exact: training from the cache equals training on the inputs, because what it
skips never changes. A route's :class:`Pick` also knows each text's length (tokens), for
batches that group similar lengths (``fit_method(..., lengths=pick.lengths)``).
:func:`choose_route` reads the strategy's declarations, never its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from graftlab.backbones import Backbone
from graftlab.data.domain import Domain
from graftlab.train.model import GraftedModel
from graftlab.train.strategies import Strategy

Picker = Callable[[np.ndarray], dict]  # sample indices -> the net's inputs for them


class Pick:
    """``pick(indices) -> inputs`` for a route, with ``lengths``: each sample's length where
    batches pad to their longest sample (text: tokens after truncation), else None. Computed on
    first use from ``lengths_of`` (prediction never asks)."""

    def __init__(self, fn: Picker, lengths_of: Callable[[], np.ndarray | None] | None = None
                 ) -> None:
        self.fn, self._lengths_of = fn, lengths_of
        self._lengths: np.ndarray | None = None

    def __call__(self, idx: np.ndarray) -> dict:
        return self.fn(idx)

    @property
    def lengths(self) -> np.ndarray | None:
        if self._lengths is None and self._lengths_of is not None:
            self._lengths = np.asarray(self._lengths_of(), dtype=np.int64)
        return self._lengths


@dataclass(frozen=True)
class Route:
    """``kind`` is ``pooled``, ``activations`` (from layer ``start``) or ``inputs``;
    ``cache``: whether the frozen backbone's outputs go through the feature cache."""

    kind: str
    start: str | None = None
    cache: bool = True

    def net(self, model: GraftedModel) -> nn.Module:
        """The module that runs on this route's inputs: ``forward`` -> logits and
        ``features`` -> pooled features, with the model's ``head`` and ``backbone``."""
        if self.kind == "pooled":
            return OnFeatures(model)
        if self.kind == "activations":
            return FromActivations(model, self.start)
        return model

    def picker(self, model: GraftedModel, domain: Domain) -> Pick:
        """Prepare ``domain`` for this route (extracting through the cache where it reads
        cached outputs) and return ``pick(indices) -> inputs`` (a :class:`Pick`)."""
        if self.kind == "pooled":
            feats = pooled_features(model, domain, cache=self.cache)
            return Pick(lambda idx: {"features": feats[idx]})
        if self.kind == "activations":
            from graftlab.features.activations import activation_batch, extract_activations

            acts = extract_activations(model.backbone, domain, self.start)
            mask = acts.get("attention_mask")
            return Pick(lambda idx: activation_batch(acts, idx),
                        None if mask is None else lambda: mask.sum(1).numpy())
        backbone = model.backbone
        if backbone.modality != "text":
            return Pick(lambda idx: backbone.preprocess(domain.inputs_at(idx)))
        # texts are tokenised once, not at every step; a batch pads its rows as preprocess does
        prepared = backbone.prepare(list(domain.inputs))
        return Pick(lambda idx: prepared.batch(np.asarray(idx)), lambda: prepared.lengths)

    def record(self, model: GraftedModel, picked: dict) -> dict:
        """What the run folder and the report say about the route."""
        if self.kind == "pooled":
            return {"feature_cache": self.cache}
        if self.kind == "activations":
            return {"cached_activations": {"layer": self.start,
                                           "floats_per_sample": int(picked["acts"][0].numel())}}
        return {}


INPUTS = Route("inputs")


def choose_route(model: GraftedModel, strategy: Strategy, *, pretrained: bool = True,
                 cache: bool | None = None, augmenting: bool = False) -> Route:
    """The cheapest exact route for ``strategy`` on ``model``.

    A solved head (linear_probe) always reads pooled features (through the cache only for
    pretrained weights). Otherwise the cache serves only pretrained weights, when ``cache`` is
    not False and nothing changes the inputs per step (``augmenting``): pooled features when
    the backbone does not move and the head is pooled, else the frozen prefix's output when
    the backbone can resume from a layer.
    """
    if strategy.solved:
        return Route("pooled", cache=pretrained)
    if not pretrained or cache is False or augmenting:
        return INPUTS
    if not strategy.moves_backbone and model.head.input_kind == "pooled":
        return Route("pooled")
    start = strategy.frozen_prefix(model)
    if start is not None and can_resume(model.backbone):
        return Route("activations", start)
    return INPUTS


def can_resume(backbone: Backbone) -> bool:
    """Whether the backbone's family can continue its trunk from a layer's output."""
    return type(backbone).forward_from is not Backbone.forward_from


def pooled_features(model: GraftedModel, domain: Domain, cache: bool = True) -> torch.Tensor:
    """The frozen backbone's pooled features at the model's layer, through the feature cache."""
    from graftlab.features import extract_features

    return torch.from_numpy(np.array(extract_features(
        model.backbone, domain, layer=model.layer, pooling=model.pooling, cache=cache)))


class FromActivations(nn.Module):
    """The grafted model resumed from a frozen layer's cached output (``acts``, with the
    ``attention_mask`` for text)."""

    def __init__(self, model: GraftedModel, start: str) -> None:
        super().__init__()
        self.model, self.start = model, start

    @property
    def backbone(self) -> Backbone:
        return self.model.backbone

    @property
    def head(self) -> nn.Module:
        return self.model.head

    def _layer(self, inputs: dict) -> torch.Tensor:
        m, x = self.model, inputs["acts"]
        if self.start != m.layer:
            x = m.backbone.forward_from(self.start, x, [m.layer],
                                        attention_mask=inputs.get("attention_mask"))[m.layer]
        return x

    def forward(self, inputs: dict) -> torch.Tensor:
        m, x = self.model, self._layer(inputs)
        if m.head.input_kind == "pooled":
            x = m.backbone.pool(x, m.pooling, inputs)
        return m.head(x, inputs.get("attention_mask"))

    def features(self, inputs: dict) -> torch.Tensor:
        return self.model.backbone.pool(self._layer(inputs), self.model.pooling, inputs)


class OnFeatures(nn.Module):
    """A head as a model over precomputed pooled features (``features`` passes them on, so a
    domain-adaptation method aligns the head's bottleneck). Holds only the head: checkpoints
    of a head trained on cached features stay small."""

    def __init__(self, model: GraftedModel) -> None:
        super().__init__()
        self.head = model.head

    def features(self, inputs: dict) -> torch.Tensor:
        return inputs["features"]

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.head(inputs["features"])
