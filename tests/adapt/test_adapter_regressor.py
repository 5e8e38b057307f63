"""AdapterRegressor: feature-aligning methods adapt a numeric target; those that need class
probabilities are refused, naming the ones that work."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab import GrafterRegressor
from graftlab.adapt import AdapterRegressor
from graftlab.adapt.regressor import regression_methods
from graftlab.errors import ConfigError, DataError
from graftlab.methods import list_methods

OPTS = {"image_size": 32}


def _brightness(n=16, dark=False, seed=0):
    """The target is a square's brightness; the target domain has a darker background."""
    rng = np.random.default_rng(seed)
    x = rng.integers(100 if dark else 0, 140 if dark else 60, (n, 32, 32, 3), dtype=np.uint8)
    y = np.linspace(80, 250, n)
    for i, v in enumerate(y):
        x[i, 8:24, 8:24] = int(v)
    return x, y


def test_the_methods_for_regression_are_those_without_probabilities():
    assert set(regression_methods()) == set(list_methods()) - {"cdan", "mcc", "pada", "vat", "vada"}


@pytest.mark.parametrize("method", ["source_only", "dann", "dan", "coral"])
def test_feature_aligning_methods_fit_a_numeric_target(method, tmp_path):
    xs, ys = _brightness()
    xt, _ = _brightness(dark=True, seed=1)
    a = AdapterRegressor(method=method, strategy="head_only", head="mlp",
                         head_options={"hidden": [16]}, epochs=2, batch_size=8,
                         backbone_options=OPTS).fit(xs, ys, target=xt)
    pred = a.predict(xt)
    assert pred.shape == (16,) and np.isfinite(pred).all()
    assert 0 < float(np.mean(pred)) < 400  # on the target's scale, not standardised
    assert not hasattr(a, "predict_proba") and np.isfinite(a.history_[-1]["train_loss"])
    loaded = GrafterRegressor.load(a.grafter_.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict(xt), pred, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("method", ["cdan", "mcc"])
def test_methods_that_need_class_probabilities_are_refused(method):
    xs, ys = _brightness(4)
    with pytest.raises(ConfigError, match=f"(?s){method} needs class probabilities.*for "
                       "regression use source_only, dann, coral, dan"):
        AdapterRegressor(method=method, backbone_options=OPTS).fit(xs, ys, target=xs)


def test_no_numeric_target_and_a_teacher_are_explained():
    from graftlab.data import Domain

    xs, _ = _brightness(4)
    with pytest.raises(DataError, match="has no numeric targets to regress on"):
        AdapterRegressor(backbone_options=OPTS).fit(Domain("s", "image", xs), None, target=xs)
    with pytest.raises(ConfigError, match="self-training .* does not apply"):
        AdapterRegressor(backbone_options=OPTS).fit(xs, np.arange(4.0), target=xs,
                                                    teacher_proba=np.ones((4, 2)) / 2)
