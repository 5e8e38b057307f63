"""Adapter.fit(sample_weight=...): weight 0 leaves a source sample out, and bad weights are
named; the pada method trains through the same path."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.adapt import Adapter
from graftlab.errors import DataError


def _domains(images):
    xs, xt = images(24, size=12, seed=0), images(16, size=12, seed=1)
    ys = np.array([0, 1, 2] * 8)
    return xs, ys, xt


def _adapter(backbone):
    return Adapter(backbone=backbone, method="pada", strategy="head_only", head="mlp",
                   head_options={"hidden": [8]}, epochs=2, batch_size=8)


def test_zero_weights_train_as_the_kept_subset(tiny_backbone, images):
    xs, ys, xt = _domains(images)
    w = np.r_[np.ones(16), np.zeros(8)]
    kept = _adapter(tiny_backbone).fit(xs[:16], ys[:16], target=xt)
    weighted = _adapter(tiny_backbone).fit(xs, ys, target=xt, sample_weight=w)
    np.testing.assert_allclose(kept.decision_function(xt), weighted.decision_function(xt),
                               atol=1e-5)
    assert len(weighted.history_) == 2


def test_bad_source_weights_are_named(tiny_backbone, images):
    xs, ys, xt = _domains(images)
    with pytest.raises(DataError, match="source sample weights are all zero"):
        _adapter(tiny_backbone).fit(xs, ys, target=xt, sample_weight=np.zeros(24))
