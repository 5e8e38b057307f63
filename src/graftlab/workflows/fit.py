"""``graftlab fit``: one configured fine-tuning run, scored on a held-out split, saved."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from graftlab.config import FitConfig
from graftlab.workflows.common import load_with_columns
from graftlab.errors import DataError
from graftlab.report import markdown_table, new_run_folder, write_run


def run_fit(config: FitConfig, *, progress: Callable[[str, int, int], None] | None = None
            ) -> dict:
    """Fit a Grafter as configured; write the run folder (with the saved model) and metrics."""
    from graftlab.grafter import Grafter

    t0 = time.perf_counter()
    data = config.data
    domain = load_with_columns(data.path, text_column=data.text_column,
                               label_column=data.label_column, skip_corrupt=data.skip_corrupt)
    if not domain.labelled:
        raise DataError(f"data {domain.name!r} has no labels; fine-tuning needs labelled data.",
                        hint="set data.label_column to the column that holds the labels.")
    idx = np.arange(len(domain))
    counts = np.bincount(domain.labels)
    if counts[counts > 0].min() < 2:
        raise DataError(f"data {domain.name!r}: a class has a single sample; each class needs "
                        "at least 2 to be split into train and test.")
    train_idx, test_idx = train_test_split(idx, test_size=data.test_size, stratify=domain.labels,
                                           random_state=config.train.seed)
    m = config.model
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None}
    grafter = Grafter(backbone=m.backbone, head=m.head, head_options=m.head_options or None,
                      layer=m.layer, pooling=m.pooling, backbone_options=options or None,
                      **config.train.model_dump())
    train, test = domain.subset(train_idx), domain.subset(test_idx)
    grafter.fit(train, train.labels, progress=progress)
    pred = grafter.predict(test)
    metrics = {"accuracy": float(accuracy_score(test.labels, pred)),
               "macro_f1": float(f1_score(test.labels, pred, average="macro")),
               "trainable_params": int(grafter.trainable_params_),
               "total_params": int(grafter.total_params_), "train": len(train_idx),
               "test": len(test_idx), "seconds": round(time.perf_counter() - t0, 2),
               "history": grafter.history_, "record": grafter.record_}
    folder = new_run_folder(config.runs_dir, "fit")
    grafter.save(folder / "model")
    row = {k: metrics[k] for k in ("accuracy", "macro_f1", "trainable_params", "seconds")}
    summary = (f"# Fine-tuning {m.backbone} on {domain.name} ({config.train.strategy})\n\n"
               + markdown_table([row]) + "\n\nThe fitted model is in `model/` "
               "(load it with `graftlab.Grafter.load`).\n")
    write_run(folder, config=config.model_dump(), metrics=metrics, summary=summary)
    return {**metrics, "run_folder": str(folder)}
