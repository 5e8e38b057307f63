"""The label-free objective for domain adaptation: a trial fits the estimator (an
:class:`~graftlab.adapt.Adapter`) on the labelled source and the unlabelled target, and scores
it with a validator of :mod:`graftlab.evaluate.validators` on the target's predictions, so no
target label is read. ``info_max`` (confident and diverse predictions) is the default;
``entropy`` and ``snd`` (soft neighbourhood density, Saito et al. 2021,
https://arxiv.org/abs/2108.10860) are the others that score one model alone. Such scores
rank models only roughly (Musgrave et al. 2022, https://arxiv.org/abs/2208.07360): the README's
adaptation benchmark is the measure of how far to trust them.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import clone

from graftlab.errors import ConfigError, closest
from graftlab.evaluate.validators import VALIDATORS

LABEL_FREE = ("info_max", "entropy", "snd")


def check_scoring(scoring: str, target: Any) -> None:
    """``accuracy`` (k-fold CV) without a target; one of :data:`LABEL_FREE` with one."""
    if target is None and scoring != "accuracy":
        raise ConfigError(f"scoring {scoring!r} scores predictions on an unlabelled target; "
                          "none was given.", hint="pass fit(X, y, target=...), or use "
                          "scoring='accuracy' (k-fold CV on the labels).")
    if target is not None and scoring not in LABEL_FREE:
        guess = closest(scoring, LABEL_FREE)
        raise ConfigError(f"with a target, trials are scored without its labels: scoring must "
                          f"be one of {', '.join(LABEL_FREE)}, got {scoring!r}."
                          + (f" Did you mean {guess!r}?" if guess else ""))


def label_free_score(est: Any, X: Any, y: Any, target: Any, scoring: str) -> float:
    """Fit a clone of ``est`` on source ``X, y`` and ``target``; the validator's score."""
    fitted = clone(est).fit(X, y, target=target)
    validator = VALIDATORS.get(scoring)
    given = {"probs_t": fitted.predict_proba(target)}
    if "features_t" in validator.needs:
        given["features_t"] = fitted.transform(target)
    return float(validator.score(given))
