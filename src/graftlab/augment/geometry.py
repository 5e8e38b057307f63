"""Geometric ops through one ``affine_grid`` + ``grid_sample`` per batch: each sample gets its
own rotation, shear, translation and scale (bilinear, zeros padding outside the image).

Measured against kornia's ``RandomAffine`` on this machine by ``benchmarks/augment_ops.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from graftlab.augment.base import Augmentation, register_augmentation, uniform


def affine(x: torch.Tensor, *, angle: torch.Tensor | None = None,
           shear: torch.Tensor | None = None, tx: torch.Tensor | None = None,
           ty: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Warp ``(n, C, H, W)`` by per-sample parameters ``(n,)`` (degrees; translations as a
    fraction of the image; scale > 1 zooms in). Missing ones are the identity."""
    n = len(x)
    zero = torch.zeros(n, dtype=x.dtype, device=x.device)
    a = torch.deg2rad(angle if angle is not None else zero)
    s = torch.deg2rad(shear if shear is not None else zero)
    k = 1 / (scale if scale is not None else zero + 1)
    cos, sin = torch.cos(a) * k, torch.sin(a) * k
    theta = torch.stack([
        torch.stack([cos, -sin + torch.tan(s) * cos, 2 * (tx if tx is not None else zero)], 1),
        torch.stack([sin, cos, 2 * (ty if ty is not None else zero)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _signed(m: torch.Tensor, top: float) -> torch.Tensor:
    return m * top * torch.where(torch.rand_like(m) < 0.5, -1.0, 1.0)


def rotate(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return affine(x, angle=_signed(m, 30.0))


def shear_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return affine(x, shear=_signed(m, math.degrees(math.atan(0.3))))


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Move each image by whole pixels ``(dy, dx)`` ``(n,)``, zeros where it leaves the frame:
    a window of the zero-padded batch per sample (a random crop of a padded image); slicing
    copies no more than the output, and beats a gather or a resampling grid on CPU."""
    _, _, h, w = x.shape
    pad = int(max(dy.abs().max(), dx.abs().max(), 0)) if len(dy) else 0
    padded = F.pad(x, (pad, pad, pad, pad))
    tops, lefts = (pad - dy).tolist(), (pad - dx).tolist()
    return torch.stack([padded[i, :, t:t + h, s:s + w]
                        for i, (t, s) in enumerate(zip(tops, lefts, strict=True))])


def translate(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Up to 15% of the size along each axis, whole pixels."""
    h, w = x.shape[-2:]
    dy = torch.round(_signed(m, 0.15) * h * torch.rand_like(m)).long()
    dx = torch.round(_signed(m, 0.15) * w).long()
    return shift(x, dy, dx)


GEOMETRY_OPS = {"rotate": rotate, "shear": shear_x, "translate": translate}


@register_augmentation("affine")
class RandomAffine(Augmentation):
    """Every sample warped (with probability ``p``) by a rotation in +-``degrees``, a
    translation in +-``translate`` and a scale in [1 - ``scale``, 1 + ``scale``]: the ``light``
    preset, the same ranges as the image default before presets (kornia's RandomAffine)."""

    def __init__(self, *, degrees: float = 10.0, translate: float = 0.08, scale: float = 0.1,
                 p: float = 0.8) -> None:
        super().__init__()
        self.degrees, self.translate, self.scale, self.p = degrees, translate, scale, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        on = (torch.rand(n, device=x.device) < self.p).to(x.dtype)  # off: the identity warp
        return affine(x, angle=uniform(n, -self.degrees, self.degrees, x) * on,
                      tx=uniform(n, -self.translate, self.translate, x) * on,
                      ty=uniform(n, -self.translate, self.translate, x) * on,
                      scale=1 + uniform(n, -self.scale, self.scale, x) * on)
