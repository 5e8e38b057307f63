"""Task types: what one task of a multi-task model predicts, each a registered class.

A task type declares its head input (``pooled``: the sample's pooled features), its default
head, its loss and validation metric, how its targets are encoded (the engine's
:mod:`~graftlab.train.targets` kinds) and how a missing label is marked, in the user's data and
once encoded. A new kind (e.g. ``tokens`` for NER: a token head, BIO tags, entity F1) is one
more file that registers a subclass here.

=================  ==============================  ===========================================
type               missing label (given)            encoded (missing)
=================  ==============================  ===========================================
``classification`` None or NaN (or ``missing=``)    class index, -1 when missing
``regression``     None or NaN                      standardised float, NaN when missing
``tokens``         None                             tag id at each word's first sub-token,
                                                    -100 elsewhere; all -100 when missing
=================  ==============================  ===========================================

``tokens`` (:mod:`.tokens`: NER, one tag per word) reads token outputs: with a token task the
``multitask`` head reads the layer's token outputs (B, T, D), pools them itself (the mean over
the attention mask, or the model's pooling) for the sample-level tasks and applies the token
head at every position, and the model's output is a dict ``{task: tensor}`` in task order
((B, outputs) per sample task, (B, T, outputs) per token task) instead of one (B, sum of
outputs) tensor. Without a token task nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from graftlab.errors import ConfigError, DataError
from graftlab.registry import Registry
from graftlab.train.targets import ClassTargets, ContinuousTargets

TASK_TYPES: Registry[type[TaskType]] = Registry(
    "task type", hint="a task is 'classification' or 'regression', or a spec such as "
    "{'type': 'classification', 'head': 'mlp'}.")


def register_task_type(name: str) -> Callable[[type[TaskType]], type[TaskType]]:
    return TASK_TYPES.register(name)


def _is_missing(value: Any, marker: Any = None) -> bool:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return True
    return marker is not None and value == marker


class TaskType:
    """One named task: its head (``head``, ``head_options``) and its fitted targets."""

    name = "task"
    head_input = "pooled"  # what its head reads (the multi-task head feeds pooled features)
    default_head = "linear"
    metric = "loss"        # what validation reports per task (besides the loss)
    missing_given = "None or NaN"
    per_token = False      # one output per token (the head reads token outputs): ``tokens``
    _targets: type = ClassTargets

    def __init__(self, task: str, *, head: str | None = None, head_options: dict | None = None,
                 missing: Any = None, **state: Any) -> None:
        self.task, self.head = task, head or self.default_head
        self.head_options, self.missing = head_options or {}, missing
        self.targets = self._targets(**state) if state else self._targets()

    # ---- targets
    def present_in(self, y: np.ndarray) -> np.ndarray:
        """Which of the user's labels are given (not marked missing)."""
        return np.array([not _is_missing(v, self.missing) for v in y], dtype=bool)

    def fit(self, y: np.ndarray) -> np.ndarray:
        """Learn the encoding from the given labels; return all of them encoded."""
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        return self.targets.num_outputs

    def tensor(self, encoded: np.ndarray, texts: Any = None, backbone: Any = None
               ) -> torch.Tensor:
        """The encoded labels as the tensor batches are cut from (a token task aligns them to
        the ``texts``' tokens with the ``backbone``'s tokenizer)."""
        return torch.as_tensor(encoded, dtype=self.dtype)

    # ---- training
    def present(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metric_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- prediction
    def decode(self, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.task, "type": self.name, "head": self.head,
                "head_options": self.head_options, "missing": self.missing,
                **self.targets.config()}


@register_task_type("classification")
class ClassificationTask(TaskType):
    """Class labels; cross-entropy; accuracy (and macro F1 in ``score``)."""

    metric = "accuracy"
    _targets = ClassTargets
    dtype = torch.long

    def __init__(self, task: str, *, classes: Any = None, **options: Any) -> None:
        super().__init__(task, **options, **({"classes": classes} if classes is not None
                                              else {}))

    def fit(self, y: np.ndarray) -> np.ndarray:
        keep = self.present_in(y)
        encoded = np.full(len(y), -1, dtype=np.int64)
        encoded[keep] = self.targets.fit(np.asarray(y[keep].tolist()))
        return encoded

    def encode(self, y: np.ndarray) -> np.ndarray:
        keep = self.present_in(y)
        encoded = np.full(len(y), -1, dtype=np.int64)
        if keep.any():
            encoded[keep] = self.targets.encode(np.asarray(y[keep].tolist()))
        return encoded

    def present(self, y):
        return y >= 0

    def loss(self, out, y):
        return F.cross_entropy(out, y)

    def metric_sum(self, out, y):
        return (out.argmax(-1) == y).sum()

    def decode(self, out):
        return self.targets.classes[out.argmax(-1)]

    def score(self, pred, y):
        from sklearn.metrics import accuracy_score, f1_score

        y = np.asarray(y.tolist())
        return {"accuracy": float(accuracy_score(y, pred)),
                "macro_f1": float(f1_score(y, pred, average="macro"))}


@register_task_type("regression")
class RegressionTask(TaskType):
    """A number; mean squared error on the standardised target; RMSE and Pearson r."""

    metric = "mse"  # standardised, during validation
    _targets = ContinuousTargets
    dtype = torch.float32

    def __init__(self, task: str, *, target_mean: float | None = None,
                 target_std: float | None = None, **options: Any) -> None:
        state = {} if target_mean is None else {"mean": target_mean, "std": target_std}
        super().__init__(task, **options, **state)

    def fit(self, y: np.ndarray) -> np.ndarray:
        keep = self.present_in(y)
        encoded = np.full(len(y), np.nan, dtype=np.float32)
        encoded[keep] = self.targets.fit(np.asarray(y[keep].tolist()))
        return encoded

    def encode(self, y: np.ndarray) -> np.ndarray:
        keep = self.present_in(y)
        encoded = np.full(len(y), np.nan, dtype=np.float32)
        encoded[keep] = self.targets.encode(np.asarray(y[keep].tolist()))
        return encoded

    def present(self, y):
        return ~torch.isnan(y)

    def loss(self, out, y):
        return F.mse_loss(out[:, 0], y)

    def metric_sum(self, out, y):
        return ((out[:, 0] - y) ** 2).sum()

    def decode(self, out):
        return out[:, 0] * self.targets.std + self.targets.mean

    def score(self, pred, y):
        y = np.asarray(y.tolist(), dtype=np.float64)
        r = float(np.corrcoef(pred, y)[0, 1]) if len(y) > 1 and y.std() and pred.std() else 0.0
        return {"rmse": float(np.sqrt(np.mean((pred - y) ** 2))), "pearson_r": r}


def make_task(name: str, spec: Any) -> TaskType:
    """A task from its spec: a type name, or a dict with ``type`` and the options
    (``head``, ``head_options``, ``missing``); the head must read what the type feeds it."""
    from graftlab.heads.heads import HEADS

    options = {"type": spec} if isinstance(spec, str) else dict(spec or {})
    if not isinstance(spec, str | dict):
        raise ConfigError(f"task {name!r}: give a task type name or a dict spec, got "
                          f"{type(spec).__name__}.", hint="e.g. 'classification'.")
    kind = options.pop("type", options.pop("kind", None))
    options.pop("name", None)
    if kind is None:
        raise ConfigError(f"task {name!r} has no type.",
                          hint=f"give 'type': one of {', '.join(TASK_TYPES.names())}.")
    cls = TASK_TYPES.get(kind)
    head = options.get("head") or cls.default_head
    takes = HEADS.get(head).input_kind
    if takes != cls.head_input:
        raise ConfigError(f"task {name!r} ({kind}) reads {cls.head_input} features, but head "
                          f"{head!r} takes {takes} input.",
                          hint=f"give it a {cls.head_input} head: " + ", ".join(
                              n for n in HEADS.names() if HEADS.get(n).input_kind ==
                              cls.head_input and n != "multitask") + ".")
    if head == "multitask":
        raise ConfigError(f"task {name!r}: a task's head cannot itself be 'multitask'.",
                          hint="give it 'linear' or 'mlp'.")
    try:
        return cls(name, **options)
    except TypeError as exc:
        raise ConfigError(f"task {name!r}: {exc}.",
                          hint="a task spec takes type, head, head_options, missing.") from None


def tasks_from(spec: Any) -> dict[str, TaskType]:
    """Tasks in order, from ``{name: spec}`` or ``[{"name": ..., "type": ...}, ...]``; a name
    used twice and an empty list are refused."""
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, list | tuple):
        items = []
        for entry in spec:
            if not isinstance(entry, dict) or "name" not in entry:
                raise ConfigError(f"a task in a list needs a 'name', got {entry!r}.",
                                  hint="e.g. {'name': 'sentiment', 'type': 'classification'}.")
            items.append((entry["name"], entry))
    else:
        raise ConfigError(f"tasks must be a dict {{name: type}} or a list of specs, got "
                          f"{type(spec).__name__}.", hint="e.g. tasks={'sentiment': "
                          "'classification', 'rating': 'regression'}.")
    names = [str(n) for n, _ in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"task name {', '.join(map(repr, twice))} is used twice.",
                          hint="give every task its own name.")
    if not items:
        raise ConfigError("no tasks given.", hint="e.g. tasks={'label': 'classification'}.")
    return {str(n): make_task(str(n), s) for n, s in items}


