"""``graftlab probe``: features of a labelled domain, a tuned linear probe, held-out scores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.features import extract_features
from graftlab.probe.linear import LinearProbeClassifier, LinearProbeRegressor
from graftlab.report import markdown_table, new_run_folder, write_run


def run_probe(domain: Domain, *, backbone: str, layer: str | None = None,
              pooling: str | None = None, image_size: int | None = None,
              test_size: float = 0.2, seed: int = 0, runs_dir: str | Path = "runs",
              task: str = "auto",
              progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Fit a probe on a (stratified) train split, score the rest, write a run folder.

    ``task``: ``classification`` (labels; accuracy, macro-F1), ``regression`` (the domain's
    continuous targets; ridge, R² and MAE), or ``auto`` (labels if any, else targets).
    """
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"task {task!r} is not one of auto, classification, regression.")
    if task == "regression" or (task == "auto" and not domain.labelled
                                and domain.targets is not None):
        return _run_regression(domain, backbone=backbone, layer=layer, pooling=pooling,
                               image_size=image_size, test_size=test_size, seed=seed,
                               runs_dir=runs_dir, progress=progress)
    if not domain.labelled:
        raise DataError(f"data {domain.name!r} has no labels; a probe needs labelled data.",
                        hint="for CSV/JSONL name the label column with --label-column.")
    counts = np.bincount(domain.labels, minlength=domain.num_classes)
    if (counts[counts > 0] < 2).any() or len(domain) * test_size < domain.num_classes:
        raise DataError(
            f"data {domain.name!r} is too small to split: {len(domain)} samples, "
            f"{domain.num_classes} classes, smallest class {int(counts.min())}.",
            hint="each class needs at least 2 samples and the held-out part at least one "
            "sample per class; add data or raise --test-size.",
        )
    train_idx, test_idx = train_test_split(np.arange(len(domain)), test_size=test_size,
                                           random_state=seed, stratify=domain.labels)
    feats = _features(domain, backbone, layer, pooling, image_size, progress)
    probe = LinearProbeClassifier(random_state=seed).fit(feats[train_idx], domain.labels[train_idx])
    pred = probe.predict(feats[test_idx])
    y = domain.labels[test_idx]
    result = {"task": "classification", "accuracy": float(accuracy_score(y, pred)),
              "macro_f1": float(f1_score(y, pred, average="macro")), "probe_C": probe.C_,
              "train": int(len(train_idx)), "test": int(len(test_idx))}
    config = {"job": "probe", "data": domain.name, "backbone": backbone, "layer": layer,
              "pooling": pooling, "image_size": image_size, "test_size": test_size, "seed": seed}
    summary = f"# Linear probe on {domain.name}\n\n" + markdown_table([result]) + "\n"
    folder = new_run_folder(runs_dir, "probe")
    write_run(folder, config=config, metrics=result, summary=summary)
    return {**result, "run_folder": str(folder)}


def _features(domain: Domain, backbone, layer, pooling, image_size, progress) -> np.ndarray:
    options = {"image_size": image_size} if image_size else {}
    tick = (lambda d, t: progress(f"features {domain.name}", d, t)) if progress else None
    return np.asarray(extract_features(backbone, domain, layer=layer, pooling=pooling,
                                       backbone_options=options, progress=tick))


def _run_regression(domain: Domain, *, backbone, layer, pooling, image_size, test_size, seed,
                    runs_dir, progress) -> dict:
    if domain.targets is None:
        raise DataError(
            f"data {domain.name!r} has no continuous targets to regress on.",
            hint="for CSV/JSONL name the numeric column with --target-column.",
        )
    if len(domain) * test_size < 2 or len(domain) < 5:
        raise DataError(f"data {domain.name!r} is too small to split: {len(domain)} samples.",
                        hint="a regression probe needs at least 5 samples.")
    train_idx, test_idx = train_test_split(np.arange(len(domain)), test_size=test_size,
                                           random_state=seed)
    feats = _features(domain, backbone, layer, pooling, image_size, progress)
    probe = LinearProbeRegressor().fit(feats[train_idx], domain.targets[train_idx])
    pred = probe.predict(feats[test_idx])
    y = domain.targets[test_idx]
    result = {"task": "regression", "r2": float(r2_score(y, pred)),
              "mae": float(mean_absolute_error(y, pred)), "probe_alpha": probe.alpha_,
              "train": int(len(train_idx)), "test": int(len(test_idx))}
    config = {"job": "probe", "task": "regression", "data": domain.name, "backbone": backbone,
              "layer": layer, "pooling": pooling, "image_size": image_size,
              "test_size": test_size, "seed": seed}
    summary = f"# Linear probe (ridge regression) on {domain.name}\n\n" + \
        markdown_table([result]) + "\n"
    folder = new_run_folder(runs_dir, "probe")
    write_run(folder, config=config, metrics=result, summary=summary)
    return {**result, "run_folder": str(folder)}
