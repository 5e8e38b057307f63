"""Transferability scores on small known cases (synthetic features, no backbone)."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.errors import NotFoundError
from graftlab.scores import SCORES, run_score
from graftlab.scores.hscore import hscore_regularised
from graftlab.scores.leep import leep
from graftlab.scores.logme import logme
from graftlab.scores.nce import nce


def _separable(n=120, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, d)) * 4
    return centres[y] + rng.normal(size=(n, d)), y


def _direct_logme(f: np.ndarray, y: np.ndarray) -> float:
    """The paper's formula with explicit matrices: A = αI + βFᵀF, m = βA⁻¹Fᵀy, MacKay's
    updates to convergence, then the evidence / N; averaged over one-hot columns."""
    n, d = f.shape
    out = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        alpha, beta = 1.0, 1.0
        lam = np.linalg.eigvalsh(f.T @ f)
        for _ in range(500):
            a = alpha * np.eye(d) + beta * f.T @ f
            m = beta * np.linalg.solve(a, f.T @ t)
            gamma = (beta * lam / (alpha + beta * lam)).sum()
            new = gamma / (m @ m), (n - gamma) / ((f @ m - t) @ (f @ m - t))
            done = abs(new[0] / new[1] - alpha / beta) / (alpha / beta) < 1e-10
            alpha, beta = new
            if done:
                break
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.solve(a, f.T @ t)
        ev = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - np.linalg.slogdet(a)[1] / 2
              - beta / 2 * (f @ m - t) @ (f @ m - t) - alpha / 2 * m @ m
              - n / 2 * np.log(2 * np.pi))
        out.append(ev / n)
    return float(np.mean(out))


def test_registry_declares_what_each_score_needs():
    assert set(SCORES.names()) == {"logme", "hscore", "nce", "leep", "knn", "probe"}
    needs = {name for name, cls in SCORES.items() if cls.needs_source}
    assert needs == {"nce", "leep"}
    assert {name for name, cls in SCORES.items() if cls.regression} == {"logme", "knn", "probe"}
    with pytest.raises(NotFoundError, match="Did you mean 'logme'"):
        SCORES.get("logmee")


@pytest.mark.parametrize("n,d", [(40, 5), (6, 10)])  # N > D (Gram route) and N <= D (SVD)
def test_logme_matches_the_papers_formula(n, d):
    rng = np.random.default_rng(1)
    f, y = rng.normal(size=(n, d)), rng.integers(0, 2, n)
    y[:2] = [0, 1]
    assert logme(f, y) == pytest.approx(_direct_logme(f, y), abs=1e-4)


@pytest.mark.parametrize("name", ["logme", "hscore", "knn", "probe"])
def test_feature_scores_prefer_separable_labels(name):
    f, y = _separable()
    shuffled = np.random.default_rng(0).permutation(y)
    good, bad = run_score(name, f, y), run_score(name, f, shuffled)
    assert good.status == bad.status == "ok"
    assert good.value > bad.value


def test_logme_takes_regression_targets():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(200, 6))
    target = f @ rng.normal(size=6) + 0.1 * rng.normal(size=200)
    related, noise = logme(f, target, regression=True), logme(f, rng.normal(size=200),
                                                               regression=True)
    assert related > noise
    two = logme(f, np.c_[target, target], regression=True)  # a 2-D target: columns averaged
    assert two == pytest.approx(related)
    assert run_score("logme", f, target, regression=True).status == "ok"
    assert run_score("hscore", f, target, regression=True).status == "not applicable"


def test_source_scores_prefer_a_source_that_predicts_the_labels():
    y = np.arange(300) % 3
    rng = np.random.default_rng(3)
    informative = np.eye(5)[y] * 4 + rng.normal(size=(300, 5))
    probs = np.exp(informative) / np.exp(informative).sum(axis=1, keepdims=True)
    random = rng.dirichlet(np.ones(5), size=300)
    assert nce(probs, y) > nce(random, y)
    assert leep(probs, y) > leep(random, y)
    assert nce(probs, y) <= 0 and leep(probs, y) <= 0
    assert run_score("leep", informative, y).status == "not applicable"


def test_nce_of_a_perfect_source_is_zero():
    y = np.arange(30) % 3
    assert nce(np.eye(3)[y], y) == pytest.approx(0.0)


@pytest.mark.parametrize("n,d", [(50, 10), (20, 40)])
def test_hscore_matches_the_papers_formula_with_sklearns_ledoit_wolf(n, d):
    from sklearn.covariance import LedoitWolf

    from graftlab.scores.hscore import ledoit_wolf

    rng = np.random.default_rng(4)
    f = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d)
    y = np.arange(n) % 3
    centred = f - f.mean(axis=0)
    lw = LedoitWolf(assume_centered=True).fit(centred)
    cov, shrink = ledoit_wolf(centred)
    assert shrink == pytest.approx(lw.shrinkage_) and np.allclose(cov, lw.covariance_)
    g = np.stack([centred[y == c].mean(axis=0) for c in range(3)])[y]
    direct = (1 - lw.shrinkage_) * np.trace(np.linalg.pinv(lw.covariance_)
                                            @ np.cov(g, rowvar=False))
    assert hscore_regularised(f, y) == pytest.approx(direct)


def test_hscore_is_zero_when_class_means_coincide():
    f = np.r_[np.eye(4), -np.eye(4)]
    y = np.r_[np.arange(4) % 2, np.arange(4) % 2]
    assert hscore_regularised(f, y) == pytest.approx(0.0, abs=1e-12)


def test_non_finite_and_degenerate_features_are_reported_not_scored():
    f, y = _separable(n=30)
    f[3, 1] = np.nan
    result = run_score("logme", f, y)
    assert (result.status, result.value) == ("non-finite", None)
    assert "1 of 30 feature rows hold NaN or inf" in result.note
    constant = run_score("hscore", np.ones((30, 4)), y)
    assert constant.status == "degenerate" and "constant" in constant.note


def test_a_non_finite_result_is_reported(monkeypatch):
    import graftlab.scores.logme as module

    monkeypatch.setattr(module, "logme", lambda *a, **k: float("inf"))
    f, y = _separable(n=30)
    result = run_score("logme", f, y)
    assert result.status == "non-finite" and result.value is None and "inf" in result.note
