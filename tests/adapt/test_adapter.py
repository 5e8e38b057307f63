"""Adapter: every method trains through the one trainer on tiny shifted images; target labels
are never used; bad input is explained."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.adapt import Adapter
from graftlab.data import Domain
from graftlab.errors import DataError
from graftlab.features import FeatureCache
from graftlab.methods import list_methods

OPTS = {"image_size": 32}


def _squares(n_per_class=8, dark=False, seed=0):
    """Two classes (a bright square left or right); the target domain is a dark background
    with grey squares."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_class
    x = rng.integers(150 if dark else 0, 200 if dark else 90, (n, 32, 32, 3), dtype=np.uint8)
    y = np.repeat([0, 1], n_per_class)
    for i, label in enumerate(y):
        c = 2 if label == 0 else 18
        x[i, 10:22, c:c + 12] = 40 if dark else 250
    return x, y


@pytest.mark.parametrize("method", list_methods())
def test_every_method_fits_from_cached_activations_and_predicts(method):
    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    a = Adapter(method=method, epochs=2, batch_size=8, backbone_options=OPTS)
    a.fit(xs, ys, target=xt)
    assert a.record_["cached_activations"] is not None  # last_k on EfficientNet
    assert a.predict(xt).shape == (16,) and set(a.predict(xs)) <= {0, 1}
    assert len(a.history_) == 2 and np.isfinite(a.history_[-1]["train_loss"])
    assert a.trainable_params_ > 0
    assert a.transform(xt).shape == (16, 1280)


def test_target_labels_are_never_used():
    xs, ys = _squares()
    xt, yt = _squares(dark=True, seed=1)
    labelled = Domain("target", "image", xt, labels=yt, classes=["l", "r"])
    flipped = Domain("target", "image", xt, labels=1 - yt, classes=["l", "r"])
    kw = {"method": "dann", "epochs": 1, "batch_size": 8, "backbone_options": OPTS}
    a = Adapter(**kw).fit(xs, ys, target=labelled)
    b = Adapter(**kw).fit(xs, ys, target=flipped)
    np.testing.assert_allclose(a.decision_function(xt), b.decision_function(xt), atol=1e-6)


def test_whole_network_path_when_nothing_is_frozen():
    xs, ys = _squares(4)
    xt, _ = _squares(4, dark=True)
    a = Adapter(method="coral", strategy="full", epochs=1, batch_size=4,
                backbone_options=OPTS).fit(xs, ys, target=xt)
    assert a.record_["cached_activations"] is None and FeatureCache().entries() == []


def test_bad_target_input_is_explained():
    xs, ys = _squares(4)
    a = Adapter(method="dann", epochs=1, backbone_options=OPTS)
    with pytest.raises(DataError, match="target images are 24x24"):
        a.fit(xs, ys, target=np.zeros((4, 24, 24, 3), np.uint8))
    with pytest.raises(DataError, match="target: .*text"):
        a.fit(xs, ys, target=Domain("t", "text", ["a", "b"]))
    with pytest.raises(DataError, match="empty"):
        a.fit(xs, ys, target=np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="single class"):
        a.fit(xs, np.zeros(len(xs)), target=xs)
    # the labels checked as a Grafter checks them: NaN is not a class, one label per input
    with pytest.raises(DataError, match="source labels hold NaN"):
        a.fit(xs, np.r_[ys[:-1].astype(float), np.nan], target=xs)
    with pytest.raises(DataError, match=r"one per input \(1-D\)"):
        a.fit(xs, np.c_[ys, ys], target=xs)
    assert not hasattr(a, "classes_")  # no failed fit left classes behind
    with pytest.raises(DataError, match=r"^target: 'inputs': got a pair \(images, labels\?\)"
                                        r".*\nHINT: pass the images alone[^\n]*$"):
        a.fit(xs, ys, target=(xs, ys))  # one message, one hint: the inner error's


