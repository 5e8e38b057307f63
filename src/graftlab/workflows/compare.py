"""``graftlab compare``: several ways of transferring one backbone, on the same splits, in one
report — and the same network trained from random weights, so negative transfer shows.

Every seed is one stratified train/test split that every strategy sees. Strategies that keep
the lower network frozen reuse the feature cache: the whole data set is extracted once (per
layer) and every split, strategy and seed reads from it. Results are written after every run,
so Ctrl-C (or a crash) leaves a report of what finished.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, mean_absolute_error,
                             r2_score, recall_score)
from sklearn.model_selection import train_test_split

from graftlab import _atomic
from graftlab.evaluate.summary import BASELINE, METRICS, summarise, verdict
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError, named_once, unknown_name
from graftlab.workflows.common import (align_test, check_backbone, check_modality,
                                       check_out_folder, limit_domain, load_with_columns,
                                       prepare_run_folder, run_folder)
from graftlab.report.memory import PeakMemory
from graftlab.report.run import environment
from graftlab.track import Tracker, check_tracker, open_tracker
from graftlab.train.strategies import STRATEGIES

__all__ = ["CompareInterrupted", "check_compare", "check_strategies", "limit_domain",
           "prepare_run_folder", "run_compare"]

DEFAULT_STRATEGIES = ("linear_probe", "head_only", "last_k", "full", "lora")
CHOICES = (*STRATEGIES, BASELINE)
FORMAT = "graftlab.compare/1"
Progress = Callable[[str, int, int], None]


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C during a comparison, raised after the partial report was written."""

    def __init__(self, results: dict) -> None:
        super().__init__(f"interrupted; partial report in {results['run_folder']}")
        self.results = results


def check_strategies(strategies: list[str] | None) -> list[str]:
    """The strategies to run: None means the defaults; an empty list means none (only the
    from-scratch baseline, when it is on)."""
    chosen = list(DEFAULT_STRATEGIES if strategies is None else strategies)
    for name in chosen:
        if name not in CHOICES:
            raise unknown_name("strategy", name, CHOICES,
                               hint="scratch is the from-scratch baseline; the others are "
                               "described in graftlab.train.strategies.")
    named_once(chosen, "strategies")
    return chosen


def minimum_per_class(test_size: float) -> int:
    """Samples per class so that both sides of a stratified split hold at least two."""
    return max(4, math.ceil(2 / min(test_size, 1 - test_size)))


def _check_size(domain: Domain, test_size: float, seeds: int, task: str,
                explicit_test: bool = False) -> None:
    if not 0 < test_size < 1:
        raise ConfigError(f"--test-size must be a number > 0 and < 1, got {test_size}.")
    if seeds < 1:
        raise ConfigError(f"--seeds must be an integer >= 1, got {seeds}.")
    if explicit_test:
        if task == "classification" and (np.bincount(domain.labels) > 0).sum() < 2:
            raise DataError(f"data {domain.name!r} holds a single class; a comparison needs "
                            "two or more.")
        return
    need = minimum_per_class(test_size)
    if task == "regression":
        if len(domain) < 2 * need:
            raise DataError(
                f"data {domain.name!r} has {len(domain)} samples; a regression comparison on "
                f"{1 - test_size:.0%}/{test_size:.0%} splits needs at least {2 * need}.",
                hint="add samples or raise --test-size.")
        return
    counts = np.bincount(domain.labels, minlength=domain.num_classes or None)
    small = {domain.classes[i] if domain.classes else i: int(c)
             for i, c in enumerate(counts) if 0 < c < need}
    if small or (counts > 0).sum() < 2:
        raise DataError(
            f"data {domain.name!r} is too small to compare strategies on {seeds} seed(s) of "
            f"stratified {1 - test_size:.0%}/{test_size:.0%} train/test splits: each class needs "
            f"at least {need} samples (so both sides of every split hold two), and there must "
            f"be two classes; these classes have fewer: {small or dict(enumerate(counts))}.",
            hint=f"add samples, drop those classes, or raise --test-size (the minimum is "
            f"{need} per class, {need * max(2, len(counts))} in all).")


