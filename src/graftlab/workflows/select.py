"""``graftlab select``: choose what of a source pool to train on for a target, from the
frozen backbone's cached features (seconds once they are cached), and report it.

The run folder holds ``results.json`` (``graftlab.select/1``: the record below),
``kept.npy`` (indices into the pool, parts in the order given), ``weights.npy`` (one per pool
sample, 0 where dropped), ``metrics.json`` (the selection's record: kept per part, emptied
parts, part scores; the curve), ``summary.md`` and the figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from graftlab.config import SelectConfig
from graftlab.data.domain import Domain, dataset_rows
from graftlab.errors import ConfigError
from graftlab.select import SELECTORS, check_fraction, select_pool
from graftlab.select.curve import fraction_curve
from graftlab.select.parts import Pool, load_pool, looks_like_pool
from graftlab.workflows.common import (check_backbone, check_cache, check_modality,
                                       load_with_columns, run_folder)

log = logging.getLogger(__name__)


def backbone_options(model) -> dict:
    return {k: v for k, v in (("image_size", model.image_size),
                              ("max_length", getattr(model, "max_length", None)))
            if v is not None}


def pool_features(pool: Pool, backbone: str, options: dict, progress=None) -> np.ndarray:
    """The pool's features, extracted (through the cache) part by part."""
    from graftlab.features import extract_features

    return np.vstack([extract_features(backbone, d, backbone_options=options or None,
                                       progress=_named(progress, name))
                      for name, d in pool.parts])


def _named(progress, name: str):
    return None if progress is None else (lambda done, total: progress(name, done, total))


def check_selector(section, pooled: bool = True) -> None:
    """Before any work: the selector exists, the fraction is in (0, 1], a selector that
    needs target labels is refused (the command gives it none), one that scores pool parts is
    refused where there are none (``pooled`` False: fit, compare), and selection options given
    without a selector are named (they would do nothing)."""
    if section.selector is None:
        given = [flag for flag, value in (("--keep-fraction (select.keep_fraction)",
                                           section.keep_fraction),
                                          ("--select-target (select.target)", section.target),
                                          ("select.selector_options",
                                           section.selector_options or None))
                 if value is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} given without a selector: nothing "
                              "would be selected.",
                              hint="add --select NAME (select.selector), e.g. --select knn; "
                              "`graftlab select --help` names them all.")
        return
    check_fraction(section.fraction)
    if not pooled and SELECTORS.get(section.selector).needs_groups:
        others = [n for n in SELECTORS.names() if not SELECTORS.get(n).needs_groups]
        raise ConfigError(f"selector {section.selector!r} scores the named parts of a pool, "
                          "and this command selects from one data set.",
                          hint=f"use {', '.join(others)}; or choose parts of a pool with "
                          "`graftlab select --pool A+B` or `graftlab adapt --source A+B`.")
    if SELECTORS.get(section.selector).target_labels == "required":
        raise ConfigError(f"selector {section.selector!r} needs target labels, which selection "
                          "from the command line never reads.", hint="use a label-free selector.")


