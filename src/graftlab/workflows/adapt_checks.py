"""The checks of ``graftlab adapt``'s options and data, before any training: methods, the
kept model's policy, the held-out share of the target, and source and target label sets
(renamed with ``--label-map`` where they are spelt differently)."""

from __future__ import annotations

import numpy as np

from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.methods import list_methods


def check_methods(methods: list[str]) -> list[str]:
    from graftlab.errors import unknown_name

    for name in methods:
        if name not in list_methods():
            raise unknown_name("adaptation method", name, list_methods())
    return ["source_only", *[m for m in dict.fromkeys(methods) if m != "source_only"]]


def _check_labels(source: Domain, target: Domain, mapping: dict[str, str] | None = None
                  ) -> Domain:
    """The target with labels coded in the source's class order (after ``mapping``, target
    name -> source name); refuses a target class the source lacks, naming both sides."""
    if source.modality != target.modality:  # before labels: the real problem comes first
        raise DataError(f"source {source.name!r} holds {source.modality}s but target "
                        f"{target.name!r} holds {target.modality}s; adaptation needs one "
                        "modality on both sides.",
                        hint="give source and target data of the same kind (and a backbone "
                        "that reads it).")
    if not source.labelled:
        raise DataError(f"source {source.name!r} has no labels; adaptation learns the task "
                        "from labelled source data.", hint="give the source's label column.")
    mapping = mapping or {}
    if not target.labelled or not target.classes or not source.classes:
        if mapping:
            lacking = "the target has no labels" if not target.labelled else \
                "the target's labels have no class names" if not target.classes else \
                "the source's labels have no class names"
            raise DataError(f"--label-map renames the target's classes to the source's, but "
                            f"{lacking}.", hint="drop --label-map.")
        return target
    unknown = sorted(set(mapping) - set(target.classes))
    if unknown:
        raise DataError(f"--label-map names {unknown}, which are not target classes "
                        f"(the target has {target.classes}).",
                        hint="write TARGET=SOURCE pairs with the target's class names first.")
    renamed = [mapping.get(c, c) for c in target.classes]
    extra = [c for c in target.classes if mapping.get(c, c) not in source.classes]
    if extra:
        missing = sorted(set(source.classes) - set(renamed))
        raise DataError(
            f"source and target label sets differ: the target has {extra} labels the source "
            f"lacks, and lacks {missing or 'none'} of the source's ({source.classes} vs "
            f"{renamed}).", hint=_label_map_hint(extra, missing))
    merged = sorted({name for name in renamed if renamed.count(name) > 1})
    if merged:
        import logging

        logging.getLogger(__name__).warning(
            "--label-map merges target classes into one source class (%s): each merged class "
            "counts as right when the model predicts that source class",
            "; ".join(f"{', '.join(c for c in target.classes if mapping.get(c, c) == m)} -> {m}"
                      for m in merged))
    code = np.array([source.classes.index(name) for name in renamed])
    return Domain(target.name, target.modality, target.inputs, code[target.labels],
                  list(source.classes), target.targets, dict(target.meta), origin=target.origin)


def _label_map_hint(extra: list[str], missing: list[str]) -> str:
    """A --label-map that pairs each target-only class with the most alike source-only one;
    where the source has none left for a class, that no map can fix it."""
    import difflib

    if not missing:
        return (f"the source has no class for {extra}: no --label-map can score those target "
                "samples; remove them from the target, or drop the target's labels (they only "
                "report target accuracy).")
    left, pairs = list(missing), []
    for name in extra:
        if not left:
            break
        match = (difflib.get_close_matches(name, left, n=1, cutoff=0.0) or left)[0]
        pairs.append(f"{name}={match}")
        left.remove(match)
    return (f"if the names differ only in spelling, map them: --label-map '{','.join(pairs)}' "
            "(label_map= in Python; check each pair), rename the target's classes, or drop "
            "its labels: they only report target accuracy.")


def parse_label_map(text: str | dict[str, str] | None) -> dict[str, str]:
    """``"pos=positive,neg=negative"`` -> {"pos": "positive", "neg": "negative"} (a mapping,
    e.g. from a YAML config, is taken as it is)."""
    if isinstance(text, dict):
        return {str(a): str(b) for a, b in text.items()}
    if not text:
        return {}
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    bad = [item for item in pairs if len(item) != 2 or not all(x.strip() for x in item)]
    if bad:
        raise DataError(f"--label-map {text!r} is not a list of TARGET=SOURCE pairs.",
                        hint="e.g. --label-map 'pos=positive,neg=negative'.")
    return {a.strip(): b.strip() for a, b in pairs}


def check_options(adapter_kw: dict) -> None:
    """Options that would otherwise fail only after features were extracted."""
    from graftlab.adapt.adapter import check_adapter_options

    check_adapter_options(adapter_kw.get("select_epoch"), adapter_kw.get("pseudo_fraction", 0.5),
                          adapter_kw.get("pseudo_weight", 1.0))


def check_target_holdout(fraction: float) -> None:
    if not 0 <= fraction < 1:
        raise ConfigError(f"--target-holdout {fraction} must be in [0, 1): the share of a "
                          "labelled target held out of training to score on.",
                          hint="0.2 (the default); 0 scores only on the target adapted to.")


KEEP = ("auto", "refined", "average", "selected")


def check_keep(keep: str, chosen: list[str]) -> None:
    if keep not in KEEP:
        raise ConfigError(f"keep={keep!r}: choose 'refined' (a student self-trained on the "
                          "adapted models' consensus), 'average' (the mean of the adapted "
                          "models' probabilities), 'selected' (the label-free pick) or 'auto' "
                          "(refined with two methods or more, else selected).")
    if keep in ("average", "refined") and len(chosen[1:]) < 2:
        raise ConfigError(f"keep={keep!r} needs the consensus of the adapted models, and there "
                          f"is one ({chosen[-1]}).", hint="give two methods or more, e.g. "
                          "--method dann,dan,coral,cdan,mcc (the default).")


def check_setups(chosen: list[str], adapter_kw: dict) -> None:
    """Before any training: every method has something to act on with the strategy and head
    asked for (otherwise the first adapted method would fail after source_only trained)."""
    from graftlab.adapt.adapter import Adapter, check_setup

    defaults = Adapter()
    strategy = adapter_kw.get("strategy") or defaults.strategy
    head = adapter_kw.get("head") or defaults.head
    for method in chosen:
        check_setup(method, strategy, head)


MIN_TARGET = 10  # the target is split (held-out part), and the domain distance cross-validates


def check_target_size(target: Domain, target_holdout: float, warn: bool = True) -> None:
    """Refuse a target too small to adapt to and score; warn when the labelled target's
    held-out part is so small that its accuracy is a coarse figure."""
    if len(target) < MIN_TARGET:
        raise DataError(f"target {target.name!r} has {len(target)} sample(s); adaptation needs "
                        f"at least {MIN_TARGET} (it aligns to the target's distribution, and "
                        "its checks cross-validate on it).",
                        hint="give more target samples (unlabelled ones are enough).")
    held = int(round(len(target) * target_holdout)) if target.labelled else 0
    if warn and 0 < held < 20:
        import logging

        logging.getLogger(__name__).warning(
            "the labelled target's held-out part has %d samples: each is worth %.0f points of "
            "held-out accuracy (a coarse figure); more target samples give a finer one", held,
            100 / held)
