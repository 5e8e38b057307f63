"""Colour and intensity ops on float RGB ``(n, 3, H, W)`` in [0, 1], one magnitude per sample
``m`` in [0, 1] ``(n,)``: plain tensor arithmetic, no per-sample Python loop. The op table of
:mod:`graftlab.augment.trivial` (TrivialAugment, Müller & Hutter 2021,
https://arxiv.org/abs/2103.10158), with its ranges at full magnitude.
"""

from __future__ import annotations

import torch

from graftlab.augment.base import per_sample

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def luminance(x: torch.Tensor) -> torch.Tensor:
    """``(n, 3, H, W)`` -> ``(n, 1, H, W)``."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _signed(m: torch.Tensor, scale: float) -> torch.Tensor:
    """A factor 1 +- scale * m, the sign drawn per sample."""
    sign = torch.where(torch.rand_like(m) < 0.5, -1.0, 1.0)
    return per_sample(1 + sign * scale * m, 4)


def brightness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x * _signed(m, 0.9)).clamp(0, 1)


def contrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean grey (PIL's contrast): ``x * f + mean * (1 - f)``; the mean
    luminance comes from the channel means, without a grey image."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
    mean = (x.mean((2, 3)) @ w).view(-1, 1, 1, 1)
    f = _signed(m, 0.9)
    return (x * f).add_(mean * (1 - f)).clamp_(0, 1)


def saturation(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    grey = luminance(x)
    return (grey + (x - grey) * _signed(m, 0.9)).clamp(0, 1)


def channel_shuffle(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """A random permutation of the RGB channels per sample (a coarse hue change)."""
    perm = torch.rand(len(x), 3, device=x.device).argsort(1)
    return x[torch.arange(len(x), device=x.device)[:, None], perm]


def invert(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return 1 - x


def solarize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Invert the pixels above a threshold that falls from 1 to 0 with the magnitude."""
    threshold = per_sample(1 - m, 4)
    return torch.where(x >= threshold, 1 - x, x)


def posterize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Keep 8 down to 2 bits per channel."""
    levels = per_sample(2 ** (8 - torch.round(m * 6)), 4)
    return torch.floor(x * (levels - 1) + 0.5) / (levels - 1)


def autocontrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Each channel stretched from its minimum to its maximum (an equalisation-lite: true
    histogram equalisation would rank the many equal background pixels of a digit arbitrarily)."""
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    scale = torch.where(hi > lo, 1 / (hi - lo).clamp_min(1e-6), torch.ones_like(hi))
    return torch.where(hi > lo, (x - lo) * scale, x)


COLOUR_OPS = {"brightness": brightness, "contrast": contrast, "saturation": saturation,
              "channel_shuffle": channel_shuffle, "invert": invert, "solarize": solarize,
              "posterize": posterize, "autocontrast": autocontrast}
