"""Photo patches: random crops of scikit-learn's two sample photos (china.jpg, flower.jpg), and
their blend with an image as ``|crop - image|``, the recipe of MNIST-M (Ganin & Lempitsky 2015,
https://arxiv.org/abs/1409.7495). The bundled ``mnist_m`` is made with it, and the
``photo_blend`` augmentation (:mod:`graftlab.augment`) draws its patches from the same photos.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def sample_photos() -> np.ndarray:
    """scikit-learn's sample photos as uint8 ``(2, 427, 640, 3)`` (cached, read-only)."""
    from sklearn.datasets import load_sample_images

    photos = np.stack(load_sample_images().images)  # same size each
    photos.flags.writeable = False
    return photos


def photo_crops(n: int, h: int, w: int, rng: np.random.Generator,
                photos: np.ndarray | None = None) -> np.ndarray:
    """``n`` random ``h`` x ``w`` crops of the photos, uint8 ``(n, h, w, 3)``; the draws are
    the photo, then the top rows, then the left columns (MNIST-M's order, so it stays the same
    per seed)."""
    photos = sample_photos() if photos is None else photos
    which = rng.integers(0, len(photos), n)
    top = rng.integers(0, photos.shape[1] - h + 1, n)[:, None, None] + np.arange(h)[:, None]
    left = rng.integers(0, photos.shape[2] - w + 1, n)[:, None, None] + np.arange(w)
    return photos[which[:, None, None], top, left]


def difference_blend(images: np.ndarray, crops: np.ndarray) -> np.ndarray:
    """``|crop - image|`` per pixel, uint8 in and out (MNIST-M's blend)."""
    return np.abs(crops.astype(np.int16) - images.astype(np.int16)).astype(np.uint8)
