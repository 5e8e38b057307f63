"""image_batch holds a bounded amount of float pixels: large photos go a few at a time, with
the same result as all at once."""

from __future__ import annotations

import numpy as np
import torch

import graftlab.backbones.base as base


def test_large_images_are_preprocessed_a_few_at_a_time_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 255, (5, 96, 80, 3), dtype=np.uint8)
    whole = base.image_batch(photos, 32, [0.5] * 3, [0.25] * 3)
    seen = []
    real = base.unit_image_batch
    monkeypatch.setattr(base, "unit_image_batch",
                        lambda x, *a: seen.append(len(x)) or real(x, *a))
    monkeypatch.setattr(base, "FLOAT_BUDGET", 2 * 96 * 80 * 3 * 4)  # two photos' floats
    chunked = base.image_batch(photos, 32, [0.5] * 3, [0.25] * 3)
    assert seen == [2, 2, 1] and torch.equal(whole, chunked)