def test_a_lambda_that_blows_the_loss_up_is_stopped_with_a_clear_message(tmp_path):
    from graftlab.train.trainer import TrainingDivergedError

    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    a = Adapter(method="coral", epochs=3, batch_size=8, backbone_options=OPTS,
                transfer_weight=1e39, schedule="constant", checkpoint_dir=str(tmp_path))
    with pytest.raises(TrainingDivergedError,
                       match=r"the transfer weight \(transfer_weight\)") as info:
        a.fit(xs, ys, target=xt)
    assert "loss became" in str(info.value)


def test_a_head_without_pooled_features_is_refused_before_training():
    from graftlab.errors import ConfigError

    xs, ys = _squares(4)
    with pytest.raises(ConfigError, match="head 'conv' takes spatial input; domain adaptation"):
        Adapter(method="dann", head="conv", backbone_options=OPTS).fit(xs, ys, target=xs)


def test_head_only_trains_a_bottleneck_on_cached_pooled_features():
    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    a = Adapter(method="dann", strategy="head_only", head="mlp", head_options={"hidden": [16]},
                epochs=2, batch_size=8, backbone_options=OPTS).fit(xs, ys, target=xt)
    assert a.record_["cached_activations"] == "pooled"
    assert len(FeatureCache().entries()) >= 2  # both domains' pooled features, cached
    assert a.transform(xt).shape == (16, 16)  # the aligned bottleneck, not the 1280-d input
    assert a.trainable_params_ == 1280 * 16 + 16 + 2 * 16 + 16 * 2 + 2
    assert a.predict(xt).shape == (16,)


def test_aligning_frozen_features_through_a_linear_head_is_refused_with_the_fix():
    from graftlab.errors import ConfigError

    xs, ys = _squares(4)
    with pytest.raises(ConfigError, match="nothing below the classifier trains"):
        Adapter(method="coral", strategy="head_only", backbone_options=OPTS).fit(
            xs, ys, target=xs)


def test_select_epoch_scores_every_epoch_on_the_target_and_keeps_the_best():
    from graftlab.errors import ConfigError

    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    a = Adapter(method="mcc", strategy="head_only", head="mlp", head_options={"hidden": [8]},
                epochs=3, batch_size=8, backbone_options=OPTS, select_epoch="info_max")
    a.fit(xs, ys, target=xt)
    scores = [h["target_info_max"] for h in a.history_]
    assert len(scores) == 3 and a.record_["selected_epoch"] == int(np.argmax(scores))
    from graftlab.evaluate.validators import info_max

    assert info_max(a.predict_proba(xt)) == pytest.approx(max(scores), abs=1e-4)
    with pytest.raises(ConfigError, match="select_epoch='iwv' is not a validator"):
        Adapter(select_epoch="iwv", backbone_options=OPTS).fit(xs, ys, target=xt)


def test_select_epoch_with_checkpoints_saves_and_resumes(tmp_path):
    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    kw = {"method": "mcc", "strategy": "head_only", "head": "mlp", "head_options": {"hidden": [8]},
          "epochs": 2, "batch_size": 8, "backbone_options": OPTS, "select_epoch": "entropy",
          "checkpoint_dir": str(tmp_path)}
    a = Adapter(**kw).fit(xs, ys, target=xt)
    assert (tmp_path / "checkpoint.pt").is_file()
    b = Adapter(**kw).fit(xs, ys, target=xt)  # resumes from the finished run's checkpoint
    assert b.record_["selected_epoch"] == a.record_["selected_epoch"]
    np.testing.assert_allclose(a.decision_function(xt), b.decision_function(xt), atol=1e-5)


def test_an_adapter_saves_as_a_grafter_and_the_predictor_reads_it(tmp_path):
    from graftlab import Grafter
    from graftlab.deploy import Predictor

    xs, ys = _squares(4)
    xt, _ = _squares(4, dark=True)
    a = Adapter(method="dann", strategy="head_only", head="mlp", epochs=1, batch_size=4,
                backbone_options=OPTS).fit(xs, ys, target=xt)
    folder = a.save(tmp_path / "adapted")
    np.testing.assert_allclose(Grafter.load(folder).decision_function(xt),
                               a.decision_function(xt), atol=1e-5)
    assert list(Predictor.load(folder).predict(xt)) == [str(c) for c in a.predict(xt)]
    with pytest.raises(Exception, match="not fitted"):
        Adapter().save(tmp_path / "never")
