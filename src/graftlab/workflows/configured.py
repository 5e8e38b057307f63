"""The commands' entry points from their configurations (:mod:`graftlab.config`): each checks
every option, the backbone, the output location and the data before any run folder exists,
then calls the workflow. ``graftlab probe`` and ``fit`` have theirs in their own modules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from graftlab import _atomic

from graftlab.config import AdaptConfig, CompareConfig
from graftlab.data import is_tagged, to_grayscale, without_shared
from graftlab.track import check_tracker
from graftlab.workflows.adapt import adapt_to_folder
from graftlab.workflows.adapt_regression import adapt_regression_to_folder, is_regression
from graftlab.workflows.adapt_checks import (check_keep, check_methods, check_options,
                                             check_setups, check_target_size,
                                             parse_label_map)
from graftlab.errors import ConfigError
from graftlab.workflows.common import (check_augment, check_backbone, check_cache, check_out_folder,
                                       check_source_size, limit_domain, load_with_columns,
                                       load_with_test)
from graftlab.workflows.compare import check_compare, run_compare
from graftlab.workflows.select import check_selector, load_source, select_for, select_source

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


def run_compare_config(config: CompareConfig, *, progress: Progress | None = None) -> dict:
    """``graftlab compare`` from its :class:`CompareConfig`: every option, the
    backbone, the output location and the data are checked before the run folder exists."""
    data, m, t = config.data, config.model, config.train
    if config.task == "tokens" or (config.task == "auto" and is_tagged(data.path)):
        from graftlab.workflows.compare_tokens import run_compare_tokens

        check_cache()
        if "backbone" not in m.model_fields_set:  # compare's default is an image backbone
            config = config.model_copy(update={"model": m.model_copy(
                update={"backbone": "minilm_l6"})})
        return run_compare_tokens(config, progress=progress)
    if data.column is not None:
        raise ConfigError(f"data.column={data.column} names the tag's column of a tagged "
                          f"(CoNLL-style) file, and {data.path!r} is not read as one.",
                          hint="drop data.column; for a tagged file give task=tokens (--task "
                          "tokens) or a .conll/.bio name.")
    check_compare(strategies=t.strategies, scratch=t.scratch, epochs=t.epochs,
                  batch_size=t.batch_size, backbone=m.backbone, image_size=m.image_size,
                  max_length=m.max_length, out=config.out, runs_dir=config.runs_dir,
                  overwrite=config.overwrite)
    check_cache()
    check_tracker(config.track)
    check_selector(config.select, pooled=False)
    domain, test = load_with_test(data)
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None}
    domain, selection, weights = select_for(domain, test, config.select, m.backbone, options,
                                            text_column=data.text_column,
                                            skip_corrupt=data.skip_corrupt)  # the kept subset
    if weights is not None:  # a weighting selector's
        log.warning("compare trains every strategy on the subset %s kept, unweighted: its "
                    "per-sample weights are used by fit and adapt, not by compare",
                    config.select.selector)
    result = run_compare(domain, backbone=m.backbone, strategies=t.strategies, seeds=t.seeds,
                       epochs=t.epochs, batch_size=t.batch_size, lr=t.lr,
                       lr_backbone=t.lr_backbone, image_size=m.image_size,
                       max_length=m.max_length, limit=data.limit, test_size=data.test_size,
                       test=test, scratch=t.scratch, task=config.task,
                       runs_dir=config.runs_dir, out=config.out, overwrite=config.overwrite,
                       feature_map=config.feature_map, progress=progress, track=config.track)
    return _with_selection(result, selection)


def run_adapt_config(config: AdaptConfig, *, progress: Progress | None = None) -> dict:
    """``graftlab adapt`` from its :class:`AdaptConfig`: every option, the
    backbone, the output location and both data sets are checked before the run folder
    exists; then :func:`adapt_to_folder`."""
    data, m, t = config.data, config.model, config.train
    chosen = check_methods(t.methods)
    check_setups(chosen, {"strategy": m.strategy, "head": m.head})
    check_keep(t.keep, chosen)
    check_options({"select_epoch": t.select_epoch, "pseudo_fraction": t.pseudo_fraction})
    check_selector(config.select)
    mapping = parse_label_map(data.label_map)
    check_augment(t.augment, check_backbone(m.backbone, image_size=m.image_size,
                                            max_length=m.max_length))
    check_out_folder(config.out, config.runs_dir, config.overwrite, "adapt")
    check_cache()
    check_tracker(config.track)
    # the target's labels, where it has them, only ever score the result
    # the source may be a pool of named parts (mnist+fashion_mnist+digits)
    target = load_with_columns(data.target, text_column=data.target_text_column or
                               data.text_column, label_column=data.target_label_column or
                               data.label_column, labelled=None, skip_corrupt=data.skip_corrupt)
    loaded = load_source(data.source, target, pooled=config.select.selector is not None,
                         text_column=data.text_column,
                         label_column=data.label_column, skip_corrupt=data.skip_corrupt)
    groups, loaded = loaded[1], [loaded[0], target]
    if groups is None and config.select.selector is not None:  # one data set, not a pool
        check_selector(config.select, pooled=False)
    check_target_size(target, data.target_holdout, warn=False)  # adapt_to_folder warns
    # before sampling: a target made from source samples (mnist_m) shares none with it
    source, target, _ = without_shared(*loaded)
    # the source sampled stratified by its labels, the target at random: its labels are not
    # for choosing samples (a user without them could not)
    domains = [limit_domain(source, data.limit, "classification" if source.labelled else "none"),
               limit_domain(target, data.limit, "none")]
    domains = [to_grayscale(d) for d in domains] if data.grayscale else domains
    domains[1] = _sized_like(domains[1], domains[0])
    options = {k: v for k, v in (("image_size", m.image_size), ("max_length", m.max_length))
               if v is not None}
    domains[0], selection, weights = select_source(domains[0], domains[1], groups,
                                                   config.select, m.backbone, options)
    if selection is not None:  # the kept subset, too small to split: the selection's fault
        check_source_size(domains[0], selected=f"selection by {config.select.selector} at "
                          f"keep fraction {config.select.fraction:g}")
    # a source with numeric targets and no classes: the methods that apply to regression
    regression = is_regression(domains[0])
    run = adapt_regression_to_folder if regression else adapt_to_folder
    if weights is not None and regression:
        raise ConfigError(f"selector {config.select.selector!r} gives per-sample weights, "
                          "which adapting a regression does not take.",
                          hint="use a subset selector (knn, mmd_herding, task_similarity).")
    result = run(
        *domains, methods=t.methods, runs_dir=config.runs_dir, out=config.out,
        overwrite=config.overwrite, feature_map=config.feature_map, progress=progress,
        seeds=t.seeds, target_holdout=data.target_holdout, guard=t.guard, keep=t.keep,
        label_map=mapping, limit=data.limit,
        backbone=m.backbone, strategy=m.strategy, k=m.k, head=m.head,
        head_options={"hidden": [m.bottleneck]} if m.head == "mlp" else None,
        epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, transfer_weight=t.transfer_weight,
        select_epoch=t.select_epoch, backbone_options=options or None,
        pseudo_fraction=t.pseudo_fraction, track=config.track,
        **({"source_weight": weights} if weights is not None else {}),
        **({"selection": selection} if selection is not None and not regression else {}),
        **({"augment": t.augment} if t.augment else {}))
    return _with_selection(result, selection)


def _sized_like(target, source):
    """The target's images at the source's pixel size (the methods train both through one
    network, in batches of both), said in a warning; anything else as it is."""
    from graftlab.data.transforms import resized

    if source.modality != "image" or target.modality != "image" or \
            source.inputs.shape[1:3] == target.inputs.shape[1:3]:
        return target
    log.warning("target images are %dx%d, the source's %dx%d: the target is resized to the "
                "source's size (bilinear) to adapt", *target.inputs.shape[1:3],
                *source.inputs.shape[1:3])
    return resized(target, source.inputs.shape[1:3])


def _with_selection(result: dict, selection: dict | None) -> dict:
    """What the source kept, beside the run's results (selection.json in its folder)."""
    if selection is not None:
        _atomic.write_json(Path(result["run_folder"]) / "selection.json", selection)
        result["selection"] = selection
    return result
