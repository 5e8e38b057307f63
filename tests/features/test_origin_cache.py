"""Splits of one data set are served from a single extraction of the whole (the feature cache
keyed by the origin), so compare's strategies and seeds extract each layer once."""

from __future__ import annotations

import numpy as np

from graftlab.data import Domain
from graftlab.features import FeatureCache, extract_features


def _domain(n=40):
    rng = np.random.default_rng(0)
    return Domain("toy", "image", rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8),
                  labels=np.arange(n) % 2, classes=["a", "b"])


def test_subset_remembers_its_root_through_nested_subsets():
    d = _domain()
    a = d.subset(np.arange(10, 30))
    b = a.subset(np.array([0, 5, 19]))
    assert b.origin[0] is d and b.origin[1].tolist() == [10, 15, 29]
    assert np.array_equal(b.inputs, d.inputs[[10, 15, 29]])
    assert b.unlabelled().origin[0] is d


def test_a_large_split_extracts_the_whole_once_and_small_ones_then_hit():
    d = _domain()
    opts = {"backbone_options": {"image_size": 32}, "backend": "torch"}
    order = np.random.default_rng(1).permutation(len(d))
    train, test = d.subset(order[:30]), d.subset(order[30:])
    f_train = extract_features("efficientnet_lite0", train, **opts)
    assert len(FeatureCache().entries()) == 1  # the whole data set, not the split
    f_test = extract_features("efficientnet_lite0", test, **opts)
    assert len(FeatureCache().entries()) == 1
    direct = extract_features("efficientnet_lite0", d, cache=False, **opts)
    np.testing.assert_allclose(f_train, direct[order[:30]], atol=1e-5)
    np.testing.assert_allclose(f_test, direct[order[30:]], atol=1e-5)


def test_a_small_split_of_an_uncached_set_extracts_only_itself():
    d = _domain()
    extract_features("efficientnet_lite0", d.subset(np.arange(5)),
                     backbone_options={"image_size": 32}, backend="torch")
    (entry,) = FeatureCache().entries()
    assert entry["shape"][0] == 5
