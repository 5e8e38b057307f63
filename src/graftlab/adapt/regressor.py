"""``AdapterRegressor``: domain adaptation for a continuous target (e.g. VADER's mean rating).

    AdapterRegressor(backbone="minilm_l6", method="coral", strategy="head_only", head="mlp")
        .fit(movies, movies.targets, target=tweets).predict(tweets)

The source loss is the mean squared error on the standardised target; the transfer term is the
method's, unchanged. Methods that align features work for regression: ``dann`` (a domain
discriminator on the features), ``dan`` (MMD), ``coral`` (covariances), and ``source_only``.
``cdan`` (conditions its discriminator on class probabilities) and ``mcc`` (penalises confusion
between classes) need class probabilities and are refused, as is self-training from a
teacher's class probabilities. A fitted AdapterRegressor saves (``grafter_``) as a
:class:`~graftlab.regressor.GrafterRegressor`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from graftlab.adapt.adapter import Adapter, _check_shapes, _target_domain
from graftlab.errors import ConfigError, DataError
from graftlab.features.extract import as_domain
from graftlab.methods import METHODS
from graftlab.train.build import backbone_modality
from graftlab.train.targets import ContinuousTargets


def regression_methods() -> list[str]:
    """The adaptation methods that apply to a continuous target (none needs probabilities)."""
    return [name for name, cls in METHODS.items() if not cls.needs_probabilities]


def check_regression_method(method: str) -> None:
    if METHODS.get(method).needs_probabilities:
        raise ConfigError(f"{method} needs class probabilities, and a regression target has "
                          "none.", hint=f"for regression use {', '.join(regression_methods())}.")


class AdapterRegressor(RegressorMixin, Adapter):
    """:class:`~graftlab.adapt.adapter.Adapter` for a numeric source target; ``predict``
    returns values on the source target's scale."""

    _regression = True

    def fit(self, X: Any, y: Any, *, target: Any, teacher_proba: np.ndarray | None = None,
            progress=None) -> AdapterRegressor:
        """``X, y``: source inputs and their numbers (a Domain's ``targets`` when ``y`` is
        None); ``target``: unlabelled target inputs."""
        check_regression_method(self.method)
        if teacher_proba is not None:
            raise ConfigError("self-training from a teacher's class probabilities does not "
                              "apply to a regression target.", hint="leave teacher_proba out.")
        return super().fit(X, y, target=target, progress=progress)

    def _inputs(self, X: Any, y: Any, target: Any, teacher_proba: Any) -> tuple:
        modality = backbone_modality(self.backbone, self.backbone_options)
        source, tgt = as_domain(X, modality), _target_domain(target, modality)
        _check_shapes(source, tgt)
        y = y if y is not None else source.targets
        if y is None:
            raise DataError(f"source {source.name!r} has no numeric targets to regress on.",
                            hint="give y, or load VADER with binary=False (vader_ratings).")
        if len(y) != len(source):
            raise DataError(f"{len(source)} source inputs but {len(y)} targets.")
        self.targets_ = ContinuousTargets()
        encoded = self.targets_.fit(np.asarray(y))
        return source, tgt, encoded, None

    def predict(self, X: Any) -> np.ndarray:
        return self.grafter_.predict(X) if hasattr(self, "grafter_") else \
            self.decision_function(X)  # raises the not-fitted error

    @property
    def predict_proba(self):  # a regressor has none (hasattr says so, as scikit-learn's do)
        raise AttributeError("AdapterRegressor predicts numbers, not class probabilities.")
