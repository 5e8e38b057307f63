"""``MultiTaskGrafter``: one backbone, N named heads, one forward pass for every task.

    MultiTaskGrafter(backbone="minilm_l6", tasks={"sentiment": "classification",
                                                  "rating": "regression"})
        .fit(texts, {"sentiment": labels, "rating": ratings}).predict(new_texts)
    # -> {"sentiment": array([...]), "rating": array([...])}

The model is a :class:`~graftlab.train.model.GraftedModel` whose head is the ``multitask``
head (an optional shared hidden layer, then one head per task, outputs side by side), built,
routed (cached features for ``head_only``, a frozen prefix's cached output for ``last_k``),
trained by the one trainer and saved exactly as a Grafter's. The training method is
:class:`~graftlab.methods.multitask.MultiTask`: per-task losses, masked per sample (a sample
may carry labels for some tasks only: None or NaN), combined by ``weighting`` (``equal``,
``uncertainty``, ``pcgrad``). With a ``tokens`` task (NER, :mod:`.tokens`) the head reads the
layer's token outputs (cached for ``head_only`` and ``last_k``) and the model outputs
``{task: tensor}``; ``predict`` gives that task a list of tags per text, still from one pass.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.features.extract import as_domain
from graftlab.grafter import Grafter
from graftlab.methods.multitask import WEIGHTINGS, MultiTask, TaskLoss
from graftlab.multitask.tasks import TaskType, as_column, check_labels, tasks_from
from graftlab.multitask.tokens import as_texts, word_positions
from graftlab.saving import load_grafter, save_grafter
from graftlab.train.build import backbone_modality, build_model, make_plan, strategy_from
from graftlab.train.callbacks import Callback
from graftlab.train.fit import fit_method
from graftlab.train.model import GraftedModel
from graftlab.train.routes import INPUTS, choose_route
from graftlab.train.solve import holdout


class TaskSet:
    """The fitted tasks, in output order: what a saved model remembers about them."""

    def __init__(self, tasks: dict[str, TaskType]) -> None:
        self.tasks = tasks

    @property
    def num_outputs(self) -> int:
        return sum(t.num_outputs for t in self.tasks.values())

    @property
    def per_token(self) -> bool:
        """Whether a task tags tokens: the model then outputs ``{task: tensor}``."""
        return any(t.per_token for t in self.tasks.values())

    def columns(self) -> dict[str, tuple[int, int]]:
        """Each task's output columns ``[start, stop)`` in the model's one output tensor; with
        a token task each task has its own tensor (the last axis), its columns from 0."""
        out, start = {}, 0
        for name, task in self.tasks.items():
            start = 0 if self.per_token else start
            out[name] = (start, start + task.num_outputs)
            start += task.num_outputs
        return out

    def head_options(self, shared: int | None, dropout: float, pooling: str | None = None
                     ) -> dict:
        return {"tasks": [{"name": n, "outputs": t.num_outputs, "head": t.head,
                           "head_options": t.head_options} for n, t in self.tasks.items()],
                "shared": shared, "dropout": dropout,
                **({"pooling": pooling or "mean"} if self.per_token else {})}

    def config(self) -> dict:
        return {"tasks_fitted": [t.config() for t in self.tasks.values()]}

    @classmethod
    def from_config(cls, config: dict) -> TaskSet:
        return cls(tasks_from([dict(t) for t in config["tasks_fitted"]]))


class MultiTaskGrafter(BaseEstimator):
    """Fine-tune one ``backbone`` for several ``tasks`` at once.

    ``tasks``: ``{name: type or spec}`` (or a list of specs with ``name``); a spec is a dict
    with ``type`` (``classification``, ``regression``, ``tokens``: one tag per word, see
    :mod:`.tokens`), ``head`` (a pooled head: ``linear``, ``mlp``; a token task's ``token``),
    ``head_options`` and ``missing`` (a value that marks a missing label, besides
    None and NaN). ``shared``: the width of a hidden layer all task heads read (what the
    weighting acts on with ``head_only``; None: none). ``weighting``: ``equal``,
    ``uncertainty`` or ``pcgrad``. Strategies as for :class:`~graftlab.grafter.Grafter`
    except ``linear_probe`` (a solved head is one task's); ``head_only`` trains on cached
    pooled features, ``last_k`` from a frozen prefix's cached output, ``lora`` / ``full`` on
    the inputs.
    """

    def __init__(self, *, tasks: Any = None, backbone: str = "minilm_l6",
                 strategy: str = "head_only", weighting: str = "equal",
                 shared: int | None = None, dropout: float = 0.1, layer: str | None = None,
                 pooling: str | None = None, epochs: int = 5, batch_size: int = 32,
                 lr: float = 1e-3, lr_backbone: float | None = None, weight_decay: float = 0.01,
                 k: int = 2, lr_decay: float = 0.7, lora_r: int = 8, lora_alpha: int = 16,
                 strategy_options: dict | None = None, early_stopping: int | None = None,
                 validation_fraction: float = 0.0, seed: int = 0,
                 backbone_options: dict | None = None, checkpoint_dir: str | None = None,
                 cache_activations: bool | None = None, pretrained: bool = True,
                 freeze_bn_stats: bool | None = None, group_by_length: bool = True,
                 callbacks: list[Callback] | None = None) -> None:
        self.tasks, self.backbone, self.strategy, self.weighting = (tasks, backbone, strategy,
                                                                    weighting)
        self.shared, self.dropout, self.layer, self.pooling = shared, dropout, layer, pooling
        self.epochs, self.batch_size, self.lr, self.lr_backbone = (epochs, batch_size, lr,
                                                                   lr_backbone)
        self.weight_decay, self.k, self.lr_decay = weight_decay, k, lr_decay
        self.lora_r, self.lora_alpha, self.strategy_options = lora_r, lora_alpha, strategy_options
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.seed, self.backbone_options, self.checkpoint_dir = seed, backbone_options, \
            checkpoint_dir
        self.cache_activations, self.pretrained = cache_activations, pretrained
        self.freeze_bn_stats, self.group_by_length = freeze_bn_stats, group_by_length
        self.callbacks = callbacks

    # the Grafter's machinery, which reads only options both estimators have
    _settings = Grafter._settings
    _run = Grafter._run
    prediction_route = Grafter.prediction_route
    _targets = TaskSet

    # ------------------------------------------------------------------ building
    def build_for(self, taskset: TaskSet) -> GraftedModel:
        """The initial model (seeded) for fitted tasks: backbone + the multi-task head."""
        return build_model(self.backbone, head="multitask",
                           head_options=taskset.head_options(self.shared, self.dropout,
                                                             self.pooling),
                           layer=self.layer, pooling=self.pooling,
                           num_outputs=taskset.num_outputs, pretrained=self.pretrained,
                           seed=self.seed, backbone_options=self.backbone_options)

    def _check_options(self) -> dict[str, TaskType]:
        """Tasks, weighting and strategy, refused before any feature is extracted."""
        tasks = tasks_from(self.tasks)
        WEIGHTINGS.get(self.weighting)
        strategy = strategy_from(self.strategy, self.get_params(), self.strategy_options)
        if strategy.solved:
            raise ConfigError(f"strategy {self.strategy!r} solves one linear head in closed "
                              "form; a multi-task model trains its heads together.",
                              hint="use strategy='head_only' (cached features, as fast).")
        return tasks

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: dict[str, Any], *, progress=None) -> MultiTaskGrafter:
        """Train on inputs ``X`` (texts, images or a Domain) and ``y = {task: labels}``, one
        label per input, None (or NaN) where a sample has none for that task; every sample
        needs a label for at least one task."""
        t0 = time.perf_counter()
        tasks = self._check_options()
        domain = as_domain(as_texts(X), backbone_modality(self.backbone, self.backbone_options))
        columns = check_labels(tasks, y, len(domain))
        fitted_labels = {name: _fit_task(name, task, columns[name])
                         for name, task in tasks.items()}
        taskset = TaskSet(tasks)
        fraction = self.validation_fraction or (0.1 if self.early_stopping else 0.0)
        train_idx, val_idx = holdout(np.zeros(len(domain)), fraction, self.seed, stratify=False)
        model = self.build_for(taskset)
        texts = list(domain.inputs) if taskset.per_token else None
        encoded = {name: task.tensor(fitted_labels[name], texts, model.backbone)
                   for name, task in tasks.items()}  # token tasks: labels at first sub-tokens
        strategy = strategy_from(self.strategy, self.get_params(), self.strategy_options)
        plan = make_plan(model, strategy, lr_head=self.lr, lr_backbone=self.lr_backbone,
                         weight_decay=self.weight_decay)
        route = choose_route(model, strategy, pretrained=self.pretrained,
                             cache=self.cache_activations)
        pick, net = route.picker(model, domain), route.net(model)
        method = self._method(net, model, taskset)
        extra = list(method.weighting.parameters())
        if extra:  # uncertainty's log-variances train with the heads
            plan = dataclasses.replace(plan, param_groups=plan.param_groups + [
                {"params": extra, "lr": self.lr, "name": "weighting", "weight_decay": 0.0}])
        settings = self._settings(progress, domain, *encoded.values(), train_idx, val_idx)

        def collate(which: np.ndarray):
            return lambda pos: {"inputs": pick(which[pos]),
                                "targets": {n: v[which[pos]] for n, v in encoded.items()}}

        fitted = fit_method(method, model, plan, collate, train_idx, val_idx, settings,
                            lengths=pick.lengths)
        self.tasks_, self.taskset_, self.model_ = tasks, taskset, model.eval()
        self.history_ = [_per_task(h, tasks) for h in fitted.history]
        self.trainable_params_, self.total_params_ = (fitted.trainable_params,
                                                      fitted.total_params)
        self.record_ = {**fitted.record, **route.record(model, pick(train_idx[:1])),
                        "fit_seconds": time.perf_counter() - t0,
                        "weighting": self.weighting}
        if self.weighting == "uncertainty":
            s = method.weighting.log_vars.detach().tolist()
            self.record_["log_variances"] = dict(zip(tasks, s, strict=True))
        return self

    def _method(self, net: torch.nn.Module, model: GraftedModel, taskset: TaskSet
                ) -> MultiTask:
        own = {id(p) for p in model.head.task_parameters()}

        def shared() -> list[torch.nn.Parameter]:  # what every task moves: PCGrad's ground
            return [p for p in net.parameters() if p.requires_grad and id(p) not in own]

        losses = [TaskLoss(name, start, stop, task.loss, task.present,
                           (task.metric, task.metric_sum))
                  for (name, (start, stop)), task in zip(taskset.columns().items(),
                                                         taskset.tasks.values(), strict=True)]
        return MultiTask(net, losses, WEIGHTINGS.create(self.weighting, list(taskset.tasks)),
                         shared)

    # ------------------------------------------------------------------ predict
    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this MultiTaskGrafter is not fitted yet; call "
                                 "fit(X, {task: labels}) first.")

    def decision_function(self, X: Any, batch_size: int = 64) -> dict[str, Any]:
        """Every task's raw outputs (logits; a standardised value), from one forward pass; a
        token task's as one (tokens, outputs) array per input (its padding cut)."""
        self._check()
        if self.taskset_.per_token:
            return self._run_per_task(as_texts(X), batch_size)
        out = self._run(X, batch_size, features=False)
        return {name: out[:, a:b] for name, (a, b) in self.taskset_.columns().items()}

    @torch.no_grad()
    def _run_per_task(self, X: Any, batch_size: int) -> dict[str, Any]:
        """The dict-output model batch by batch (one forward pass each), on the route
        :meth:`~graftlab.grafter.Grafter._run` takes."""
        m = self.model_.eval()
        domain = as_domain(X, m.backbone.modality)
        route = self.prediction_route() if domain.origin is not None else INPUTS
        pick, net = route.picker(m, domain), route.net(m)
        out: dict[str, list] = {name: [] for name in self.tasks_}
        for idx in np.array_split(np.arange(len(domain)), max(1, -(-len(domain) // batch_size))):
            inputs = pick(idx)
            got, lengths = net(inputs), inputs["attention_mask"].sum(1).tolist()
            for name, task in self.tasks_.items():
                values = got[name].float().numpy()
                out[name] += [v[:n] for v, n in zip(values, lengths, strict=True)] \
                    if task.per_token else [values]
        return {name: v if self.tasks_[name].per_token else np.concatenate(v)
                for name, v in out.items()}

    def predict(self, X: Any, batch_size: int = 64) -> dict[str, Any]:
        """``{task: predictions}`` (class labels; values on the original scale; a token task's
        tags, a list per input, one per word of its text split on single spaces), one pass.
        Inputs may be texts, a Domain, word lists or TaggedSentences."""
        X = as_texts(X)
        raw = self.decision_function(X, batch_size)
        if not self.taskset_.per_token:
            return {name: self.tasks_[name].decode(out) for name, out in raw.items()}
        positions = word_positions(as_domain(X, "text").inputs, self.model_.backbone)
        return {name: self.tasks_[name].decode(out, positions) if self.tasks_[name].per_token
                else self.tasks_[name].decode(out) for name, out in raw.items()}

    def predict_proba(self, X: Any, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities of each classification task."""
        raw = self.decision_function(X, batch_size)
        return {name: torch.softmax(torch.from_numpy(out), -1).numpy()
                for name, out in raw.items() if self.tasks_[name].name == "classification"}

    def score(self, X: Any, y: dict[str, Any]) -> dict[str, dict[str, float]]:
        """Per task, its metrics over the samples that carry its label (classification:
        accuracy, macro F1; regression: RMSE, Pearson r; tokens: entity F1, precision,
        recall) and ``n``, their number."""
        pred = self.predict(X)
        out = {}
        for name, labels in y.items():
            if name not in self.tasks_:
                raise ConfigError(f"no task {name!r}; the tasks are {', '.join(self.tasks_)}.")
            labels = as_column(labels)
            keep = self.tasks_[name].present_in(labels)
            got = as_column(pred[name]) if self.tasks_[name].per_token else pred[name]
            scores = self.tasks_[name].score(got[keep], labels[keep]) if keep.any() \
                else {}  # no sample carries this task's label: nothing to score
            out[name] = {**scores, "n": int(keep.sum())}
        return out

    def output_layout(self) -> list[dict]:
        """What the model's one output tensor holds: per task its columns and decoding (for
        an exporter's contract); with a token task, each task's ``output`` (its key in the
        output dict) and whether it has one row per token."""
        self._check()
        cols, per_token = self.taskset_.columns(), self.taskset_.per_token
        return [{**t.config(), "columns": list(cols[n]),
                 **({"output": n, "per_token": t.per_token} if per_token else {})}
                for n, t in self.tasks_.items()]

    # ------------------------------------------------------------------ save / load
    def save(self, folder: str | Path) -> Path:
        """``model.safetensors`` + ``config.json`` (the tasks, their classes or scales, the
        output columns) + a checksum manifest, as a Grafter saves."""
        self._check()
        return save_grafter(self, folder, {**self.taskset_.config(),
                                           "outputs": self.output_layout()})

    @classmethod
    def load(cls, folder: str | Path) -> MultiTaskGrafter:
        return load_grafter(cls, folder)

    def restore(self, model: GraftedModel, config: dict) -> None:
        self.taskset_ = TaskSet.from_config(config)
        self.tasks_ = self.taskset_.tasks
        self.model_ = model.eval()
        self.history_ = config.get("history", [])
        self.trainable_params_ = config.get("trainable_params")


def _per_task(history: dict, tasks: dict) -> dict:
    """Validation sums over labelled rows, as means over each task's labelled rows."""
    out = dict(history)
    for name in tasks:
        labelled = out.pop(f"val_{name}_labelled", None)
        if not labelled:
            continue
        for key in (f"val_{name}_loss", f"val_{name}_{tasks[name].metric}"):
            out[key] = out[key] / labelled
    return out


def _fit_task(name: str, task: Any, column: np.ndarray) -> np.ndarray:
    """The task's encoded training labels; a label problem (one class left by the split, say)
    names the task and what may have caused it."""
    try:
        return task.fit(column)
    except DataError as exc:
        raise DataError(f"task {name!r}: {exc.message}",
                        hint="the training part is what the split left of the task's labels: "
                        "its data may be too small or too uneven for the split (add samples, "
                        "change train.seed or test_size, or drop the task)") from None
