"""Join data sets labelled for different tasks into one multi-task training set."""

from __future__ import annotations

from typing import Any

import numpy as np

from graftlab.data.domain import Domain
from graftlab.data.tagged import TaggedSentences
from graftlab.errors import ConfigError, DataError


def join_tasks(parts: dict[str, tuple[Any, Any]], *, conflicts: str = "error"
               ) -> tuple[list[str] | np.ndarray, dict[str, list]]:
    """``{task: (inputs, labels)}`` -> ``(inputs, {task: labels})``: every sample once, with
    None for the tasks its file did not label. Texts that occur in several parts are one
    sample carrying each part's label (a text labelled twice for one task must agree, or with
    ``conflicts="first"`` keeps its first label); images
    are appended. ``inputs`` may be a Domain; its labels are taken when ``labels`` is None (its
    class names; a data set without labels, e.g. ``vader_ratings``, gives its ``targets``). A
    :class:`~graftlab.data.TaggedSentences` (a ``tokens`` task's data) gives its sentences as
    texts (words joined by single spaces) and its tags."""
    if conflicts not in ("error", "first"):
        raise ConfigError(f"conflicts must be 'error' or 'first', got {conflicts!r}.")
    texts: dict[str, int] = {}
    inputs: list = []
    labels: dict[str, list] = {task: [] for task in parts}
    for task, (x, y) in parts.items():
        x, y = _unpack(task, x, y)
        for item, value in zip(x, y, strict=True):
            row = texts.get(item) if isinstance(item, str) else None
            if row is None:
                row = len(inputs)
                inputs.append(item)
                for column in labels.values():
                    column.append(None)
                if isinstance(item, str):
                    texts[item] = row
            old = labels[task][row]
            if old is not None and old != value and conflicts == "error":
                raise DataError(f"task {task!r}: the text {item[:60]!r} is labelled both "
                                f"{old!r} and {value!r}.", hint="keep one label per text, "
                                "or keep the first (a multi-task config's conflicts: first; "
                                "in Python join_tasks(..., conflicts='first')).")
            if old is None:
                labels[task][row] = value
    if inputs and not isinstance(inputs[0], str):
        inputs = np.stack(inputs)
    return inputs, labels


def _unpack(task: str, x: Any, y: Any) -> tuple[list, list]:
    if isinstance(x, TaggedSentences):
        x, y = x.texts, x.tags if y is None else y
    if isinstance(x, Domain):
        if y is None and x.labels is not None:
            y = np.asarray(x.classes)[x.labels] if x.classes else x.labels
        elif y is None:
            y = x.targets
        x = x.inputs
    if y is None:
        raise DataError(f"task {task!r}: no labels given.",
                        hint="give (inputs, labels), or a labelled Domain.")
    x, y = list(x), [v.item() if isinstance(v, np.generic) else v for v in y]
    if len(x) != len(y):
        raise DataError(f"task {task!r}: {len(x)} inputs but {len(y)} labels.")
    return x, y
