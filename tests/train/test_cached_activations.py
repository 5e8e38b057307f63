"""Cached partial fine-tuning: training the upper blocks from the frozen prefix's cached
output gives the same model as running the whole network every step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab import Grafter


def _images(n=16):
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * (n // 2))
    x = rng.integers(0, 120, (n, 32, 32, 3), dtype=np.uint8)
    x[y == 1, 8:24, 8:24] = 250
    return x, y


@pytest.mark.parametrize("strategy,head", [("last_k", "linear"), ("head_only", "conv")])
def test_a_step_from_cached_activations_equals_a_full_step(strategy, head):
    """Same loss and same gradients: training from the cache is the same computation."""
    from graftlab.train.routes import FromActivations
    from graftlab.methods import ERM
    from graftlab.train.trainer import _eval_frozen

    x, y = _images(8)
    g = Grafter(strategy=strategy, head=head, k=3, augment=False,
                backbone_options={"image_size": 32})
    model, _, chosen = g.build(2)
    start = chosen.frozen_prefix(model)
    assert start == ("blocks.13" if strategy == "last_k" else "head")
    batch = {"inputs": model.backbone.preprocess(x), "labels": torch.as_tensor(y)}
    with torch.no_grad():
        model.eval()
        acts = model.backbone.forward_layers(batch["inputs"], [start])[start]
    results = []
    for method, b in [(ERM(model, num_classes=2), batch),
                      (ERM(FromActivations(model, start), num_classes=2),
                       {"inputs": {"acts": acts}, "labels": batch["labels"]})]:
        method.train()
        _eval_frozen(method)
        torch.manual_seed(0)  # the same stochastic depth draws in the trainable blocks
        model.zero_grad()
        loss = method(b)["loss"]
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-6), name


def test_cached_training_end_to_end_matches_and_is_recorded():
    x, y = _images()
    kw = dict(strategy="last_k", k=3, epochs=2, batch_size=8, lr=1e-3, lr_backbone=1e-3,
              augment=False, backbone_options={"image_size": 32}, seed=0)
    cached = Grafter(cache_activations=True, **kw).fit(x, y)
    plain = Grafter(cache_activations=False, **kw).fit(x, y)
    assert cached.record_["cached_activations"] == {"layer": "blocks.13",
                                                   "floats_per_sample": 192}
    assert "cached_activations" not in plain.record_
    # Adam turns float rounding in near-zero gradients into full steps, so the two runs drift
    # apart by rounding only; their outputs agree closely.
    np.testing.assert_allclose(cached.decision_function(x), plain.decision_function(x),
                               atol=0.05)
    assert (cached.predict(x) == plain.predict(x)).all()


def test_augmentation_or_mixup_turns_the_cache_off():
    x, y = _images(8)
    opts = {"backbone_options": {"image_size": 32}, "epochs": 1, "batch_size": 8}
    assert "cached_activations" not in Grafter(strategy="head_only", **opts).fit(x, y).record_
    assert "cached_activations" not in Grafter(strategy="last_k", mixup=0.2, augment=False,
                                               **opts).fit(x, y).record_
