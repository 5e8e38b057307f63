"""``graftlab probe``: features of a labelled domain, a tuned linear probe, held-out scores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from graftlab.data.domain import Domain
from graftlab.errors import DataError
from graftlab.features import extract_features
from graftlab.probe.linear import LinearProbeClassifier
from graftlab.report import markdown_table, new_run_folder, write_run


def run_probe(domain: Domain, *, backbone: str, layer: str | None = None,
              pooling: str | None = None, image_size: int | None = None,
              test_size: float = 0.2, seed: int = 0, runs_dir: str | Path = "runs",
              progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Fit a probe on a stratified train split, score the rest, write a run folder."""
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
    options = {"image_size": image_size} if image_size else {}
    tick = (lambda d, t: progress(f"features {domain.name}", d, t)) if progress else None
    feats = np.asarray(extract_features(backbone, domain, layer=layer, pooling=pooling,
                                        backbone_options=options, progress=tick))
    probe = LinearProbeClassifier(random_state=seed).fit(feats[train_idx], domain.labels[train_idx])
    pred = probe.predict(feats[test_idx])
    y = domain.labels[test_idx]
    result = {"accuracy": float(accuracy_score(y, pred)),
              "macro_f1": float(f1_score(y, pred, average="macro")), "probe_C": probe.C_,
              "train": int(len(train_idx)), "test": int(len(test_idx))}
    config = {"job": "probe", "data": domain.name, "backbone": backbone, "layer": layer,
              "pooling": pooling, "image_size": image_size, "test_size": test_size, "seed": seed}
    summary = f"# Linear probe on {domain.name}\n\n" + markdown_table([result]) + "\n"
    folder = new_run_folder(runs_dir, "probe")
    write_run(folder, config=config, metrics=result, summary=summary)
    return {**result, "run_folder": str(folder)}
