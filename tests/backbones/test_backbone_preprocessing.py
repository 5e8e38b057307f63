"""Preprocessing: image_batch holds a bounded amount of float pixels (large photos go a few at
a time, with the same result as all at once); a wrapped module's preprocess and its cache key."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_a_wrapped_modules_cache_key_sees_what_its_preprocess_was_given():
    import functools

    from torch import nn

    from graftlab.backbones import wrap_module

    def prep(inputs, scale):
        return {"x": torch.as_tensor(inputs).float().permute(0, 3, 1, 2) * scale}

    def made(scale):
        return lambda inputs: prep(inputs, scale)

    net = nn.Sequential(nn.Conv2d(3, 2, 3))
    keys = [wrap_module(net, preprocess=p).cache_key()["preprocess"] for p in (
        functools.partial(prep, scale=1 / 255), functools.partial(prep, scale=1.0),
        made(1 / 255), made(1.0))]
    assert len(set(keys)) == 4  # each its own features in the cache
    assert wrap_module(net, preprocess=functools.partial(prep, scale=1.0)).cache_key()[
        "preprocess"] == keys[1]  # and the same arguments, the same key


def test_the_default_preprocess_scales_pixels_by_their_type_not_the_batch():
    from torch import nn

    from graftlab.backbones import wrap_module

    backbone = wrap_module(nn.Sequential(nn.Conv2d(3, 2, 3)))
    dark = np.ones((1, 8, 8, 3), np.uint8)  # the brightest pixel is 1 of 255
    assert float(backbone.preprocess(dark)["x"].max()) == pytest.approx(1 / 255)


def test_a_callable_objects_settings_are_in_the_key():
    from torch import nn

    from graftlab.backbones import wrap_module

    class Prep:
        def __init__(self, scale):
            self.scale = scale

        def __call__(self, inputs):
            return {"x": torch.as_tensor(inputs).float().permute(0, 3, 1, 2) * self.scale}

    net = nn.Sequential(nn.Conv2d(3, 2, 3))
    keys = {wrap_module(net, preprocess=Prep(s)).cache_key()["preprocess"]
            for s in (1 / 255, 1.0)}
    assert len(keys) == 2