def _task(domain: Domain, task: str) -> str:
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"task must be auto, classification or regression, got {task!r}.")
    if task == "auto":
        task = "classification" if domain.labelled else "regression"
    if task == "classification" and not domain.labelled:
        raise DataError(f"data {domain.name!r} has no labels; compare scores strategies on "
                        "labelled data.", hint="point --label-column at the labels.")
    if task == "regression" and domain.targets is None:
        raise DataError(f"data {domain.name!r} has no numeric targets to regress on.",
                        hint="point --target-column at a numeric column, or compare as a "
                        "classification task.")
    return task


def _stratify(domain: Domain, task: str) -> np.ndarray | None:
    return domain.labels if task == "classification" else None


def _grafter(strategy: str, seed: int, backbone: str, options: dict, train_kw: dict,
             task: str):
    from graftlab.grafter import Grafter
    from graftlab.regressor import GrafterRegressor

    cls = Grafter if task == "classification" else GrafterRegressor
    kw = dict(train_kw)
    if strategy == BASELINE:  # the same network from random weights, everything trained
        kw.setdefault("lr_backbone", kw.get("lr", 1e-3))
        return cls(backbone=backbone, strategy="full", pretrained=False, seed=seed,
                       backbone_options=options or None, **kw)
    return cls(backbone=backbone, strategy=strategy, seed=seed,
               backbone_options=options or None, **kw)


def _score(y: np.ndarray, pred: np.ndarray, n_classes: int) -> dict:
    if not n_classes:
        return {"r2": float(r2_score(y, pred)), "mae": float(mean_absolute_error(y, pred))}
    labels = np.arange(n_classes)
    tested = np.isin(labels, y)  # a class with no test sample has no recall to report
    recall = recall_score(y, pred, average=None, labels=labels, zero_division=0)
    return {"accuracy": float(accuracy_score(y, pred)),
            # over the classes tested or predicted: one neither tested nor predicted is no 0
            "macro_f1": float(f1_score(y, pred, average="macro", labels=np.union1d(y, pred),
                                       zero_division=0)),
            "per_class_recall": [float(r) if t else None for r, t in zip(recall, tested,
                                                                         strict=True)],
            "confusion": confusion_matrix(y, pred, labels=labels).tolist()}


def check_compare(*, strategies: list[str] | None, scratch: bool = True, epochs: int = 5,
                  batch_size: int = 32, backbone: str = "efficientnet_lite0",
                  image_size: int | None = None, max_length: int | None = None,
                  out: str | Path | None = None, runs_dir: str | Path = "runs",
                  overwrite: bool = False) -> tuple[list[str], str | None]:
    """What :func:`run_compare` checks before it reads any data: the strategies (with the
    from-scratch baseline when ``scratch``), the epochs and batch size, the backbone and its
    options, the output folder. Returns the strategies to run and the backbone's modality."""
    chosen = check_strategies(strategies)
    if scratch and BASELINE not in chosen:
        chosen.append(BASELINE)
    if not chosen:
        raise ConfigError("nothing to compare: no strategies and no from-scratch baseline.",
                          hint=f"name strategies ({', '.join(CHOICES)}) or keep --scratch.")
    for flag, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if value < 1:
            raise ConfigError(f"{flag} must be an integer >= 1, got {value}.")
    modality = check_backbone(backbone, image_size=image_size, max_length=max_length)
    check_out_folder(out, runs_dir, overwrite, "compare")
    return chosen, modality


