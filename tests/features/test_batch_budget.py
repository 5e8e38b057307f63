"""Extraction batches are sized from a memory budget: big for small inputs, shrinking as the
input grows, never below one sample; ONNX batches in flight count against the same budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab.errors import ConfigError
from graftlab.features import extract_features
from graftlab.features.budget import (DEFAULT_BUDGET_MIB, ENV, MAX_BATCH, activation_bytes,
                                      memory_budget, plan)
from graftlab.features.extract import _Sizer

MIB = 2**20


def _batch_sizes(model, data, **kw) -> list[int]:
    """The batch sizes extraction actually sends through ``model``."""
    seen, real = [], model.forward_layers

    def spy(batch, layers):
        seen.append(len(next(iter(batch.values()))))
        return real(batch, layers)

    model.forward_layers = spy
    try:
        extract_features(model, data, cache=False, backend="torch", **kw)
    finally:
        del model.forward_layers
    return seen


def test_plan_fills_the_budget_up_to_the_cap_and_never_below_one():
    assert plan(1 * MIB, workers=1, cap=64, budget=512 * MIB).batch_size == 64  # small: cap
    assert plan(20 * MIB, workers=1, cap=64, budget=512 * MIB).batch_size == 25
    assert plan(2048 * MIB, workers=1, cap=64, budget=512 * MIB).batch_size == 1  # huge: one
    sizes = [plan(k * MIB, workers=1, cap=64, budget=512 * MIB).batch_size
             for k in (1, 4, 16, 64, 256, 1024)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1 and sizes[0] == 64


def test_batches_in_flight_count_against_the_same_budget():
    two = plan(20 * MIB, workers=2, cap=64, budget=512 * MIB)
    assert (two.workers, two.batch_size) == (2, 12)  # 2 x 12 x 20 MiB <= 512 MiB
    crowded = plan(100 * MIB, workers=16, cap=64, budget=512 * MIB)
    assert (crowded.workers, crowded.batch_size) == (5, 1)  # fewer workers, not below one
    fixed = plan(20 * MIB, workers=4, cap=64, budget=512 * MIB, batch_size=16)
    assert (fixed.batch_size, fixed.workers) == (16, 1)  # the caller's size; 1 batch in flight


def test_the_chosen_batch_shrinks_as_images_grow_and_stays_at_least_one(tiny_backbone, images,
                                                                         monkeypatch):
    monkeypatch.setenv(ENV, "0.25")  # a tiny budget, so the tiny net feels it
    chosen = [max(_batch_sizes(tiny_backbone, images(40, size=size))) for size in
              (4, 16, 64, 256)]
    assert chosen == sorted(chosen, reverse=True) and chosen[0] > chosen[-1] >= 1
    assert chosen[0] == 40 and chosen[-1] == 1  # small: the whole set in one batch; huge: one


def test_lite0_per_image_memory_follows_its_input_size(lite0):
    from graftlab.backbones import create_backbone

    def per_image(size):
        model = lite0 if size == 32 else create_backbone("efficientnet_lite0", image_size=size)
        sample = {"pixel_values": torch.zeros(1, 3, size, size)}
        return activation_bytes(model.eval(), sample, [model.default_layer])

    small, large = per_image(32), per_image(224)
    assert 30 < large / small < 70  # ~ (224 / 32)^2 = 49: activations scale with the pixels
    assert 10 * MIB < large < 40 * MIB  # measured ~20 MiB per image in a batch at 224 px
    budget = DEFAULT_BUDGET_MIB * MIB
    assert plan(small, workers=2, cap=64, budget=budget).batch_size == 64  # small: full batch
    assert 1 <= plan(large, workers=2, cap=64, budget=budget).batch_size < 16


def test_auto_sized_batches_give_the_same_features(tiny_backbone, images, monkeypatch):
    data = images(30, size=16)
    fixed = extract_features(tiny_backbone, data, cache=False, backend="torch", batch_size=64)
    monkeypatch.setenv(ENV, "0.05")
    sizes = _batch_sizes(tiny_backbone, data)
    assert len(sizes) > 1  # really cut into several batches
    auto = extract_features(tiny_backbone, data, cache=False, backend="torch")
    np.testing.assert_allclose(auto, fixed, rtol=1e-5, atol=1e-6)


def test_the_onnx_workers_are_limited_by_the_budget(tiny_backbone, images, monkeypatch):
    class Forward:  # what _Sizer reads of the ONNX forward
        use_onnx = True

    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    prepared = tiny_backbone.prepare(images(4, size=64))
    order = np.arange(4)
    per = activation_bytes(tiny_backbone, prepared.batch(order[:1]), ["2"])
    chosen = _Sizer(tiny_backbone, ["2"], Forward(), None, budget=3 * per)(prepared, order)
    assert (chosen.workers, chosen.batch_size) == (3, 1)
    roomy = _Sizer(tiny_backbone, ["2"], Forward(), None, budget=10_000 * per)(prepared, order)
    assert roomy.workers == 8 and roomy.batch_size == MAX_BATCH["image"]


def test_an_explicit_batch_size_is_kept(tiny_backbone, images):
    assert _batch_sizes(tiny_backbone, images(10, size=8), batch_size=4) == [4, 4, 2]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_batch_size_below_one_or_not_whole_is_refused(tiny_backbone, images, bad):
    with pytest.raises(ConfigError, match=rf"batch_size must be a whole number of at least 1, "
                                          rf"got {bad!r}") as err:
        extract_features(tiny_backbone, images(2), cache=False, batch_size=bad)
    assert "leave it unset (None) to size batches from the memory budget" in str(err.value)


@pytest.mark.parametrize("raw", ["0", "-5", "lots", "nan"])
def test_a_bad_memory_budget_is_named(monkeypatch, tiny_backbone, images, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(ConfigError, match=f"{ENV}='{raw}' is not a positive number of MiB"):
        extract_features(tiny_backbone, images(2), cache=False)


def test_the_budget_defaults_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert memory_budget() == DEFAULT_BUDGET_MIB * MIB
    monkeypatch.setenv(ENV, "64")
    assert memory_budget() == 64 * MIB


def test_onnx_runs_images_without_the_memory_arena(tiny_backbone, images, tmp_path):
    from graftlab.features.onnx_backend import OnnxRunner

    batch = tiny_backbone.preprocess(images(2))
    runner = OnnxRunner(tiny_backbone, ["output"], batch, folder=tmp_path)
    assert runner.session.get_session_options().enable_cpu_mem_arena is False
