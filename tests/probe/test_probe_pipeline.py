"""FeatureExtractor as a scikit-learn transformer, in front of a classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from graftlab.errors import ConfigError, NotFittedError, NotFoundError
from graftlab.features import FeatureCache, FeatureExtractor
from graftlab.probe import LinearProbeClassifier


def two_colours(n_per_class: int, seed: int = 0):
    """Noisy reddish vs bluish 12x12 images, labels 0 and 1, shuffled."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], n_per_class))
    base = np.where(y[:, None], [40, 60, 200], [200, 50, 40])
    noise = rng.integers(-40, 41, (len(y), 12, 12, 3))
    X = np.clip(base[:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return X, y


def test_extractor_and_logistic_regression_in_a_pipeline(tiny_backbone):
    X, y = two_colours(15)
    pipe = Pipeline([("features", FeatureExtractor(backbone=tiny_backbone)),
                     ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(X[:20], y[:20])
    assert pipe.predict(X[20:]).shape == (10,)
    assert pipe.score(X[20:], y[20:]) >= 0.9
    extractor = pipe.named_steps["features"]
    assert extractor.layer_ == "output" and extractor.pooling_ == "avg"
    names = extractor.get_feature_names_out()
    assert len(names) == 16 and names[0] == "output_0"
    assert len(FeatureCache().entries()) == 2  # train and test features were cached


def test_extractor_and_linear_probe(tiny_backbone):
    X, y = two_colours(15, seed=1)
    pipe = Pipeline([("features", FeatureExtractor(backbone=tiny_backbone, cache=False)),
                     ("probe", LinearProbeClassifier())]).fit(X[:20], y[:20])
    assert pipe.score(X[20:], y[20:]) >= 0.9
    assert FeatureCache().entries() == []


def test_extractor_transform_matches_extract_features(lite0, images):
    from graftlab.features import extract_features

    data = images(4, size=28)
    extractor = FeatureExtractor(backbone="efficientnet_lite0", layer="blocks.3",
                                 backbone_options={"image_size": 32})
    feats = extractor.fit_transform(data)
    assert type(feats) is np.ndarray and feats.shape == (4, 40)
    np.testing.assert_allclose(feats, extract_features(lite0, data, layer="blocks.3"),
                               rtol=1e-5, atol=1e-5)


def test_feature_names_match_the_chosen_layer(lite0, images):
    extractor = FeatureExtractor(backbone=lite0, layer="blocks.3")
    feats = extractor.fit_transform(images(2, size=28))
    assert len(extractor.get_feature_names_out()) == feats.shape[1] == 40


def test_extractor_is_a_proper_estimator(tiny_backbone):
    extractor = FeatureExtractor(backbone="minilm_l6", layer="layer.2", pooling="cls",
                                 batch_size=8, cache=False)
    twin = clone(extractor)
    assert twin.get_params() == extractor.get_params()
    assert twin.get_params()["layer"] == "layer.2" and not hasattr(twin, "backbone_")


def test_extractor_not_fitted():
    with pytest.raises(NotFittedError, match=r"this FeatureExtractor is not fitted yet; call "
                                             r"fit\(\) \(or fit_transform\) first"):
        FeatureExtractor().transform(np.zeros((1, 8, 8, 3), np.uint8))


def test_extractor_checks_layer_and_pooling_at_fit(tiny_backbone):
    with pytest.raises(NotFoundError, match="unknown layer 'fc'"):
        FeatureExtractor(backbone=tiny_backbone, layer="fc").fit()
    with pytest.raises(ConfigError, match="pooling 'mean' is not available for image"):
        FeatureExtractor(backbone=tiny_backbone, pooling="mean").fit()
