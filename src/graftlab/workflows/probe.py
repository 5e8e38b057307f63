"""``graftlab probe``: features of a labelled domain, a tuned linear probe, held-out scores.

The held-out set is a seeded random split (``test_size``) or the user's own (``test``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

from graftlab.config import ProbeConfig
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.features import extract_features
from graftlab.probe.linear import LinearProbeClassifier, LinearProbeRegressor
from graftlab.report import markdown_table, write_run
from graftlab.workflows.common import (align_test, check_backbone, check_cache,
                                       check_modality, check_writable, load_with_test,
                                       new_folder)

Progress = Callable[[str, int, int], None]


def run_probe_config(config: ProbeConfig, *, progress: Progress | None = None
                     ) -> tuple[Domain, dict]:
    """``graftlab probe``: check everything, load the data (and the held-out set), probe."""
    data, m = config.data, config.model
    check_probe(backbone=m.backbone, image_size=m.image_size, max_length=m.max_length,
                runs_dir=config.runs_dir, task=config.task, test_size=data.test_size,
                held_out=data.test_data is not None)
    check_cache()
    domain, test = load_with_test(data)
    return domain, run_probe(domain, backbone=m.backbone, layer=m.layer, pooling=m.pooling,
                             image_size=m.image_size, max_length=m.max_length,
                             test_size=data.test_size, test=test, seed=config.seed,
                             runs_dir=config.runs_dir, task=config.task, progress=progress)


def check_probe(*, backbone: str, image_size: int | None = None,
                max_length: int | None = None, runs_dir: str | Path = "runs",
                task: str = "auto", test_size: float = 0.2, held_out: bool = False
                ) -> str | None:
    """What :func:`run_probe` checks before it reads any data: the task, the split (unless
    there is a ``held_out`` set), the backbone and its options, where the run folder goes.
    Returns the backbone's modality."""
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"--task {task!r} is not one of auto, classification, regression.")
    if not held_out and not 0 < test_size < 1:
        raise ConfigError(f"--test-size must be a number > 0 and < 1, got {test_size}.",
                          hint="e.g. --test-size 0.2, or give a held-out set with --test-data.")
    modality = check_backbone(backbone, image_size=image_size, max_length=max_length)
    check_writable(runs_dir, "--runs-dir")
    return modality


def run_probe(domain: Domain, *, backbone: str, layer: str | None = None,
              pooling: str | None = None, image_size: int | None = None,
              max_length: int | None = None, test_size: float = 0.2,
              test: Domain | None = None, seed: int = 0, runs_dir: str | Path = "runs",
              task: str = "auto", progress: Progress | None = None) -> dict:
    """Fit a probe on a (stratified) train split, score the rest, write a run folder.

    ``task``: ``classification`` (labels; accuracy, macro-F1), ``regression`` (the domain's
    continuous targets; ridge, R² and MAE), or ``auto`` (labels if any, else targets).
    ``test``: an explicit held-out set (all of ``domain`` then trains; ``test_size`` unused).
    """
    modality = check_probe(backbone=backbone, image_size=image_size, max_length=max_length,
                           runs_dir=runs_dir, task=task, test_size=test_size,
                           held_out=test is not None)
    check_modality(domain, modality, backbone)
    regression = task == "regression" or (task == "auto" and not domain.labelled
                                          and domain.targets is not None)
    if regression:
        _check_targets(domain, test_size, test)
    else:
        _check_classes(domain, test_size, test)
    if test is not None:
        test = align_test(domain, test)
        train_idx, test_idx = np.arange(len(domain)), None
    else:
        train_idx, test_idx = train_test_split(
            np.arange(len(domain)), test_size=test_size, random_state=seed,
            stratify=None if regression else domain.labels)
    options = {k: v for k, v in (("image_size", image_size), ("max_length", max_length)) if v}
    feats = _features(domain, backbone, layer, pooling, options, progress)
    feats_test = feats[test_idx] if test is None else \
        _features(test, backbone, layer, pooling, options, progress)
    values = domain.targets if regression else domain.labels
    y = values[test_idx] if test is None else (test.targets if regression else test.labels)
    result = _fit_and_score(feats[train_idx], values[train_idx], feats_test, y, regression, seed)
    result.update(train=int(len(train_idx)), test=int(len(y)))
    config = {"job": "probe", **({"task": "regression"} if regression else {}),
              "data": domain.name, "backbone": backbone, "layer": layer, "pooling": pooling,
              "image_size": image_size, "max_length": max_length,
              "test_size": None if test is not None else test_size,
              "test_data": test.name if test is not None else None, "seed": seed}
    title = "Linear probe (ridge regression)" if regression else "Linear probe"
    summary = f"# {title} on {domain.name}\n\n" + markdown_table([result]) + "\n"
    folder = new_folder(runs_dir, "probe")
    write_run(folder, config=config, metrics=result, summary=summary)
    return {**result, "run_folder": str(folder)}


def _fit_and_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray, regression: bool, seed: int) -> dict:
    """A tuned ridge (regression) or logistic-regression probe, scored on the test rows."""
    if regression:
        probe = LinearProbeRegressor().fit(x_train, y_train)
        pred = probe.predict(x_test)
        return {"task": "regression", "r2": float(r2_score(y_test, pred)),
                "mae": float(mean_absolute_error(y_test, pred)), "probe_alpha": probe.alpha_}
    probe = LinearProbeClassifier(random_state=seed).fit(x_train, y_train)
    pred = probe.predict(x_test)
    return {"task": "classification", "accuracy": float(accuracy_score(y_test, pred)),
            "macro_f1": float(f1_score(y_test, pred, average="macro")), "probe_C": probe.C_}


def _check_targets(domain: Domain, test_size: float, test: Domain | None) -> None:
    if domain.targets is None:
        raise DataError(f"data {domain.name!r} has no continuous targets to regress on.",
                        hint="for CSV/JSONL name the numeric column with --target-column.")
    if test is None and (len(domain) * test_size < 2 or len(domain) < 5):
        raise DataError(f"data {domain.name!r} is too small to split: {len(domain)} "
                        "samples.", hint="a regression probe needs at least 5 samples.")


def _check_classes(domain: Domain, test_size: float, test: Domain | None) -> None:
    if not domain.labelled:
        raise DataError(f"data {domain.name!r} has no labels; a probe needs labelled data.",
                        hint="for CSV/JSONL name the label column with --label-column.")
    counts = np.bincount(domain.labels, minlength=domain.num_classes)
    if test is not None:
        return
    train_part = len(domain) - int(np.ceil(len(domain) * test_size))
    if (counts[counts > 0] < 2).any() or len(domain) * test_size < domain.num_classes or \
            train_part < domain.num_classes:
        raise DataError(
            f"data {domain.name!r} is too small to split: {len(domain)} samples, "
            f"{domain.num_classes} classes, smallest class {int(counts.min())}.",
            hint="each class needs at least 2 samples, and the held-out part and the "
            "training part at least one sample per class each; add data, change --test-size "
            "(0.2 is usual), or give --test-data.",
        )


def _features(domain: Domain, backbone, layer, pooling, options, progress) -> np.ndarray:
    tick = (lambda d, t: progress(f"features {domain.name}", d, t)) if progress else None
    return np.asarray(extract_features(backbone, domain, layer=layer, pooling=pooling,
                                       backbone_options=options, progress=tick))
