"""``graftlab multitask``: one backbone, several tasks, each labelled by its own data file.

The tasks' data sets are joined by input (:func:`~graftlab.multitask.join_tasks`: a text in
two files is one sample with both labels) and split at random into training and test parts
(one split per seed). One :class:`~graftlab.multitask.MultiTaskGrafter` trains per strategy
and weighting (``model.strategy``, e.g. ``head_only,last_k``; ``model.weighting``, e.g.
``equal,pcgrad``) and, with ``train.single_task``, one single-task model per task and strategy
beside them (the same network with one head, trained on the samples that carry its label): the
comparison; ``graftlab compare`` given this config runs it too. Every model is scored per task
on the test samples that carry that task's label. The run folder holds ``results.json``
(written after every run), ``summary.md`` (the per-task table, mean ± std over seeds),
``report.html`` with ``figures/tasks.svg`` (each task's score per model) and ``model/`` (the
first model trained: the first strategy's first weighting, seed ``train.seed``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from graftlab import _atomic
from graftlab.config import MultiTaskConfig
from graftlab.data import load_tagged
from graftlab.data.tagged import TaggedSentences
from graftlab.errors import ConfigError, DataError, named_once
from graftlab.methods.multitask import WEIGHTINGS
from graftlab.multitask import MultiTaskGrafter, join_tasks
from graftlab.multitask.tasks import tasks_from
from graftlab.report.multitask import write_report
from graftlab.report.run import environment
from graftlab.workflows.common import (check_backbone, check_cache, check_out_folder,
                                       load_with_columns, run_folder)


def task_specs(config: MultiTaskConfig) -> list[dict]:
    """The estimator's task specs (type, head) from the config, names checked."""
    specs = [{"name": t.name, "type": t.type, **({"head": t.head} if t.head else {}),
              **({"head_options": t.head_options} if t.head_options else {})}
             for t in config.tasks]
    tasks_from(specs)  # a name used twice, an unknown type, a head that does not fit
    return specs


def load_tasks(config: MultiTaskConfig) -> tuple[Any, dict[str, list]]:
    """Every task's data, joined by input: ``(inputs, {task: labels, None where missing})``."""
    parts = {}
    for t in config.tasks:
        if t.type == "tokens":  # tagged sentences: a CoNLL-style file or a bundled tagged set
            parts[t.name] = (load_tagged(t.data), None)
            continue
        regression = t.type == "regression"
        try:  # a named target column must exist: the table loader names the ones there are
            domain = load_with_columns(
                t.data, text_column=t.text_column,
                label_column=None if regression else t.label_column or "label",
                target_column=t.target_column if regression else None,
                labelled=None if regression and not t.target_column else True)
        except DataError as exc:
            raise DataError(f"task {t.name!r}: {exc.message}", hint=exc.hint) from None
        if regression and domain.targets is None:
            raise DataError(f"task {t.name!r}: data {t.data!r} has no numeric targets.",
                            hint="give target_column (a CSV/JSONL numeric column), or a "
                            "regression data set such as vader_ratings:tweets.")
        if not regression and not domain.labelled:
            raise DataError(f"task {t.name!r} (classification): data {t.data!r} has no class "
                            "labels" + ("; it holds numeric targets" if domain.targets is not None
                                        else "") + ".",
                            hint="make it a regression task (type: regression)"
                            if domain.targets is not None else "name its label column "
                            "(label_column: in the task).")
        parts[t.name] = (domain, domain.targets if regression else None)
    kinds = {name: "text" if isinstance(got, TaggedSentences) else got.modality
             for name, (got, _) in parts.items()}
    if len(set(kinds.values())) > 1:
        raise DataError("the tasks hold different kinds of input ("
                        + ", ".join(f"{n}: {k}" for n, k in kinds.items()) + "); one "
                        "multi-task model reads one kind through one backbone.",
                        hint="keep the tasks of one kind, and train another model for the "
                        "others.")
    return join_tasks(parts, conflicts=config.conflicts)


def candidates(config: MultiTaskConfig, specs: list[dict]) -> list[tuple[str, list, str, str]]:
    """(name, task specs, weighting, strategy) of every model to train: per strategy, one
    multi-task model per weighting, then (``train.single_task``) one single-task model per
    task. Names carry the strategy where several are compared."""
    strategies = config.model.strategy
    out = []
    for strategy in strategies:
        tag = f" ({strategy})" if len(strategies) > 1 else ""
        out += [(f"multi-task, {w}{tag}", specs, w, strategy) for w in config.model.weighting]
        if config.train.single_task:
            out += [(f"single-task: {s['name']}{tag}", [s], "equal", strategy) for s in specs]
    return out


