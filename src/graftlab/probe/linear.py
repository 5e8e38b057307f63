"""Linear probing: a linear model on frozen features, with its regularisation tuned by CV.

scikit-learn estimators (keyword-only ``__init__``, fitted attributes ending in ``_``), so they
drop into a ``Pipeline`` after :class:`graftlab.features.FeatureExtractor` or into
``GridSearchCV``; they pass scikit-learn's own estimator checks (tests/test_estimator_checks.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from graftlab.errors import DataError, NotFittedError

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
DEFAULT_ALPHAS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
FLOATS = (np.float64, np.float32)  # kept as given (graftlab's features are float32, no copy)


def _features(est: BaseEstimator, X: Any, y: Any = None, *, fit: bool,
              classify: bool = False) -> Any:
    """Validated float features (and labels when fitting), with graftlab's messages for the
    common mistakes and scikit-learn's checks (``n_features_in_``, feature names, dtypes,
    complex values...) for the rest."""
    name = type(est).__name__
    if sp.issparse(X):
        raise DataError(f"{name} got sparse features ({type(X).__name__}); sparse input is not "
                        "supported.", hint="densify them with X.toarray(); graftlab's features "
                        "are dense already.")
    if fit and y is None:
        raise DataError(f"{name} requires y to be passed, but the target y is None.",
                        hint="call fit(X, y) with one label (or target value) per feature row.")
    shape = tuple(X.shape) if hasattr(X, "shape") else np.asarray(X).shape
    if len(shape) != 2:
        raise DataError(f"features must be a 2-D array (samples, dims), got shape {shape}.",
                        hint="Reshape your data: X.reshape(-1, 1) if it is one feature, "
                        "X.reshape(1, -1) if it is one sample." if len(shape) == 1 else None)
    n_labels = (len(y) if hasattr(y, "__len__") else len(np.atleast_1d(np.asarray(y)))) if fit \
        else shape[0]
    if n_labels != shape[0]:
        raise DataError(f"{shape[0]} feature rows but {n_labels} labels; give one label per row.")
    if shape[0] == 0:
        raise DataError("no samples to fit on: the features have 0 rows." if fit else
                        "no samples to predict: the features have 0 rows.")
    try:
        if fit:
            X, y = validate_data(est, X, y, dtype=FLOATS, ensure_all_finite=False,
                                 multi_output=not classify, y_numeric=not classify)
        else:
            X = validate_data(est, X, reset=False, dtype=FLOATS, ensure_all_finite=False)
    except ValueError as exc:
        raise DataError(str(exc), hint="give a 2-D array of numbers, one row per sample, "
                        "with the columns it was fitted on." if not fit else None) from exc
    if not np.isfinite(X).all():
        raise DataError("features hold NaN or inf values; re-extract them (the cache rebuilds).")
    if fit and classify:
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise DataError(str(exc), hint="labels name classes; for a continuous target use "
                            "LinearProbeRegressor.") from exc
        classes = np.unique(y)
        if len(classes) < 2:
            only = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]
            raise DataError(  # 'a', not np.str_('a')
                f"labels hold only one class ({only!r}); a classifier needs at least two.",
                hint="check the label column, or use a regressor for continuous targets.",
            )
    return (X, y) if fit else X


class _Fitted:
    def _check(self) -> None:
        try:
            check_is_fitted(self, "model_")
        except SklearnNotFittedError as exc:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) first."
            ) from exc


class LinearProbeClassifier(_Fitted, ClassifierMixin, BaseEstimator):
    """Standardised features + multinomial logistic regression with a tuned ``C``.

    ``C`` is chosen from ``Cs`` by validation log-loss: on one stratified hold-out split of
    ``validation_fraction`` (warm-started along the ``C`` path, then refitted on everything)
    when there are at least ``holdout_min`` samples, else by ``cv``-fold cross-validation.
    ``n_iter_`` is the most solver iterations any of those fits took.
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

    def fit(self, X, y, sample_weight=None) -> LinearProbeClassifier:
        """``sample_weight`` (one >= 0 per sample, e.g. a source selection's) weighs each
        sample's loss in the fit, and in choosing ``C`` on a held-out part (on data too small
        for one, the cross-validated choice of ``C`` scores its folds unweighted)."""
        X, y = _features(self, X, y, fit=True, classify=True)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        scaler = StandardScaler().fit(X)
        Xs = scaler.transform(X)
        counts = np.unique(y, return_counts=True)[1]
        if len(X) >= self.holdout_min and counts.min() >= 2:
            clf = self._fit_holdout(Xs, y, w)
        else:
            clf = LogisticRegressionCV(
                Cs=list(self.Cs), cv=int(max(2, min(self.cv, counts.min()))),
                max_iter=self.max_iter, scoring="neg_log_loss", l1_ratios=(0.0,),
                class_weight=self.class_weight, random_state=self.random_state,
                use_legacy_attributes=False,
            ).fit(Xs, y)  # C from unweighted folds (scikit-learn's weighted CV fails here)
            self.C_ = float(np.ravel(clf.C_)[0])
            if w is not None:
                clf = LogisticRegression(C=self.C_, max_iter=self.max_iter,
                                         class_weight=self.class_weight,
                                         random_state=self.random_state).fit(
                    Xs, y, sample_weight=w)
        self.model_ = Pipeline([("scale", scaler), ("clf", clf)])
        self.classes_ = clf.classes_
        self.n_iter_ = int(np.max(clf.n_iter_))
        return self

    def _fit_holdout(self, Xs: np.ndarray, y: np.ndarray, w: np.ndarray | None = None
                     ) -> LogisticRegression:
        train, val = train_test_split(np.arange(len(y)), test_size=self.validation_fraction,
                                      stratify=y, random_state=self.random_state)
        clf = LogisticRegression(warm_start=True, max_iter=self.max_iter,
                                 class_weight=self.class_weight, random_state=self.random_state)
        scores = {}
        for C in sorted(self.Cs):
            clf.set_params(C=C).fit(Xs[train], y[train],
                                    sample_weight=None if w is None else w[train])
            scores[C] = log_loss(y[val], clf.predict_proba(Xs[val]), labels=clf.classes_,
                                 sample_weight=None if w is None else w[val])
        self.C_ = float(min(scores, key=scores.get))
        self.validation_log_loss_ = scores
        return clf.set_params(C=self.C_).fit(Xs, y, sample_weight=w)

    def predict(self, X) -> np.ndarray:
        self._check()
        return self.model_.predict(_features(self, X, fit=False))

    def predict_proba(self, X) -> np.ndarray:
        self._check()
        return self.model_.predict_proba(_features(self, X, fit=False))

    def decision_function(self, X) -> np.ndarray:
        self._check()
        return self.model_.decision_function(_features(self, X, fit=False))


class LinearProbeRegressor(_Fitted, RegressorMixin, BaseEstimator):
    """Standardised features + ridge regression, ``alpha`` chosen by efficient leave-one-out.
    A 2-D ``y`` fits one ridge per column (one shared ``alpha``)."""

    def __init__(self, *, alphas: tuple[float, ...] = DEFAULT_ALPHAS) -> None:
        self.alphas = alphas

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # a 2-D y: one ridge fit per column, as RidgeCV
        return tags

    def fit(self, X, y, sample_weight=None) -> LinearProbeRegressor:
        X, y = _features(self, X, y, fit=True)
        ridge = RidgeCV(alphas=list(self.alphas))
        self.model_ = Pipeline([("scale", StandardScaler()), ("ridge", ridge)]).fit(
            X, y, **({} if sample_weight is None else {"ridge__sample_weight": sample_weight}))
        self.alpha_ = float(ridge.alpha_)
        return self

    def predict(self, X) -> np.ndarray:
        self._check()
        return self.model_.predict(_features(self, X, fit=False))
