"""What an augmentation is: a small module that declares its modality and where it applies.

``modality``     ``image`` (float RGB in [0, 1], ``(B, 3, H, W)``), ``text`` (a list of str,
                 edited once, offline) or ``features`` (pooled features ``(B, D)``, any
                 backbone: cached features too)
``applies_to``   ``inputs`` (the input batch) or ``features`` (the pooled features a head sees)
``mixes_labels`` it mixes samples, so it takes and returns soft labels ``(B, C)``:
                 ``forward(x, y) -> (x, y)``; otherwise ``forward(x) -> x``

Random parameters are drawn per sample from torch's global generator (the trainer seeds it and
checkpoints its state), so a seeded run augments the same way every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from graftlab.registry import Registry

AUGMENTATIONS: Registry[type[Augmentation]] = Registry(
    "augmentation", hint="graftlab.augment.AUGMENTATIONS.names() lists them.")


def register_augmentation(name: str) -> Callable[[type[Augmentation]], type[Augmentation]]:
    return AUGMENTATIONS.register(name)


class Augmentation(nn.Module):
    """Base: subclasses declare the class attributes and implement ``forward``."""

    name: ClassVar[str] = "augmentation"
    modality: ClassVar[str] = "image"
    applies_to: ClassVar[str] = "inputs"
    mixes_labels: ClassVar[bool] = False


def uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    """``n`` draws from U(low, high) on ``like``'s device and dtype."""
    return torch.rand(n, device=like.device, dtype=like.dtype) * (high - low) + low


def per_sample(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(B,)`` values shaped to broadcast over a ``ndim``-D batch."""
    return values.view(-1, *([1] * (ndim - 1)))
