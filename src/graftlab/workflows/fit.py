"""``graftlab fit``: one configured fine-tuning run, scored on a held-out set, saved.

Everything is checked before training starts (options, backbone, output location, data); the
run folder is made just before training (``--track`` writes into it as it trains) and removed
if the run fails before its results are written. The saved model predicts the user's label
names."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from graftlab.config import FitConfig
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.report import markdown_table, write_run
from graftlab.track import Tracker, check_tracker, open_tracker
from graftlab.workflows.select import check_selector, select_for
from graftlab.workflows.common import (check_augment, check_backbone, check_cache,
                                       check_writable, class_names, early_folder,
                                       load_labelled, load_test)

if TYPE_CHECKING:
    from graftlab.grafter import Grafter


def split_check(domain: Domain, test_size: float, what: str = "data") -> None:
    """A stratified split needs 2 samples per class and one per class on the held-out side."""
    counts = np.bincount(domain.labels, minlength=domain.num_classes)
    if (counts[counts > 0] < 2).any():
        raise DataError(f"{what} {domain.name!r}: a class has a single sample; each class needs "
                        "at least 2 to be split into train and test.",
                        hint="add samples, or give a held-out set with --test-data.")
    if len(domain) * test_size < (counts > 0).sum():
        raise ConfigError(
            f"--test-size {test_size} holds out {int(len(domain) * test_size)} of "
            f"{len(domain)} samples, fewer than the {(counts > 0).sum()} classes.",
            hint="raise --test-size (data.test_size) so each class has a held-out sample.")
    training = len(domain) - int(np.ceil(len(domain) * test_size))  # what the split leaves
    if training < (counts > 0).sum():
        raise ConfigError(
            f"--test-size {test_size} leaves {training} of {len(domain)} samples to train on, "
            f"fewer than the {(counts > 0).sum()} classes.", hint="lower --test-size "
            "(data.test_size), e.g. 0.2, so each class keeps a training sample.")


def run_fit(config: FitConfig, *, progress: Callable[[str, int, int], None] | None = None
            ) -> dict:
    """Fit a Grafter as configured; write the run folder (with the saved model) and metrics."""
    from graftlab.grafter import Grafter

    t0 = time.perf_counter()
    data, m = config.data, config.model
    modality = check_backbone(m.backbone, image_size=m.image_size, max_length=m.max_length)
    check_augment(config.train.augment, modality)
    check_writable(config.runs_dir, "runs_dir")
    check_cache()
    check_tracker(config.track)
    check_selector(config.select, pooled=False)
    if config.train.distill_from is not None:  # a wrong folder is named before any work
        from graftlab.distill import teacher_folder

        teacher_folder(config.train.distill_from)
    domain = load_labelled(data, modality, m.backbone, "fine-tuning")
    test = load_test(data.test_data, domain, text_column=data.text_column,
                     label_column=data.label_column, skip_corrupt=data.skip_corrupt)
    if test is None:
        split_check(domain, data.test_size)
        train_idx, test_idx = train_test_split(np.arange(len(domain)), test_size=data.test_size,
                                               stratify=domain.labels,
                                               random_state=config.train.seed)
        train, test = domain.subset(train_idx), domain.subset(test_idx)
    else:
        train = domain
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None}
    train, selection, weights = select_for(
        train, test if data.test_data else None, config.select, m.backbone, options,
        text_column=data.text_column, skip_corrupt=data.skip_corrupt)
    checkpoints = resume_folder(config)
    grafter = Grafter(backbone=m.backbone, head=m.head, head_options=m.head_options or None,
                      layer=m.layer, pooling=m.pooling, backbone_options=options or None,
                      checkpoint_dir=str(checkpoints), **config.train.model_dump())
    with early_folder(config.runs_dir, "fit") as folder, \
            open_tracker(config.track, folder, run_name=folder.name, outputs=True) as tracker:
        metrics = _train_and_save(config, grafter, domain, (train, test, weights), selection,
                                  folder, tracker, progress, t0)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run is saved: nothing to resume
    if checkpoints.parent.is_dir() and not any(checkpoints.parent.iterdir()):
        checkpoints.parent.rmdir()
    return {**metrics, "run_folder": str(folder)}


def _train_and_save(config: FitConfig, grafter: Grafter, domain: Domain,
                    split: tuple[Domain, Domain, np.ndarray | None], selection: dict | None,
                    folder: Path, tracker: Tracker,
                    progress: Callable[[str, int, int], None] | None, t0: float) -> dict:
    """Fit (tracked; ``split``: train, test and the training weights of a weighting
    selector), score on the held-out set, save the model, write the run folder."""
    (data, m), (train, test, weights) = (config.data, config.model), split
    tracker.log_params(config.model_dump())
    if config.track:
        grafter.set_params(callbacks=[*(grafter.callbacks or []), tracker.callback()])
    # fitted on the names, so the saved model predicts the user's labels (neg/pos, not 0/1)
    grafter.fit(train, class_names(domain, train.labels), progress=progress,
                sample_weight=weights)  # a weighting selector's weights (None: no selection)
    pred = grafter.predict(test)
    truth = class_names(domain, test.labels)
    metrics = {"accuracy": float(accuracy_score(truth, pred)),
               "macro_f1": float(f1_score(truth, pred, average="macro")),
               "trainable_params": int(grafter.trainable_params_),
               "total_params": int(grafter.total_params_), "train": len(train),
               "test": len(test), "test_data": data.test_data,
               "seconds": round(time.perf_counter() - t0, 2),
               "history": grafter.history_, "record": grafter.record_,
               **({"selection": selection} if selection else {})}
    grafter.save(folder / "model")
    row = {k: metrics[k] for k in ("accuracy", "macro_f1", "trainable_params", "seconds")}
    summary = (f"# Fine-tuning {m.backbone} on {domain.name} ({config.train.strategy})\n\n"
               + markdown_table([row]) + "\n\nThe fitted model is in `model/` "
               "(load it with `graftlab.Grafter.load`; it predicts "
               f"{', '.join(map(str, grafter.classes_.tolist()))}).\n")
    write_run(folder, config=config.model_dump(), metrics=metrics, summary=summary)
    tracker.log_metrics(metrics)  # the files written are logged as the tracker closes
    return metrics


def resume_folder(config: FitConfig) -> Path:
    """Where a fit checkpoints every epoch: named by its configuration, so the same command
    after a crash or kill resumes where it stopped (the trainer says so, and refuses a
    checkpoint of other data); removed once the run folder is written."""
    key = json.dumps({k: v for k, v in config.model_dump().items() if k != "runs_dir"},
                     sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(config.runs_dir) / ".checkpoints" / f"fit-{digest}"
