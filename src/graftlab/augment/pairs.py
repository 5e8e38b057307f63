"""Augmentation of domain-adaptation batches ``{"source": ..., "target": ...}``, at collate
time (the methods see ordinary batches): image ops on both domains' pixels; a mixing op on the
source, with soft labels, mixing in the target's samples where it crosses domains
(``domain_mix``). Feature-space ops act on the cached pooled features, which are then the
head's input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import nn

from graftlab.augment.mixing import DomainMix
from graftlab.augment.presets import Augmenting, ImageAugmenter
from graftlab.errors import ConfigError


def check_pairs_route(augmenting: Augmenting, route_kind: str) -> None:
    """Feature-space mixing in adaptation needs the head to read cached pooled features."""
    mix = augmenting.mix
    if mix is not None and mix.applies_to == "features" and route_kind != "pooled":
        raise ConfigError(
            f"augmentation preset {augmenting.preset!r} mixes the pooled features, which "
            f"adaptation reads only with cached features; this set-up reads {route_kind}.",
            hint="use strategy='head_only' (the head trains on cached features), or an "
            "input-space preset for images (domain_mix, mix).")


def augment_pairs(collate: Callable[[object], dict], augmenting: Augmenting,
                  backbone: nn.Module, num_classes: int) -> Callable[[object], dict]:
    """``collate`` with its batches augmented as the preset says."""
    images = ImageAugmenter(augmenting.inputs, backbone) if augmenting.inputs else None
    mix = augmenting.mix

    def fn(pos) -> dict:
        batch = collate(pos)
        src, tgt = dict(batch["source"]), dict(batch["target"])
        if images is not None:
            for part in (src, tgt):
                pixels = part["inputs"]["pixel_values"]
                part["inputs"] = {**part["inputs"], "pixel_values": images(pixels)}
        if mix is not None:
            key = "pixel_values" if "pixel_values" in src["inputs"] else "features"
            soft = F.one_hot(src["labels"], num_classes).float()
            if isinstance(mix, DomainMix):
                x, soft = mix(src["inputs"][key], soft, tgt["inputs"][key])
            else:
                x, soft = mix(src["inputs"][key], soft)
            src["inputs"], src["labels"] = {**src["inputs"], key: x}, soft
        return {**batch, "source": src, "target": tgt}

    return fn

