"""Linear probing: a linear model on frozen features, with its regularisation tuned by CV.

scikit-learn estimators (keyword-only ``__init__``, fitted attributes ending in ``_``), so they
drop into a ``Pipeline`` after :class:`graftlab.features.FeatureExtractor` or into
``GridSearchCV``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from graftlab.errors import DataError, NotFittedError

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
DEFAULT_ALPHAS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def _check_xy(X, y, *, classify: bool) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2:
        raise DataError(f"features must be a 2-D array (samples, dims), got shape {X.shape}.")
    if len(X) != len(y):
        raise DataError(f"{len(X)} feature rows but {len(y)} labels; give one label per row.")
    if len(X) == 0:
        raise DataError("no samples to fit on: the features have 0 rows.")
    if not np.isfinite(X).all():
        raise DataError("features hold NaN or inf values; re-extract them (the cache rebuilds).")
    if classify and len(np.unique(y)) < 2:
        only = np.unique(y)[0]
        only = only.item() if isinstance(only, np.generic) else only  # 'a', not np.str_('a')
        raise DataError(
            f"labels hold a single class ({only!r}); a classifier needs at least two.",
            hint="check the label column, or use a regressor for continuous targets.",
        )
    return X, y


class _Fitted:
    def _check(self) -> None:
        try:
            check_is_fitted(self, "model_")
        except Exception as exc:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) first."
            ) from exc


class LinearProbeClassifier(_Fitted, ClassifierMixin, BaseEstimator):
    """Standardised features + multinomial logistic regression with a tuned ``C``.

    ``C`` is chosen from ``Cs`` by validation log-loss: on one stratified hold-out split of
    ``validation_fraction`` (warm-started along the ``C`` path, then refitted on everything)
    when there are at least ``holdout_min`` samples, else by ``cv``-fold cross-validation.
    """

    def __init__(self, *, Cs: tuple[float, ...] = DEFAULT_CS, cv: int = 3,
                 validation_fraction: float = 0.2, holdout_min: int = 1000, max_iter: int = 500,
                 class_weight: str | None = None, random_state: int = 0) -> None:
        self.Cs = Cs
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.holdout_min = holdout_min
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X, y) -> LinearProbeClassifier:
        X, y = _check_xy(X, y, classify=True)
        scaler = StandardScaler().fit(X)
        Xs = scaler.transform(X)
        counts = np.unique(y, return_counts=True)[1]
        if len(X) >= self.holdout_min and counts.min() >= 2:
            clf = self._fit_holdout(Xs, y)
        else:
            clf = LogisticRegressionCV(
                Cs=list(self.Cs), cv=int(max(2, min(self.cv, counts.min()))),
                max_iter=self.max_iter, scoring="neg_log_loss", l1_ratios=(0.0,),
                class_weight=self.class_weight, random_state=self.random_state,
                use_legacy_attributes=False,
            ).fit(Xs, y)
            self.C_ = float(np.ravel(clf.C_)[0])
        self.model_ = Pipeline([("scale", scaler), ("clf", clf)])
        self.classes_ = clf.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def _fit_holdout(self, Xs: np.ndarray, y: np.ndarray) -> LogisticRegression:
        train, val = train_test_split(np.arange(len(y)), test_size=self.validation_fraction,
                                      stratify=y, random_state=self.random_state)
        clf = LogisticRegression(warm_start=True, max_iter=self.max_iter,
                                 class_weight=self.class_weight, random_state=self.random_state)
        scores = {}
        for C in sorted(self.Cs):
            clf.set_params(C=C).fit(Xs[train], y[train])
            scores[C] = log_loss(y[val], clf.predict_proba(Xs[val]), labels=clf.classes_)
        self.C_ = float(min(scores, key=scores.get))
        self.validation_log_loss_ = scores
        return clf.set_params(C=self.C_).fit(Xs, y)

    def predict(self, X) -> np.ndarray:
        self._check()
        return self.model_.predict(np.asarray(X, dtype=np.float32))

    def predict_proba(self, X) -> np.ndarray:
        self._check()
        return self.model_.predict_proba(np.asarray(X, dtype=np.float32))

    def decision_function(self, X) -> np.ndarray:
        self._check()
        return self.model_.decision_function(np.asarray(X, dtype=np.float32))


class LinearProbeRegressor(_Fitted, RegressorMixin, BaseEstimator):
    """Standardised features + ridge regression, ``alpha`` chosen by efficient leave-one-out."""

    def __init__(self, *, alphas: tuple[float, ...] = DEFAULT_ALPHAS) -> None:
        self.alphas = alphas

    def fit(self, X, y) -> LinearProbeRegressor:
        X, y = _check_xy(X, y, classify=False)
        ridge = RidgeCV(alphas=list(self.alphas))
        self.model_ = Pipeline([("scale", StandardScaler()), ("ridge", ridge)]).fit(X, y)
        self.alpha_ = float(ridge.alpha_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        self._check()
        return self.model_.predict(np.asarray(X, dtype=np.float32))
