"""``graftlab advise``: rank backbones, layers and poolings on cached features before any
training, with every transferability score in :mod:`graftlab.scores`, and recommend one
candidate and whether to probe or fine-tune (:func:`graftlab.scores.advice.decide`).

Features come through the feature cache: a second call on the same data costs only the scores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from graftlab import _atomic
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.features import extract_layers
from graftlab.scores import SCORES, Advice, decide, run_score
from graftlab.workflows.common import (check_backbone, check_cache, check_modality,
                                       check_out_folder, limit_domain, load_with_columns,
                                       run_folder)

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
FORMAT = "graftlab.advise/1"
DEFAULT_POOLINGS = {"image": ("avg", "max"), "text": ("mean", "cls")}
DEPTHS = (1 / 3, 2 / 3, 1.0)  # default layers: a third, two thirds of the way, and the last


def advise(data: Domain | str | Path, backbones: Sequence[str] | None = None,
           layers: Sequence[str] | None = None, poolings: Sequence[str] | None = None, *,
           scores: Sequence[str] | None = None, task: str = "auto", limit: int | None = None,
           image_size: int | None = None, max_length: int | None = None, seed: int = 0,
           cache: bool = True, progress: Progress | None = None) -> Advice:
    """Score every (backbone, layer, pooling) candidate on ``data`` and recommend one.

    ``backbones``: default every registered backbone of the data's modality; ``layers``: names
    every chosen backbone has (default: a third and two thirds of the way up, and the last);
    ``poolings``: default avg, max (images) or mean, cls (text); ``scores``: default all of
    :data:`graftlab.scores.SCORES`. ``task`` as in ``graftlab probe``. Nothing is written.
    """
    started = time.perf_counter()
    domain = data if isinstance(data, Domain) else load_with_columns(data, labelled=None)
    scores = _check_scores(scores)
    regression = _check_task(domain, task)
    domain = limit_domain(domain, limit, "regression" if regression else "classification", seed)
    if regression and limit is not None:
        _check_task(domain, task)  # the sample may hold one value
    if not regression:
        _check_counts(domain, limit)
    options = {k: v for k, v in (("image_size", image_size), ("max_length", max_length)) if v}
    plan = _plan(domain, backbones, layers, poolings, image_size, max_length)
    if cache:
        check_cache()
    y = domain.targets if regression else domain.labels
    advice = Advice(domain.name, "regression" if regression else "classification", len(domain),
                    None if regression else int(len(np.unique(y))), list(scores), [])
    seconds = {"features": 0.0, **{s: 0.0 for s in scores}}
    for backbone, (names, pools) in plan.items():
        tick = (lambda d, t, b=backbone: progress(f"features {b}", d, t)) if progress else None
        t0 = time.perf_counter()
        feats = {p: extract_layers(backbone, domain, layers=names, pooling=p, cache=cache,
                                   backbone_options=options, progress=tick) for p in pools}
        source = _source_probs(backbone, domain, options, cache) \
            if any(SCORES.get(s).needs_source for s in scores) else None
        seconds["features"] += time.perf_counter() - t0
        for pooling in pools:
            for layer in names:
                f = np.asarray(feats[pooling][layer])
                row = {"backbone": getattr(backbone, "name", backbone), "layer": layer, "pooling": pooling,
                       "dims": int(f.shape[1]), "scores": {}}
                for s in scores:
                    result = run_score(s, f, y, regression=regression, source_probs=source,
                                       seed=seed)
                    seconds[s] += result.seconds
                    row["scores"][s] = {"value": result.value, "status": result.status,
                                        "seconds": result.seconds, "note": result.note}
                advice.candidates.append(row)
                if progress:
                    progress("scores", len(advice.candidates), _count(plan))
    seconds["total"] = time.perf_counter() - started
    advice.seconds = seconds
    return decide(advice)


def run_advise(data: Domain | str | Path, *, out: str | Path | None = None,
               runs_dir: str | Path = "runs", overwrite: bool = False,
               **kwargs) -> tuple[Advice, Path]:
    """:func:`advise`, then a run folder with results.json, report.md and report.html. The
    output location is checked before any work."""
    from graftlab.report.advise import write_report

    check_out_folder(out, runs_dir, overwrite, "advise")
    advice = advise(data, **kwargs)
    config = {"data": advice.data, **{k: v for k, v in kwargs.items() if k != "progress"}}
    with run_folder(out, runs_dir, overwrite, "advise") as folder:
        results = {"format": FORMAT, "status": "done", "config": config,
                   "advice": advice.to_dict()}
        _atomic.write_json(folder / "results.json", results)
        write_report(folder, results)
    return advice, folder


def run_advise_config(config, *, progress: Progress | None = None) -> tuple[Advice, Path]:
    """``graftlab advise``: an :class:`graftlab.config.AdviseConfig`, loaded and run."""
    d, m = config.data, config.model
    _check_scores(config.scores)
    for backbone in m.backbones or []:
        check_backbone(backbone, image_size=m.image_size, max_length=m.max_length)
    check_out_folder(config.out, config.runs_dir, config.overwrite, "advise")
    domain = load_with_columns(d.path, text_column=d.text_column, target_column=d.target_column,
                               label_column=None if d.target_column else d.label_column,
                               labelled=None if d.target_column else True,
                               skip_corrupt=d.skip_corrupt, image_size=m.image_size)
    return run_advise(domain, out=config.out, runs_dir=config.runs_dir,
                      overwrite=config.overwrite, backbones=m.backbones, layers=m.layers,
                      poolings=m.poolings, scores=config.scores, task=config.task,
                      limit=d.limit, image_size=m.image_size, max_length=m.max_length,
                      seed=config.seed, progress=progress)


def _check_scores(scores: Sequence[str] | None) -> list[str]:
    names = list(dict.fromkeys(scores)) if scores else SCORES.names()  # once each
    for name in names:
        SCORES.get(name)  # did-you-mean
    return names


def _check_task(domain: Domain, task: str) -> bool:
    """True for regression; the labels must name at least two classes for classification."""
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"--task {task!r} is not one of auto, classification, regression.")
    regression = task == "regression" or (task == "auto" and not domain.labelled
                                          and domain.targets is not None)
    if regression:
        if domain.targets is None:
            raise DataError(f"data {domain.name!r} has no continuous targets to score against.",
                            hint="for CSV/JSONL name the numeric column with --target-column.")
        targets = np.asarray(domain.targets, dtype=float)
        if np.nanstd(targets) == 0:
            raise DataError(f"data {domain.name!r}: every target is {targets[0]:g}; a constant "
                            "has nothing for features to predict (R² is undefined), so no score "
                            "can rank them.", hint="check the --target-column (or --limit: a "
                            "sample that drew one value).")
        return True
    if not domain.labelled:
        raise DataError(f"data {domain.name!r} has no labels; advise scores features against "
                        "labels (or numeric targets).",
                        hint="for CSV/JSONL name the label column with --label-column, or a "
                        "numeric one with --target-column.")
    present = np.unique(domain.labels)
    if len(present) < 2:
        only = domain.classes[present[0]] if domain.classes else present[0]
        raise DataError(f"data {domain.name!r} holds one class ({only!r}); transferability "
                        "scores measure how well features separate classes, so they need at "
                        "least two.", hint="add samples of another class (or check the label "
                        "column), or give a numeric --target-column to score a regression.")
    return False


def _check_counts(domain: Domain, limit: int | None) -> None:
    """Cross-validated scores (kNN, the probe) need two samples of every class."""
    values, counts = np.unique(domain.labels, return_counts=True)
    if counts.min() < 2:
        rare = values[counts < 2][0]
        name = domain.classes[rare] if domain.classes else rare
        raise DataError(f"class {name!r} of {domain.name!r} has one sample; the cross-validated "
                        "scores (knn, probe) need at least two of every class.",
                        hint="raise --limit" if limit else "add samples of that class, or "
                        "leave it out of the data.")


def _plan(domain: Domain, backbones, layers, poolings, image_size, max_length
          ) -> dict[str, tuple[list[str], list[str]]]:
    """Backbone -> (layers, poolings), every name checked before any extraction."""
    from graftlab.backbones import create_backbone, list_backbones
    from graftlab.backbones.base import resolve_layers, resolve_pooling
    from graftlab.backbones.registry import Description, describe_backbone

    names = list(backbones) if backbones else [s.name for s in list_backbones()
                                               if s.modality == domain.modality]
    if not names:
        raise ConfigError(f"no registered backbone reads {domain.modality}s.",
                          hint="name one with --backbone (e.g. hf:PATH).")
    plan = {}
    for name in dict.fromkeys(names):
        modality = check_backbone(name, image_size=image_size, max_length=max_length)
        check_modality(domain, modality, name)
        opts = {k: v for k, v in (("image_size", image_size), ("max_length", max_length)) if v}
        desc = describe_backbone(name, **opts) or Description.of(create_backbone(name, **opts))
        known = desc.layers
        wanted = list(layers) if layers else list(dict.fromkeys(
            known[round(f * (len(known) - 1))] for f in DEPTHS))
        pools = list(poolings) if poolings else list(DEFAULT_POOLINGS[desc.modality])
        plan[name] = (list(dict.fromkeys(resolve_layers(name, known, wanted))),  # once each
                      list(dict.fromkeys(resolve_pooling(desc.modality, p, desc.default_pooling)
                                         for p in pools)))
    return plan


def _count(plan: dict) -> int:
    return sum(len(layers) * len(pools) for layers, pools in plan.values())


def _source_probs(backbone: str, domain: Domain, options: dict, cache: bool
                  ) -> np.ndarray | None:
    """The backbone's source classifier's probabilities on ``domain`` (its head over the last
    layer's average-pooled features, from the cache), or None when it declares none."""
    from graftlab.backbones.registry import source_classifier

    head = source_classifier(backbone)
    if head is None:
        return None
    pooled = extract_layers(backbone, domain, pooling="avg", cache=cache,
                            backbone_options=options)
    logits = np.asarray(next(iter(pooled.values())), dtype=np.float64) @ head[0].T + head[1]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)
