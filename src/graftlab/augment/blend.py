"""Blending with photo patches, as MNIST-M was made (Ganin & Lempitsky 2015,
https://arxiv.org/abs/1409.7495): ``|patch - image|`` with random crops of scikit-learn's two
sample photos (:mod:`graftlab.data.photos`, the code the bundled ``mnist_m`` is made with).

The patches come from the very photos the bundled MNIST-M was made from, so on that target
this expansion knows the target's textures: an optimistic case, said beside every number
measured there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graftlab.augment.base import Augmentation, register_augmentation
from graftlab.data.photos import sample_photos


@register_augmentation("photo_blend")
class PhotoBlend(Augmentation):
    """With probability ``p`` per sample, ``|patch - image|``: a square crop of a photo, its
    side drawn per batch from ``patch`` (photo pixels), resized to the image size."""

    def __init__(self, *, p: float = 0.5, patch: tuple[int, int] = (16, 64)) -> None:
        super().__init__()
        self.p, self.patch = p, patch
        self._photos: torch.Tensor | None = None

    def photos(self) -> torch.Tensor:
        """``(P, H, W, 3)`` float in [0, 1], made once."""
        if self._photos is None:
            self._photos = torch.from_numpy(sample_photos().astype("float32") / 255.0)
        return self._photos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        on = torch.rand(len(x), device=x.device) < self.p
        k = int(on.sum())
        if k == 0:
            return x
        photos = self.photos().to(x.device, x.dtype)
        side = int(torch.randint(self.patch[0], self.patch[1] + 1, ()))
        which = torch.randint(len(photos), (k,))
        top = torch.randint(photos.shape[1] - side + 1, (k,))[:, None] + torch.arange(side)
        left = torch.randint(photos.shape[2] - side + 1, (k,))[:, None] + torch.arange(side)
        crops = photos[which[:, None, None], top[:, :, None], left[:, None, :]]
        crops = crops.permute(0, 3, 1, 2)
        if crops.shape[-2:] != x.shape[-2:]:
            crops = F.interpolate(crops, size=x.shape[-2:], mode="bilinear",
                                  align_corners=False)
        out = x.clone()
        out[on] = (crops - x[on]).abs()
        return out
