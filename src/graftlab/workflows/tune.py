"""``graftlab tune``: a hyper-parameter search over a Grafter, written to a run folder.

Everything is checked before any trial (options, backbone, search space against the
estimator's parameters, the storage's connection, the data); the folder gets results.json,
report.md with the optimisation history (history.svg), config.json and the refitted best model.
With ``--storage URL --study NAME`` several such commands, on any machines, fill one study;
each writes its own folder from the whole study when it is done.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from collections.abc import Callable

from graftlab import _atomic
from graftlab.config import TuneConfig
from graftlab.grafter import Grafter
from graftlab.report.run import interrupt_deferred, write_run
from graftlab.report.tune import history_svg, trial_rows, tune_markdown
from graftlab.track import check_tracker, open_tracker
from graftlab.tune import Tuner, load_space
from graftlab.tune.tuner import TuneInterrupted
from graftlab.tune.storage import check_connects, storage_url
from graftlab.workflows.common import (check_backbone, check_cache, check_writable,
                                       class_names, early_folder, limit_domain,
                                       load_labelled, new_folder)

FORMAT = "graftlab.tune/1"
log = logging.getLogger(__name__)


def run_tune(config: TuneConfig, *, progress: Callable[[str, int, int], None] | None = None,
             tracker=None) -> dict:
    """Run the configured study (or this worker's share of it); write the run folder."""
    t0 = time.perf_counter()
    data, m, search = config.data, config.model, config.tune
    modality = check_backbone(m.backbone, image_size=m.image_size, max_length=m.max_length)
    check_writable(config.runs_dir, "runs_dir")
    check_cache()
    check_tracker(config.track)
    space = load_space(search.space)
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None}
    estimator = Grafter(backbone=m.backbone, head=m.head, head_options=m.head_options or None,
                        layer=m.layer, pooling=m.pooling, backbone_options=options or None,
                        **config.train.model_dump())
    space.check_names(list(estimator.get_params(deep=False)))
    url = storage_url(search.storage)
    if url is not None:
        check_connects(url)
    if (url is None) != (search.study is None):  # one without the other resumes nothing
        log.warning("%s: this study cannot be resumed; give --storage FILE and --study NAME "
                    "together to resume it (or to share it between workers)",
                    "--study without --storage keeps the study in memory" if url is None else
                    "--storage without --study makes a new unnamed study each run")
    domain = load_labelled(data, modality, m.backbone, "tuning")
    domain = limit_domain(domain, data.limit, "classification", search.seed)
    if tracker is not None or config.track is None:
        return _study(config, estimator, space, domain, url, progress, tracker, t0, None)
    with early_folder(config.runs_dir, "tune") as folder, \
            open_tracker(config.track, folder, run_name=folder.name, outputs=True) as opened:
        opened.log_params(record(config, space))
        return _study(config, estimator, space, domain, url, progress, opened, t0, folder)


def record(config: TuneConfig, space) -> dict:
    """The run's settings as its trials used them: the train section with the space's
    ``fixed`` values over it, and the space itself (what was searched, over what)."""
    out = config.model_dump()
    out["train"] = {**out["train"], **{k: v for k, v in space.fixed.items()
                                       if k in out["train"]}}
    out["model"] = {**out["model"], **{k: v for k, v in space.fixed.items()
                                       if k in out["model"]}}
    out["space"] = space.record()
    return out


def _study(config: TuneConfig, estimator, space, domain, url: str | None, progress,
           tracker, t0: float, folder: Path | None) -> dict:
    """Run the study (each trial a nested run of ``tracker``, if any); write ``folder`` (None:
    a new one, made once the study is done)."""
    search = config.tune
    tuner = Tuner(estimator=estimator, space=space, n_trials=search.trials, cv=search.cv,
                  storage=search.storage, study_name=search.study, sampler=search.sampler,
                  pruner=search.pruner, seed=search.seed, tracker=tracker)
    try:
        tuner.fit(domain, class_names(domain, domain.labels), progress=progress)
    except TuneInterrupted as stop:
        if not hasattr(tuner, "cv_results_"):
            raise  # no trial completed: nothing to report
        stop.folder = _write(config, tuner, domain.name, url, t0, folder, interrupted=True)
        raise
    return _write(config, tuner, domain.name, url, t0, folder, tracker=tracker)


def _write(config: TuneConfig, tuner: Tuner, data: str, url: str | None, t0: float,
           folder: Path | None, tracker=None, interrupted: bool = False) -> dict | Path:
    """The run folder from the study; an interrupted one (its folder returned) without the
    refitted model."""
    search = config.tune
    results = {"format": FORMAT, "data": data, "backbone": config.model.backbone,
               "study": tuner.study_.study_name, "storage": _shown(url), "cv": search.cv,
               "sampler": search.sampler, "pruner": search.pruner, "n_trials": search.trials,
               "best_trial": tuner.best_trial_, "best_params": tuner.best_params_,
               "best_score": tuner.best_score_, "trials": trial_rows(tuner.cv_results_),
               "seconds": round(time.perf_counter() - t0, 2),
               "status": "interrupted" if interrupted else "complete"}
    folder = folder or new_folder(config.runs_dir, "tune")
    if not interrupted:
        tuner.best_estimator_.save(folder / "model")
    with interrupt_deferred():
        _atomic.write_text(folder / "history.svg", history_svg(results["trials"]))
        _atomic.write_json(folder / "results.json", results)
        write_run(folder, config=record(config, tuner.space_), metrics={
            k: results[k] for k in ("best_trial", "best_params", "best_score", "seconds",
                                    "status")},
            summary=tune_markdown(results))
    if interrupted:
        return folder
    if tracker is not None:
        tracker.log_metrics({"best_cv_accuracy": results["best_score"]})
    return {**results, "run_folder": str(folder)}


def _shown(url: str | None) -> str:
    """The storage for the report: in memory, or its URL without a password."""
    if url is None:
        return "in memory"
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
