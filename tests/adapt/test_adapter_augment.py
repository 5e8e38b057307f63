"""Adapter(augment=PRESET): source-target mixing on cached features and on pixels, VADA with
augmentation, and the refusal of feature mixing where no cached features are read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graftlab.adapt import Adapter
from graftlab.augment import augment_pairs, build_preset
from graftlab.errors import ConfigError

OPTS = {"image_size": 32}


def _domains(n=16):
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * (n // 2))
    x = rng.integers(0, 120, (n, 32, 32, 3), dtype=np.uint8)
    x[y == 1, 8:24, 8:24] = 250
    return x, y, (255 - x)[::-1].copy()


@pytest.mark.parametrize("preset, method, strategy", [
    ("feature_domain_mix", "vada", "head_only"), ("domain_mix", "source_only", "last_k"),
    ("expand", "vat", "head_only")])
def test_adapter_trains_with_a_preset(preset, method, strategy):
    x, y, t = _domains()
    a = Adapter(method=method, strategy=strategy, k=1, head="mlp", epochs=1, batch_size=8,
                augment=preset, backbone_options=OPTS).fit(x, y, target=t)
    assert a.predict(t).shape == (16,) and np.isfinite(a.history_[0]["train_loss"])


def test_feature_mixing_needs_cached_features():
    x, y, t = _domains()
    with pytest.raises(ConfigError, match="mixes the pooled features, which adaptation reads "
                       "only with cached features; this set-up reads activations"):
        Adapter(method="source_only", strategy="last_k", k=1, epochs=1, batch_size=8,
                augment="feature_domain_mix", backbone_options=OPTS).fit(x, y, target=t)


def test_domain_mix_keeps_source_labels_and_moves_towards_the_target():
    def collate(pos):
        return {"source": {"inputs": {"features": torch.zeros(4, 3)},
                           "labels": torch.tensor([0, 1, 0, 1])},
                "target": {"inputs": {"features": torch.ones(4, 3)}}}

    torch.manual_seed(0)
    batch = augment_pairs(collate, build_preset("feature_domain_mix", "image"), None, 2)(None)
    x = batch["source"]["inputs"]["features"]
    assert bool(((x >= 0) & (x <= 0.5)).all()) and bool((x > 0).any())  # source dominates
    torch.testing.assert_close(batch["source"]["labels"], torch.eye(2)[[0, 1, 0, 1]])
    assert torch.equal(batch["target"]["inputs"]["features"], torch.ones(4, 3))