def _check_limit(domain: Domain, limit: int | None, task: str, test_size: float, seeds: int,
                 explicit_test: bool) -> None:
    """Refuse a ``limit`` too small to split every seed (stratified) into train and test."""
    if limit and not explicit_test and limit < len(domain):
        n_classes = len(np.unique(domain.labels)) if task == "classification" else 2
        need = minimum_per_class(test_size) * n_classes
        if limit < need:
            raise ConfigError(f"--limit {limit} is too few for {seeds} seed(s) of "
                              f"{1 - test_size:.0%}/{test_size:.0%} splits of {n_classes} "
                              f"{'classes' if task == 'classification' else 'halves'}: "
                              f"each needs {need // n_classes} samples.",
                              hint=f"raise --limit to {need} or more (or drop it).")


def run_compare(data: Domain | str, *, backbone: str = "efficientnet_lite0",
                strategies: list[str] | None = None, seeds: int = 3, test_size: float = 0.2,
                epochs: int = 5, batch_size: int = 32, lr: float | None = None,
                lr_backbone: float | None = None, image_size: int | None = None,
                max_length: int | None = None, limit: int | None = None,
                test: Domain | None = None, scratch: bool = True, task: str = "auto",
                text_column: str = "text", label_column: str | None = "label",
                target_column: str | None = None,
                runs_dir: str | Path = "runs", out: str | Path | None = None,
                overwrite: bool = False, feature_map: bool = True,
                progress: Progress | None = None, track: str | None = None) -> dict:
    """Run the comparison and write ``results.json``, ``report.html`` and ``report.md``.

    ``test``: an explicit held-out set; every seed then trains on all of the data and scores
    on it (``test_size`` unused). Returns the results (with ``run_folder``). Ctrl-C stops
    after writing the report of the runs that finished (``status: interrupted``), then raises
    :class:`CompareInterrupted` (a ``KeyboardInterrupt`` that carries the results). Any other
    error after the run folder exists marks it ``failed`` (or removes it if no run finished).
    """
    chosen, modality = check_compare(
        strategies=strategies, scratch=scratch, epochs=epochs, batch_size=batch_size,
        backbone=backbone, image_size=image_size, max_length=max_length, out=out,
        runs_dir=runs_dir, overwrite=overwrite)
    check_tracker(track)
    if isinstance(data, Domain):
        domain = data
    else:
        domain = load_with_columns(data, text_column=text_column, label_column=label_column,
                                   target_column=target_column)
    check_modality(domain, modality, backbone)
    task = _task(domain, task)
    if test is not None:
        test = align_test(domain, test)
    _check_limit(domain, limit, task, test_size, seeds, explicit_test=test is not None)
    domain = limit_domain(domain, limit, task)
    _check_size(domain, test_size, seeds, task, explicit_test=test is not None)
    classes = ([] if task == "regression" else
               domain.classes or [str(i) for i in range(int(domain.labels.max()) + 1)])
    options = {k: v for k, v in (("image_size", image_size), ("max_length", max_length))
               if v is not None}
    train_kw: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size}
    if lr is not None:
        train_kw["lr"] = lr
    if lr_backbone is not None:
        train_kw["lr_backbone"] = lr_backbone
    with run_folder(out, runs_dir, overwrite, "compare") as folder, \
            open_tracker(track, folder, run_name=folder.name, outputs=True) as tracker:
        return _compare(domain, test, folder, chosen, classes, task, backbone, options,
                        train_kw, seeds=seeds, test_size=test_size, limit=limit,
                        feature_map=feature_map, progress=progress, tracker=tracker)


