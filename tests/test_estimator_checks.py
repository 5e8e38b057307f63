"""scikit-learn's own estimator checks on graftlab's scikit-learn estimators.

Every check runs; the ones that cannot apply are listed in ``EXPECTED_FAILED_CHECKS`` below, the
one place that says which and why. They are strict xfails: a listed check that starts to pass
fails the run, so the list never hides a check that would pass.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from graftlab.backbones import wrap_module
from graftlab.errors import DataError, GraftlabError, NotFittedError
from graftlab.features import FeatureExtractor
from graftlab.probe import LinearProbeClassifier, LinearProbeRegressor

# Why each check that fails is expected to: the only list of exceptions.
_TABLE = ("feeds a 2-D table of numbers; a FeatureExtractor takes uint8 images (N, H, W, 3) or "
          "texts and refuses a table with a DataError (a ValueError) at fit")
_CV_WEIGHTS = ("the regularisation (C, alpha) is chosen on held-out folds, which differ when a "
               "sample is repeated rather than weighted (as for scikit-learn's "
               "LogisticRegressionCV and RidgeCV): a weight is not a repeat here")
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "LinearProbeClassifier": {"check_sample_weight_equivalence_on_dense_data": _CV_WEIGHTS},
    "LinearProbeRegressor": {"check_sample_weight_equivalence_on_dense_data": _CV_WEIGHTS},
    "FeatureExtractor": {
        # Each of these fits on a numeric table; what they check is checked on images by
        # test_feature_extractor_contract_on_images below.
        **dict.fromkeys([
            "check_fit_score_takes_y", "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
            "check_readonly_memmap_input", "check_n_features_in_after_fitting",
            "check_positive_only_tag_during_fit", "check_estimators_dtypes",
            "check_dtype_object", "check_pipeline_consistency", "check_estimators_pickle",
            "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
            "check_transformer_general", "check_transformer_preserve_dtypes",
            "check_methods_sample_order_invariance", "check_methods_subset_invariance",
            "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
            "check_n_features_in", "check_fit2d_predict1d",
        ], _TABLE),
        # These expect scikit-learn's wording for a table's problems; the refusal is a
        # DataError that says what the backbone takes instead.
        "check_estimators_empty_data_messages": _TABLE + " (a 12 x 0 table is refused as not "
                                                "images, not with '0 feature(s)')",
        "check_estimators_nan_inf": _TABLE + " (refused as not uint8 images, which hold no NaN)",
        "check_fit2d_1sample": _TABLE + " (refused as not images, not as '1 sample')",
        "check_fit2d_1feature": _TABLE + " (refused as not images, not as '1 feature(s)')",
    },
}


# The engine's estimators take images or texts, never a table of numbers: scikit-learn's API
# checks (legacy=False) run on them; these feed a table and cannot apply. What they check is
# checked on images by test_engine_estimators_contract_on_images below.
_ENGINE_TABLE = ("fits on a 2-D table of numbers; a Grafter takes uint8 images (N, H, W, 3) "
                 "or texts and refuses a table with a DataError naming what it takes")
_FED_A_TABLE = ["check_fit_score_takes_y", "check_estimators_overwrite_params",
                "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
                "check_readonly_memmap_input", "check_n_features_in_after_fitting",
                "check_positive_only_tag_during_fit"]
_NEEDS_TARGET = ("calls fit(X, y); an Adapter also needs the unlabelled target, "
                 "fit(X, y, target=...), and refuses to fit without it")
EXPECTED_FAILED_CHECKS.update({
    "Grafter": dict.fromkeys(_FED_A_TABLE, _ENGINE_TABLE),
    "GrafterRegressor": dict.fromkeys(_FED_A_TABLE, _ENGINE_TABLE),
    "Adapter": dict.fromkeys(_FED_A_TABLE, _NEEDS_TARGET),
})


def _tiny_backbone():
    """A seeded two-layer conv net as a backbone: no pretrained weights, milliseconds a batch.
    (Built at collection time, so the global RNG is left as it was.)"""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    return wrap_module(net, name="tiny")


ESTIMATORS = [LinearProbeClassifier(), LinearProbeRegressor(),
              FeatureExtractor(backbone=_tiny_backbone(), cache=False)]


@parametrize_with_checks(ESTIMATORS, xfail_strict=True,
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[
                             type(est).__name__])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _engine_estimators():
    from graftlab import Grafter, GrafterRegressor
    from graftlab.adapt import Adapter

    tiny = {"epochs": 1, "batch_size": 4}
    return [Grafter(backbone=_tiny_backbone(), augment=False, **tiny),
            GrafterRegressor(backbone=_tiny_backbone(), augment=False, **tiny),
            Adapter(backbone=_tiny_backbone(), method="source_only", strategy="full", **tiny)]


ENGINE_ESTIMATORS = _engine_estimators()


@parametrize_with_checks(ENGINE_ESTIMATORS, legacy=False, xfail_strict=True,
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[
                             type(est).__name__])
def test_sklearn_api_checks_on_the_engine_estimators(estimator, check):
    check(estimator)


def test_engine_estimators_contract_on_images():
    """What the table-fed API checks would check, on images: fit returns self and leaves the
    parameters as given, clones fit to the same predictions, unfitted use is refused."""
    X = _images(16)
    y = np.array(["cat", "dog"] * 8)
    for est in ENGINE_ESTIMATORS:
        est = clone(est)
        params = est.get_params()
        kw = {"target": _images(8, 1)} if type(est).__name__ == "Adapter" else {}
        target = np.arange(16.0) if type(est).__name__ == "GrafterRegressor" else y
        with pytest.raises(NotFittedError, match="not fitted yet"):
            est.predict(X)
        assert est.fit(X, target, **kw) is est
        assert est.get_params().keys() == params.keys()
        assert all(est.get_params()[k] is v for k, v in params.items()
                   if k != "backbone"), "fit must not change the parameters"
        twin = clone(est).fit(X, target, **kw)
        if target is y:  # the same labels, the user's names
            assert (twin.predict(X) == est.predict(X)).all()
            assert set(est.predict(X)) <= {"cat", "dog"}
        else:
            np.testing.assert_allclose(twin.predict(X), est.predict(X), rtol=1e-5)
            assert not hasattr(est, "predict_proba")  # a regressor has no probabilities


def test_every_listed_exception_names_a_real_check():
    from sklearn.utils.estimator_checks import estimator_checks_generator

    for estimator in ESTIMATORS + ENGINE_ESTIMATORS:
        legacy = estimator in ESTIMATORS
        names = {getattr(check, "func", check).__name__
                 for _, check in estimator_checks_generator(estimator, legacy=legacy)}
        listed = set(EXPECTED_FAILED_CHECKS[type(estimator).__name__])
        assert listed <= names, f"not checks of {type(estimator).__name__}: {listed - names}"


def test_not_fitted_is_graftlabs_and_scikit_learns():
    for probe in (LinearProbeClassifier(), FeatureExtractor()):
        method = probe.predict if hasattr(probe, "predict") else probe.transform
        for kind in (NotFittedError, SklearnNotFittedError, GraftlabError, AttributeError):
            with pytest.raises(kind, match="is not fitted yet"):
                method(np.zeros((2, 3)))


def test_the_cli_does_not_pay_for_scikit_learn():
    """The scikit-learn base class is built on first use: importing graftlab.errors (every
    command does) must not import scikit-learn, which takes about a second."""
    import subprocess
    import sys

    code = ("import sys, graftlab.errors; assert 'sklearn' not in sys.modules; "
            "from graftlab.errors import NotFittedError; import sklearn.exceptions as e; "
            "assert issubclass(NotFittedError, e.NotFittedError); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def test_feature_extractor_contract_on_images():
    """What the table-fed checks above would check, on the inputs a FeatureExtractor takes:
    fit returns self and is idempotent, clones and pickles, and each sample's features do not
    depend on the others (order, subsets)."""
    X = _images(12)
    extractor = FeatureExtractor(backbone=_tiny_backbone(), cache=False)
    assert extractor.fit(X) is extractor
    feats = extractor.transform(X)
    assert feats.shape == (12, 4) and feats.dtype == np.float32
    np.testing.assert_allclose(extractor.fit(X).transform(X), feats, rtol=1e-6)
    np.testing.assert_allclose(clone(extractor).fit(X).transform(X), feats, rtol=1e-6)
    restored = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_allclose(restored.transform(X), feats, rtol=1e-6)
    order = np.random.default_rng(1).permutation(12)
    np.testing.assert_allclose(extractor.transform(X[order]), feats[order], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(extractor.transform(X[3:7]), feats[3:7], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("X,message", [
    (sp.csr_matrix(np.ones((4, 3))), r"FeatureExtractor got a sparse matrix \(csr_matrix\); "
                                     r"sparse input is not supported: the backbone takes uint8 "
                                     r"images \(N, H, W, 3\)"),
    (np.ones((4, 3), complex), r"Complex data not supported: the backbone takes uint8 images"),
    (np.ones((4, 3)), r"cannot use an array of shape \(4, 3\) as images\.\nHINT: flat rows of "
                      r"pixels\? reshape them"),
])
def test_feature_extractor_refuses_what_no_backbone_takes(X, message):
    extractor = FeatureExtractor(backbone=_tiny_backbone(), cache=False)
    with pytest.raises(DataError, match=message):
        extractor.fit(X)
    extractor.fit()
    with pytest.raises(DataError, match=message):
        extractor.transform(X)


def test_a_text_extractor_refuses_numbers_and_a_bare_string():
    from graftlab.features.estimator import _check_inputs  # the check, without a text model

    with pytest.raises(DataError, match=r"the text backbone takes a list of texts, got a float64 "
                                        r"array of shape \(4, 3\)"):
        _check_inputs(np.ones((4, 3)), "text")
    with pytest.raises(DataError, match=r"got one string(.|\n)*HINT: wrap one text in a list"):
        _check_inputs("a review", "text")
    _check_inputs(["a review", "another"], "text")
    _check_inputs(np.array(["a review", "another"]), "text")