def run_select(config: SelectConfig, *,
               progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Load pool and target, extract features, select, write the run folder."""
    t0 = time.perf_counter()
    data, m, s = config.data, config.model, config.select
    check_selector(s)
    modality = check_backbone(m.backbone, image_size=m.image_size, max_length=m.max_length)
    check_cache()
    target = load_with_columns(data.target, text_column=data.text_column,
                               label_column=data.label_column, labelled=None,
                               skip_corrupt=data.skip_corrupt)
    # no target image may blend a pool sample it was made from (mnist_m's digits)
    pool = load_pool(data.pool, text_column=data.text_column, label_column=data.label_column,
                     source_column=data.source_column, skip_corrupt=data.skip_corrupt,
                     target=target)
    check_modality(pool.parts[0][1], modality, m.backbone)
    options = backbone_options(m)
    f_s = pool_features(pool, m.backbone, options, progress)
    f_t = pool_features(Pool([("target", target)], list(target.classes)), m.backbone,
                        options, progress)  # the target alone, extracted the same way
    groups, labels = pool.groups, pool.labels
    selection = select_pool(s.selector, f_s, f_t, fraction=s.fraction, groups=groups,
                            source_labels=labels, options=s.selector_options)
    curve = []
    y_t = _pool_codes(target, pool.classes) if target.labelled else None
    if y_t is not None:  # scores the curve only: the selector was fitted without them
        curve = fraction_curve([s.selector], f_s, labels, f_t, y_t, groups=groups,
                               seed=s.seed, options={s.selector: s.selector_options})
    return _write(config, pool, selection, curve, f_s, f_t, time.perf_counter() - t0)


def _pool_codes(target: Domain, classes: list[str]) -> np.ndarray | None:
    """The target's labels as ids into the pool's classes, matched by name (-1 where the pool
    has no such class: the curve counts those wrong); None, with a warning, when no class
    matches (the curve is then left out)."""
    position = {str(c): i for i, c in enumerate(classes)}
    names = [str(target.classes[i]) if target.classes else str(i) for i in target.labels]
    codes = np.array([position.get(n, -1) for n in names], dtype=np.int64)
    missing = sorted({n for n in names if n not in position})
    if not (codes >= 0).any():
        log.warning("the target's classes (%s) are none of the pool's (%s): no "
                    "accuracy-vs-fraction curve", ", ".join(missing[:5]),
                    ", ".join(map(str, classes[:5])))
        return None
    if missing:
        log.warning("the pool has no samples of the target's class(es) %s; the curve counts "
                    "them wrong", ", ".join(missing))
    return codes


def _write(config: SelectConfig, pool: Pool, selection, curve: list, f_s: np.ndarray,
           f_t: np.ndarray, seconds: float) -> dict:
    from graftlab import _atomic
    from graftlab.report import write_run
    from graftlab.report.select import fraction_curve as curve_svg
    from graftlab.report.select import kept_vs_dropped, selection_summary

    record = {**selection.record(), "dropped_shared": dict(pool.dropped),
              "dropped_duplicates": dict(pool.duplicates)}
    metrics = {**record, "curve": curve, "seconds": round(seconds, 2)}
    with run_folder(config.out, config.runs_dir, config.overwrite, "select") as folder:
        _atomic.write_npy(folder / "kept.npy", selection.kept)
        _atomic.write_npy(folder / "weights.npy", selection.weights)
        _atomic.write_text(folder / "kept_vs_dropped.svg",
                           kept_vs_dropped(f_s, selection.kept, pool.groups, f_t))
        if curve:
            _atomic.write_text(folder / "fraction_curve.svg", curve_svg(curve))
        write_run(folder, config=config.model_dump(), metrics=metrics,
                  summary=selection_summary(record, curve))
        # a run folder graftlab wrote, of this command: --overwrite may replace it later
        _atomic.write_json(folder / "results.json", {"format": "graftlab.select/1",
                                                     "status": "complete", **metrics})
    return {**metrics, "run_folder": str(folder)}


def load_source(spec: str, target: Domain, *, pooled: bool = False, **load_kw
                ) -> tuple[Domain, np.ndarray | None]:
    """A source that may be a pool: bundled names joined by ``+`` (always), or, when a
    selector will choose from it (``pooled``), a folder of part folders or a table with a
    ``source`` column, load as one domain with each sample's part (each part without the
    samples ``target`` was made from, see :func:`~graftlab.data.without_shared`); anything
    else loads as usual (no parts)."""
    path = Path(spec).expanduser()
    if ("+" in spec and not path.exists()) or (pooled and _pool_path(path)):
        pool = load_pool(spec, target=target, **{k: v for k, v in load_kw.items() if k in
                                                 ("text_column", "label_column",
                                                  "skip_corrupt")})
        if path.is_dir():
            log.warning("%s is read as a pool of %d parts (%s), each of classes %s; a labelled "
                        "set whose class folders hold folders of their own looks the same: "
                        "for one, drop --select", spec, len(pool.parts),
                        ", ".join(n for n, _ in pool.parts), ", ".join(pool.classes))
        return pool.domain(name=spec), pool.groups
    return load_with_columns(spec, **load_kw), None


def _pool_path(path: Path) -> bool:
    """A folder of parts of class folders, or a table with a ``source`` column."""
    if path.is_dir():
        return looks_like_pool(path)
    if path.is_file() and path.suffix in (".csv", ".jsonl"):
        from graftlab.data.tables import table_columns

        return "source" in table_columns(path)
    return False


def select_source(source: Domain, target: Domain, groups: np.ndarray | None, section,
                  backbone: str, options: dict
                  ) -> tuple[Domain, dict | None, np.ndarray | None]:
    """``source`` reduced to what ``section.selector`` keeps for ``target`` (from the frozen
    backbone's cached features; the target's labels are never given to it), the selection's
    record and the kept samples' weights (mean 1) where the selector declares it gives
    weights (``output == "weights"``), else None; unchanged (and None, None) when no selector
    is set."""
    from graftlab.features import extract_features

    if section.selector is None:
        return source, None, None
    check_selector(section)
    if groups is not None:
        groups = groups[dataset_rows(source)]  # a sampled pool: each sample's part
    f_s, f_t = (extract_features(backbone, d, backbone_options=options or None)
                for d in (source, target))
    selection = select_pool(section.selector, f_s, f_t, fraction=section.fraction,
                            groups=groups, source_labels=source.labels,
                            options=section.selector_options)
    kept = source.subset(selection.kept)
    _name_lost_classes(source, kept, f"selection by {section.selector} at keep fraction "
                       f"{section.fraction:g}")
    weighs = SELECTORS.get(section.selector).output == "weights"  # a subset's are all 1
    return kept, selection.record(), selection.weights[selection.kept] if weighs else None


def _name_lost_classes(source: Domain, kept: Domain, what: str) -> None:
    """Warn, naming them, about source classes a selection left no sample of: the model
    cannot predict those (wanted where the target lacks them, a surprise otherwise)."""
    if not source.labelled:
        return
    lost = sorted(set(source.labels.tolist()) - set(kept.labels.tolist()))
    if lost:
        names = [str(source.classes[i]) if source.classes else str(i) for i in lost]
        log.warning("%s kept no sample of class(es) %s: the model will not predict them "
                    "(keep a larger share with --keep-fraction if the target has them)", what,
                    ", ".join(names))


def select_for(domain: Domain, test: Domain | None, section, backbone: str, options: dict,
               **load_kw) -> tuple[Domain, dict | None, np.ndarray | None]:
    """fit and compare: ``domain`` reduced to what ``section.selector`` keeps for its target,
    ``section.target`` (loaded unlabelled) or else the explicit test data ``test``."""
    if section.selector is None:
        return domain, None, None
    if section.target is None and test is None:
        raise ConfigError(f"--select {section.selector} needs a target to select for.",
                          hint="give --select-target DATA (select.target), or --test-data.")
    target = test if section.target is None else load_with_columns(
        section.target, labelled=False, **load_kw)
    return select_source(domain, target.unlabelled(), None, section, backbone, options)