def _compare(domain: Domain, test: Domain | None, folder: Path, chosen: list[str],
             classes: list[str], task: str, backbone: str, options: dict, train_kw: dict, *,
             seeds: int, test_size: float, limit: int | None, feature_map: bool,
             progress: Progress | None, tracker: Tracker) -> dict:
    config = {"data": domain.describe(), "backbone": backbone, "backbone_options": options,
              "strategies": chosen, "seeds": seeds, "test_size": test_size, "limit": limit,
              "test_data": test.describe() if test is not None else None, **train_kw}
    results: dict[str, Any] = {
        "format": FORMAT, "status": "running", "task": task, "config": config,
        "classes": classes, "environment": environment(), "runs": [],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tracker.log_params(config)
    _atomic.write_json(folder / "results.json", results)
    results["run_folder"] = str(folder)
    fitted: dict[str, Any] = {}  # seed 0's model per strategy: the map and the saved winner
    splits: dict[int, tuple[Domain, np.ndarray]] = {}  # seed -> the held-out set's rows
    total, t_start = seeds * len(chosen), time.perf_counter()
    try:
        results["extraction"] = _shared_features(
            [domain] if test is None else [domain, test], chosen, backbone, options, train_kw,
            task, max(len(classes), 1), progress)
        _atomic.write_json(folder / "results.json", results)
        for seed in range(seeds):
            if test is None:
                train_idx, test_idx = train_test_split(
                    np.arange(len(domain)), test_size=test_size, random_state=seed,
                    stratify=_stratify(domain, task))
                splits[seed] = (domain, test_idx)
                train, held = domain.subset(train_idx), domain.subset(test_idx)
            else:
                splits[seed] = (test, np.arange(len(test)))
                train, held = domain, test
            for strategy in chosen:
                done = len(results["runs"])
                if progress:
                    progress(f"[{done + 1}/{total}] {strategy} seed {seed}", done, total)
                with tracker.nested(f"{strategy} seed {seed}") as sub:  # a tracked run each
                    run = _one(strategy, seed, train, held, backbone, options,
                               {**train_kw, "callbacks": [sub.callback()]}, classes, task,
                               progress)
                    sub.log_metrics(run)
                grafter = run.pop("grafter")
                if seed == 0:
                    fitted[strategy] = grafter
                results["runs"].append(run)
                _atomic.write_json(folder / "results.json", results)
        results["status"] = "complete"
    except KeyboardInterrupt:
        if not results["runs"]:  # nothing finished: the folder goes, as with any failure
            raise
        results["status"] = "interrupted"
        _finish(results, folder, chosen, splits, fitted, backbone, options,
                feature_map=False, t_start=t_start)
        raise CompareInterrupted(results) from None
    _finish(results, folder, chosen, splits, fitted, backbone, options,
            feature_map=feature_map, t_start=t_start, progress=progress)
    return results


def _shared_features(domains: list[Domain], chosen: list[str], backbone: str, options: dict,
                     train_kw: dict, task: str, n_outputs: int,
                     progress: Progress | None) -> dict:
    """Extract, once and through the cache, what the strategies that read frozen outputs
    share (pooled features, a frozen prefix's activations), and time it: its own cost line,
    not charged to the first strategy that happens to read it."""
    t0, seen, readers = time.perf_counter(), {}, {}
    for strategy in chosen:
        if strategy == BASELINE:
            continue
        grafter = _grafter(strategy, 0, backbone, options, train_kw, task)
        model, _, plan_strategy = grafter.build(n_outputs)
        route = grafter.training_route(model, plan_strategy)
        if route.kind == "inputs" or not route.cache:
            continue
        key = f"{route.kind} {route.start or model.layer or 'default'}"
        readers.setdefault(key, []).append(strategy)
        if key in seen:
            continue
        if progress:
            progress(f"shared feature extraction ({key})", 0, 1)
        for domain in domains:
            route.picker(model, domain)
        seen[key] = True
    return {"seconds": time.perf_counter() - t0, "what": readers}


def _one(strategy: str, seed: int, train: Domain, test: Domain, backbone: str, options: dict,
         train_kw: dict, classes: list[str], task: str, progress: Progress | None) -> dict:
    grafter = _grafter(strategy, seed, backbone, options, train_kw, task)
    if task == "classification":  # fitted on the names: the saved model predicts them
        named = np.asarray(classes)
        y_train, y_test = named[train.labels], named[test.labels]
    else:
        y_train, y_test = train.targets, test.targets
    step = (lambda what, d, t: progress(f"{strategy} seed {seed}: {what}", d, t)) \
        if progress else None
    t0 = time.perf_counter()
    with PeakMemory() as peak:
        grafter.fit(train, y_train, validation_data=(test, y_test), progress=step)
        t_fit = time.perf_counter() - t0
        pred = grafter.predict(test)
    seconds = time.perf_counter() - t0
    if task == "classification":
        code = {name: i for i, name in enumerate(classes)}
        pred, y_test = np.array([code[p] for p in pred]), test.labels
    record = {k: v for k, v in grafter.record_.items()
              if k in ("feature_cache", "cached_activations", "solver", "C", "best_epoch")}
    return {"strategy": strategy, "seed": seed, **_score(y_test, pred, len(classes)),
            "trainable_params": int(grafter.trainable_params_),
            "total_params": int(grafter.total_params_), "fit_seconds": t_fit,
            "seconds": seconds, "peak_rss_mib": peak.rss_mib, "peak_cuda_mib": peak.cuda_mib,
            "history": _history(grafter.history_), "record": record, "grafter": grafter}


def _history(history: list[dict]) -> list[dict]:
    keep = ("epoch", "train_loss", "val_loss", "val_accuracy")
    return [{k: h[k] for k in keep if k in h} for h in history]


def _finish(results: dict, folder: Path, chosen: list[str], splits: dict, fitted: dict,
            backbone: str, options: dict, *, feature_map: bool, t_start: float,
            progress: Progress | None = None) -> None:
    from graftlab.report.compare import write_report

    results["summary"] = summarise(results["runs"], chosen, results["task"])
    results["verdict"] = verdict(results["summary"], results["runs"], results["task"])
    results["seconds_total"] = time.perf_counter() - t_start
    # the report of what finished first, so a Ctrl-C during the slow map or the model's save
    # still leaves one; then the map and the saved model, and the report again with them
    _atomic.write_json(folder / "results.json", results)
    write_report(folder, results, {})
    figures_data: dict[str, Any] = {}
    if feature_map and 0 in splits and results["summary"]:
        if progress:
            progress("2-D map of the features (t-SNE)", 0, 1)
        figures_data["map"] = _feature_map(*splits[0], fitted, results, backbone, options)
    winner = results["verdict"].get("recommended")
    if winner in fitted:
        fitted[winner].save(folder / "model")
        results["model"] = {"strategy": winner, "seed": 0, "folder": "model"}
    _atomic.write_json(folder / "results.json", results)
    write_report(folder, results, figures_data)


def _feature_map(domain: Domain, test_idx: np.ndarray, fitted: dict, results: dict,
                 backbone: str, options: dict, max_points: int = 600) -> dict:
    """t-SNE of the held-out split's features: the frozen backbone's, and those of the best
    strategy that changes the backbone (seed 0)."""
    from graftlab.features import extract_features
    from graftlab.report.plots import embed_2d

    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(test_idx, min(max_points, len(test_idx)), replace=False))
    sample = domain.subset(idx)
    panels = [("frozen " + backbone, np.asarray(extract_features(
        backbone, sample, backbone_options=options or None)))]
    (metric, _), _ = METRICS[results["task"]]
    moving = [row for row in sorted(results["summary"], key=lambda r: -r[f"{metric}_mean"])
              if row["strategy"] != BASELINE and row["strategy"] in fitted
              and STRATEGIES.get(row["strategy"]).moves_backbone]
    if moving:
        name = moving[0]["strategy"]
        panels.append((f"after {name} (seed 0)", fitted[name].transform(sample)))
    maps = list(zip([title for title, _ in panels], embed_2d([x for _, x in panels])))
    values = domain.labels if results["task"] == "classification" else domain.targets
    return {"panels": maps, "labels": values[idx], "classes": results["classes"]}
