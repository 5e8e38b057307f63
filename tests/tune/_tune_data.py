"""Tiny data for the tuning tests: images told apart by the colour of a square (and noise), a
seeded two-layer conv backbone (its pooled features are extracted once, in milliseconds)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from graftlab import Grafter
from graftlab.backbones import wrap_module

SPACE = {"params": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                    "strategy": {"type": "categorical", "choices": ["linear_probe", "head_only"]},
                    "batch_size": {"type": "categorical", "choices": [8, 16]}},
         "fixed": {"epochs": 3, "augment": False}}


def tiny_data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), n // 3)
    x = rng.integers(0, 90, (n, 12, 12, 3), dtype=np.uint8)
    for i, label in enumerate(y):
        r, c = rng.integers(0, 6, 2)
        x[i, r:r + 6, c:c + 6, label] = rng.integers(120, 250)
    return x, y


def tiny_backbone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, padding=1, stride=2)).eval()
    return wrap_module(net, name="tiny")


def tiny_grafter(**params) -> Grafter:
    return Grafter(backbone=tiny_backbone(), **params)