def _rows(inputs: Any, labels: dict, idx: np.ndarray, tasks: list[dict]) -> tuple[Any, dict]:
    """The samples at ``idx`` that carry a label for one of ``tasks``, with those labels."""
    names = [t["name"] for t in tasks]
    idx = [i for i in idx if any(labels[n][i] is not None for n in names)]
    x = inputs[idx] if isinstance(inputs, np.ndarray) else [inputs[i] for i in idx]
    return x, {n: [labels[n][i] for i in idx] for n in names}


def run_multitask(config: MultiTaskConfig, *, progress=None) -> dict:
    """Check everything, then fit and score every candidate on every seed; write the run
    folder (the first weighting's model of seed ``train.seed`` is saved)."""
    m, t = config.model, config.train
    specs = task_specs(config)
    for weighting in m.weighting:
        WEIGHTINGS.get(weighting)
    check_strategies(m.strategy)
    check_backbone(m.backbone, image_size=m.image_size, max_length=m.max_length)
    check_out_folder(config.out, config.runs_dir, config.overwrite, "multitask")
    check_cache()
    inputs, labels = load_tasks(config)
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None} or None
    todo = [(seed, c) for seed in range(t.seed, t.seed + t.seeds)
            for c in candidates(config, specs)]
    with run_folder(config.out, config.runs_dir, config.overwrite, "multitask") as folder:
        t0, runs = time.perf_counter(), []
        results = {"format": "graftlab.multitask/1", "status": "running",
                   "config": config.model_dump(), "samples": len(inputs),
                   "labelled": {task: int(sum(v is not None for v in col))
                                for task, col in labels.items()},
                   "runs": runs, "environment": environment(), "run_folder": str(folder)}
        try:
            for step, (seed, (name, tasks, weighting, strategy)) in enumerate(todo):
                if progress:
                    progress(f"{name} seed {seed}", step, len(todo))
                train, test = split(len(inputs), t.test_size, seed)
                est = MultiTaskGrafter(tasks=tasks, backbone=m.backbone, strategy=strategy,
                                       k=m.k, shared=m.shared, weighting=weighting,
                                       epochs=t.epochs, batch_size=t.batch_size, lr=t.lr,
                                       lr_backbone=t.lr_backbone, seed=seed,
                                       backbone_options=options)
                s = time.perf_counter()
                est.fit(*_rows(inputs, labels, train, tasks))
                runs.append({"model": name, "seed": seed, "weighting": weighting,
                             "strategy": strategy,
                             "tasks": est.score(*_rows(inputs, labels, test, tasks)),
                             "fit_seconds": time.perf_counter() - s,
                             "trainable_params": est.trainable_params_,
                             "total_params": est.total_params_})
                if step == 0:
                    est.save(folder / "model")
                    results["model"] = {"folder": "model", "name": name,
                                        "load_with": "graftlab.multitask.MultiTaskGrafter.load"}
                _atomic.write_json(folder / "results.json", results)  # each run kept at once
        except KeyboardInterrupt:  # the finished runs keep their report
            if runs:
                _close(folder, results, "interrupted", t0)
            raise
        _close(folder, results, "complete", t0)
    return results


def _close(folder, results: dict, status: str, t0: float) -> None:
    results.update(status=status, summary=summarise(results["runs"]),
                   seconds_total=time.perf_counter() - t0)
    _atomic.write_json(folder / "results.json", results)
    write_report(folder, results)


def check_strategies(strategies: list[str]) -> None:
    """Each strategy named once and registered (the estimator refuses one it cannot train,
    e.g. linear_probe, with its own message)."""
    from graftlab.train.strategies import STRATEGIES

    if not strategies:
        raise ConfigError("model.strategy names no strategy.",
                          hint="give one or several, e.g. model.strategy=head_only,last_k.")
    named_once(strategies, "model.strategy")
    for name in strategies:
        if STRATEGIES.get(name).solved:
            raise ConfigError(f"strategy {name!r} solves one linear head in closed form; a "
                              "multi-task model trains its heads together.",
                              hint="use head_only (cached features, as fast).")


def split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random training and test positions (the same for every model of a seed)."""
    order = np.random.default_rng(seed).permutation(n)
    cut = n - max(1, int(round(n * test_size)))
    return np.sort(order[:cut]), np.sort(order[cut:])


def summarise(runs: list[dict]) -> list[dict]:
    """Per model: each task metric's mean and std over seeds, test samples, parameters."""
    out = []
    for name in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == name]
        metrics: dict[str, list[float]] = {}  # over the seeds whose test split scored it
        for r in mine:
            for task, scores in r["tasks"].items():
                for metric, value in scores.items():
                    if metric != "n":
                        metrics.setdefault(f"{task}.{metric}", []).append(value)
        out.append({"model": name, "seeds": len(mine), "total_params": mine[0]["total_params"],
                    "metrics": {k: {"mean": float(np.mean(v)), "std": float(np.std(v)),
                                    "seeds": len(v)} for k, v in metrics.items()}})
    return out
