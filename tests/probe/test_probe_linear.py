"""Linear probes: tuned, scikit-learn-compatible, and clear about misuse."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from graftlab.errors import DataError, NotFittedError
from graftlab.probe import LinearProbeClassifier, LinearProbeRegressor


def blobs(n_per_class: int, *, dims: int = 20, seed: int = 0):
    """Three Gaussian blobs with random centres, 4 standard deviations apart on average."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0 / np.sqrt(dims), size=(3, dims)) * np.sqrt(dims)
    y = np.repeat(np.arange(3), n_per_class)
    X = centres[y] + rng.normal(size=(len(y), dims))
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)


def test_cv_path_on_a_small_problem():
    X_train, X_test, y_train, y_test = blobs(40)
    probe = LinearProbeClassifier()
    assert probe.fit(X_train, y_train) is probe
    assert accuracy_score(y_test, probe.predict(X_test)) > 0.9
    assert probe.C_ in probe.Cs
    assert not hasattr(probe, "validation_log_loss_")  # small n: chosen by cross-validation
    assert list(probe.classes_) == [0, 1, 2] and probe.n_features_in_ == 20


def test_holdout_path_on_a_larger_problem():
    X_train, X_test, y_train, y_test = blobs(200, seed=1)
    probe = LinearProbeClassifier(holdout_min=300).fit(X_train, y_train)
    assert accuracy_score(y_test, probe.predict(X_test)) > 0.9
    losses = probe.validation_log_loss_
    assert set(losses) == set(probe.Cs)
    assert probe.C_ == min(losses, key=losses.get)


def test_probabilities_and_scores():
    X_train, X_test, y_train, _ = blobs(30)
    probe = LinearProbeClassifier(Cs=(0.1, 1.0)).fit(X_train, y_train)
    proba = probe.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(probe.classes_[proba.argmax(1)], probe.predict(X_test))
    assert probe.decision_function(X_test).shape == (len(X_test), 3)


def test_string_labels():
    X_train, X_test, y_train, y_test = blobs(30)
    names = np.array(["cat", "dog", "eel"])
    probe = LinearProbeClassifier().fit(X_train, names[y_train])
    assert list(probe.classes_) == ["cat", "dog", "eel"]
    assert probe.score(X_test, names[y_test]) > 0.9


def test_works_in_a_pipeline_and_clones():
    X_train, X_test, y_train, y_test = blobs(30)
    probe = LinearProbeClassifier(Cs=(0.01, 1.0), cv=2, random_state=3)
    twin = clone(probe)
    assert twin.get_params() == probe.get_params() and not hasattr(twin, "model_")
    pipe = Pipeline([("scale", StandardScaler()), ("probe", probe)]).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9
    assert not hasattr(twin, "model_")  # fitting the original left the clone alone


def test_grid_search_over_its_parameters():
    X_train, _, y_train, _ = blobs(20)
    search = GridSearchCV(LinearProbeClassifier(), {"Cs": [(0.001,), (1.0,)]}, cv=2)
    search.fit(X_train, y_train)
    assert search.best_params_["Cs"] in [(0.001,), (1.0,)]
    assert search.best_estimator_.C_ == search.best_params_["Cs"][0]


def test_regressor_fits_a_linear_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    y = X @ rng.normal(size=10) + 0.1 * rng.normal(size=200)
    probe = LinearProbeRegressor().fit(X[:150], y[:150])
    assert r2_score(y[150:], probe.predict(X[150:])) > 0.9
    assert probe.alpha_ in probe.alphas and probe.n_features_in_ == 10
    assert clone(probe).get_params() == probe.get_params()


def test_single_class_is_refused():
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(DataError, match=r"labels hold only one class \('a'\); a classifier needs "
                                        r"at least two(.|\n)*HINT: check the label column"):
        LinearProbeClassifier().fit(X, ["a"] * 10)
    with pytest.raises(DataError, match=r"only one class \(3\)"):
        LinearProbeClassifier().fit(X, np.full(10, 3))


@pytest.mark.parametrize("X,y,message", [
    (np.zeros((4, 2, 2)), [0, 1, 0, 1], r"features must be a 2-D array \(samples, dims\), got "
                                        r"shape \(4, 2, 2\)"),
    (np.zeros((4, 2)), [0, 1, 0], "4 feature rows but 3 labels"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), [0, 1], "NaN or inf"),
    (np.zeros((0, 3)), [], "no samples to fit on"),
    (np.zeros(4), [0, 1, 0, 1], r"got shape \(4,\)(.|\n)*HINT: Reshape your data: "
                                r"X.reshape\(-1, 1\) if it is one feature"),
    (sp.csr_matrix(np.ones((4, 2))), [0, 1, 0, 1], r"Probe\w+ got sparse features "
                                                   r"\(csr_matrix\); sparse input is not supported"
                                                   r"(.|\n)*HINT: densify them with X.toarray\(\)"),
    (np.zeros((4, 2)), None, r"requires y to be passed, but the target y is None(.|\n)*HINT: "
                             r"call fit\(X, y\)"),
])
def test_bad_features_are_refused(X, y, message):
    with pytest.raises(DataError, match=message):
        LinearProbeClassifier().fit(X, y)
    with pytest.raises(DataError, match=message):
        LinearProbeRegressor().fit(X, y)


@pytest.mark.parametrize("probe,method", [
    (LinearProbeClassifier(), "predict"), (LinearProbeClassifier(), "predict_proba"),
    (LinearProbeClassifier(), "decision_function"), (LinearProbeRegressor(), "predict"),
])
def test_not_fitted(probe, method):
    name = type(probe).__name__
    with pytest.raises(NotFittedError, match=rf"this {name} is not fitted yet; call fit\(X, y\)"):
        getattr(probe, method)(np.zeros((2, 3)))
    with pytest.raises(AttributeError):  # also the built-in it extends
        getattr(probe, method)(np.zeros((2, 3)))


def test_predict_checks_the_features_it_was_fitted_on():
    X_train, X_test, y_train, _ = blobs(20)
    probe = LinearProbeClassifier(Cs=(1.0,)).fit(X_train, y_train)
    with pytest.raises(DataError, match=r"X has 5 features, but LinearProbeClassifier is "
                                        r"expecting 20 features as input(.|\n)*HINT: give a 2-D"):
        probe.predict(X_test[:, :5])
    bad = X_test.copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="features hold NaN or inf values"):
        probe.predict_proba(bad)
    with pytest.raises(DataError, match="no samples to predict"):
        probe.predict(X_test[:0])


def test_continuous_labels_point_to_the_regressor():
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(DataError, match=r"Unknown label type: continuous(.|\n)*HINT: labels name "
                                        r"classes; for a continuous target use LinearProbeRegressor"):
        LinearProbeClassifier().fit(X, np.linspace(0, 1, 10))


def test_iterations_and_multi_output_regression():
    X_train, _, y_train, _ = blobs(20)
    assert 1 <= LinearProbeClassifier().fit(X_train, y_train).n_iter_ <= 500
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    Y = X @ rng.normal(size=(4, 2))
    probe = LinearProbeRegressor().fit(X, Y)
    assert probe.predict(X).shape == (60, 2) and probe.score(X, Y) > 0.99
