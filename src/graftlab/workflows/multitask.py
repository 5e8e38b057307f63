"""``graftlab multitask``: one backbone, several tasks, each labelled by its own data file.

The tasks' data sets are joined by input (:func:`~graftlab.multitask.join_tasks`: a text in
two files is one sample with both labels), split at random into training and test parts,
and one :class:`~graftlab.multitask.MultiTaskGrafter` trains on the training part. The run
folder holds ``results.json`` (per task: its test metrics over the test samples that carry
its label), ``summary.md`` (the per-task table) and ``model/`` (the saved model).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from graftlab import _atomic
from graftlab.config import MultiTaskConfig
from graftlab.errors import DataError
from graftlab.multitask import MultiTaskGrafter, join_tasks
from graftlab.multitask.tasks import tasks_from
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
        regression = t.type == "regression"
        domain = load_with_columns(t.data, text_column=t.text_column,
                                   label_column=None if regression else t.label_column or "label",
                                   target_column=t.target_column if regression else None,
                                   labelled=None if regression else True)
        if regression and domain.targets is None:
            raise DataError(f"task {t.name!r}: data {t.data!r} has no numeric targets.",
                            hint="give target_column (a CSV/JSONL numeric column), or a "
                            "regression data set such as vader_ratings:tweets.")
        parts[t.name] = (domain, domain.targets if regression else None)
    return join_tasks(parts)


def run_multitask(config: MultiTaskConfig, *, progress=None) -> dict:
    """Check everything, then fit, score per task and write the run folder."""
    m, t = config.model, config.train
    specs = task_specs(config)
    check_backbone(m.backbone, image_size=m.image_size, max_length=m.max_length)
    check_out_folder(config.out, config.runs_dir, config.overwrite, "multitask")
    check_cache()
    inputs, labels = load_tasks(config)
    n = len(inputs)
    order = np.random.default_rng(t.seed).permutation(n)
    cut = n - max(1, int(round(n * t.test_size)))
    train, test = np.sort(order[:cut]), np.sort(order[cut:])
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None}
    est = MultiTaskGrafter(tasks=specs, backbone=m.backbone, strategy=m.strategy, k=m.k,
                           shared=m.shared, weighting=m.weighting, epochs=t.epochs,
                           batch_size=t.batch_size, lr=t.lr, lr_backbone=t.lr_backbone,
                           seed=t.seed, backbone_options=options or None)

    def pick(idx: np.ndarray) -> tuple[Any, dict]:
        x = inputs[idx] if isinstance(inputs, np.ndarray) else [inputs[i] for i in idx]
        return x, {task: [v[i] for i in idx] for task, v in labels.items()}

    with run_folder(config.out, config.runs_dir, config.overwrite, "multitask") as folder:
        t0 = time.perf_counter()
        x_train, y_train = pick(train)
        est.fit(x_train, y_train, progress=progress)
        scores = est.score(*pick(test))
        est.save(folder / "model")
        results = {"format": "graftlab.multitask/1", "status": "complete",
                   "config": config.model_dump(), "samples": {"train": len(train),
                                                              "test": len(test)},
                   "labelled": {task: int(sum(v is not None for v in col))
                                for task, col in labels.items()},
                   "tasks": scores, "trainable_params": est.trainable_params_,
                   "total_params": est.total_params_, "history": est.history_,
                   "seconds_total": time.perf_counter() - t0, "environment": environment(),
                   "model": {"folder": "model",
                             "load_with": "graftlab.multitask.MultiTaskGrafter.load"},
                   "run_folder": str(folder)}
        _atomic.write_json(folder / "results.json", results)
        _atomic.write_text(folder / "summary.md", summary(results))
    return results


def summary(results: dict) -> str:
    """The run's per-task table in Markdown."""
    lines = ["# graftlab multitask", "",
             f"{results['samples']['train']:,} training and {results['samples']['test']:,} "
             f"test samples; one model, {len(results['tasks'])} tasks, one forward pass.", "",
             "| task | test samples | metric | value |", "|---|---|---|---|"]
    for task, scores in results["tasks"].items():
        for metric, value in scores.items():
            if metric != "n":
                lines.append(f"| {task} | {scores['n']:,} | {metric} | {value:.4f} |")
    return "\n".join(lines) + "\n"
