"""A fit that fails leaves the estimator as it was: the fitted attributes (scikit-learn's
trailing underscore: ``classes_``, ``model_`` ...) of the last fit that finished, or none."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def _fitted(est: Any) -> dict:
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def restores_on_failure(fit: Callable) -> Callable:
    """Wrap ``fit`` so that an error (or Ctrl-C) part-way through puts the fitted attributes
    back: a second fit that fails on its labels must not leave the first model answering with
    the second's classes."""

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = _fitted(self)
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            for name in set(_fitted(self)) - set(before):
                delattr(self, name)
            for name, value in before.items():
                setattr(self, name, value)
            raise

    return wrapper