def as_column(values: Any) -> np.ndarray:
    """One object per label (a token task's label, a list of tags, stays one object)."""
    values = list(values)
    column = np.full(len(values), None, dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def check_labels(tasks: dict[str, TaskType], y: Any, n: int) -> dict[str, np.ndarray]:
    """``y`` as ``{task: labels}``, one per input, every sample labelled for some task."""
    if not isinstance(y, dict):
        raise DataError(f"multi-task targets are a dict {{task: labels}}, got "
                        f"{type(y).__name__}.", hint=f"give labels for {', '.join(tasks)}.")
    unknown, absent = sorted(set(y) - set(tasks)), [t for t in tasks if t not in y]
    if unknown:
        raise DataError(f"labels for {unknown}, which are not tasks ({', '.join(tasks)}).",
                        hint="add them to tasks, or drop them.")
    out = {}
    for name in tasks:
        column = np.full(n, None, dtype=object) if name in absent else as_column(y[name])
        if len(column) != n:
            raise DataError(f"task {name!r}: {len(column)} labels for {n} inputs.",
                            hint="give one label per input (None where it has none).")
        out[name] = column
    present = np.zeros(n, dtype=bool)
    for name, column in out.items():
        mine = tasks[name].present_in(column)
        if not mine.any():  # its head would train on nothing (a regressor on NaN statistics)
            raise DataError(f"task {name!r} has no labelled training sample.",
                            hint="give it labelled samples (a split may have left its few in "
                            "the test part: add more, or drop the task).")
        present |= mine
    if not present.all():
        rows = np.flatnonzero(~present)
        raise DataError(f"{len(rows)} samples carry no label for any task (rows "
                        f"{rows[:5].tolist()}{' ...' if len(rows) > 5 else ''}).",
                        hint="drop them, or give each a label for at least one task.")
    return out
