"""Errors that teach the fix.

Every user-facing failure in graftlab is a :class:`GraftlabError` (or a subclass that is also
the matching built-in, so ``except ValueError`` keeps working): it names the bad value, what
was allowed, and what to do next.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any


class GraftlabError(Exception):
    """Base class for every error graftlab raises on bad input or a bad environment."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message, self.hint = message, hint  # apart, for who words them otherwise
        super().__init__(f"{message}\nHINT: {hint}" if hint else message)


class ConfigError(GraftlabError, ValueError):
    """An argument or configuration value that is not allowed."""


class DataError(GraftlabError, ValueError):
    """User data that cannot be used as given (missing, empty, corrupt, one class...)."""


class NotFoundError(GraftlabError, KeyError):
    """A name (backbone, data set, layer...) that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class WeightsError(GraftlabError, RuntimeError):
    """Pretrained weights that are missing or fail their checksum."""


def _not_fitted_error() -> type:
    """Build ``NotFittedError`` on first use: importing scikit-learn costs about a second,
    which the CLI must not pay on every command."""
    with _LOCK:
        if "_NOT_FITTED" not in globals():
            from sklearn.exceptions import NotFittedError as SklearnNotFittedError

            class NotFittedError(GraftlabError, SklearnNotFittedError):
                """An estimator used before ``fit``. Also scikit-learn's ``NotFittedError``
                (a ValueError and an AttributeError), so ``except`` clauses for either catch
                it and scikit-learn's estimator checks accept it."""

            NotFittedError.__module__, NotFittedError.__qualname__ = __name__, "NotFittedError"
            globals()["_NOT_FITTED"] = NotFittedError
        return globals()["_NOT_FITTED"]


_LOCK = threading.Lock()

if TYPE_CHECKING:
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

    class NotFittedError(GraftlabError, _SklearnNotFittedError):
        """An estimator used before ``fit``."""


def __getattr__(name: str) -> Any:  # PEP 562: ``from graftlab.errors import NotFittedError``
    if name == "NotFittedError":
        return _not_fitted_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The closest registered name to ``name`` (for 'did you mean' hints), or None."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def unknown_name(kind: str, name: str, choices: Iterable[str], *, hint: str | None = None):
    """A :class:`NotFoundError` that lists the known names and suggests the closest one."""
    choices = sorted(choices)
    guess = closest(name, choices)
    plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    message = f"unknown {kind} {name!r}. Known {plural}: {', '.join(choices) or '(none)'}."
    if guess:
        message += f" Did you mean {guess!r}?"
    return NotFoundError(message, hint=hint)


def named_once(names: Iterable[str], what: str) -> None:
    """Refuse a list that names something twice (strategies, methods), naming the repeats."""
    names = list(names)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{what} {names} names {', '.join(map(repr, twice))} more than once.",
                          hint="give each once.")
