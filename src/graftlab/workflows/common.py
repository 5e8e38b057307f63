"""Plumbing the workflows share: loading user data with the column options a table takes, and
the checks every command makes before any work starts (backbone, output location, held-out
set), and the run folder's lifecycle (never left saying "running")."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graftlab import _atomic
from graftlab.data import load_data
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.report import is_graftlab_run, not_a_run_error

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from graftlab.config import ProbeData


def load_with_columns(data: str | Path, *, text_column: str = "text",
                      label_column: str | None = "label", target_column: str | None = None,
                      labelled: bool | None = True, skip_corrupt: bool = False,
                      image_size: int | None = None, min_classes: int = 2) -> Domain:
    """load_data, with the column options only for a table (folders and bundled data sets take
    no such options and would refuse them). ``labelled`` and ``skip_corrupt`` as in
    :func:`graftlab.data.load_data`; ``image_size``: an image folder is decoded straight to
    that size (once, not to 224 first; a bundled set keeps its own)."""
    few = {} if min_classes == 2 else {"min_classes": min_classes}  # files and folders only
    if Path(data).expanduser().is_file() or str(data).endswith((".csv", ".jsonl")):
        return load_data(str(data), text_column=text_column, label_column=label_column,
                         target_column=target_column, labelled=labelled, **few)
    if Path(data).expanduser().is_dir():
        sized = {} if image_size is None else {"image_size": image_size}
        return load_data(str(data), labelled=labelled, skip_corrupt=skip_corrupt, **sized,
                         **few)
    return load_data(str(data), labelled=labelled, skip_corrupt=skip_corrupt)


# ------------------------------------------------------------------------------ the backbone
MIN_TOKENS = 3  # a text encoder's [CLS] and [SEP], and one token of the text


def check_backbone(name: Any, *, image_size: int | None = None,
                   max_length: int | None = None) -> str | None:
    """The backbone's modality, after checking the name (registered, or an ``hf:`` folder that
    exists) and that ``image_size`` / ``max_length`` fit it. Loads no weights. A backbone
    object (not a name) is taken as it is: None."""
    from graftlab.backbones.registry import describe_backbone, get_spec, prefix_modality

    for flag, value in (("--image-size", image_size), ("--max-length", max_length)):
        if value is not None and value < 1:  # 0 never silently means "the default"
            raise ConfigError(f"{flag} must be an integer >= 1, got {value}.")
    if not isinstance(name, str):
        return getattr(name, "modality", None)
    if name.startswith("hf:"):
        folder = Path(name[3:]).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(
                f"backbone {name!r}: {folder} is not a Hugging Face model folder "
                f"({'no config.json in it' if folder.is_dir() else 'it does not exist'}).",
                hint="point hf:PATH at a folder saved with save_pretrained(), or pick a "
                "registered backbone (`graftlab backbones`).")
        modality = "text"
    else:
        spec = get_spec(name)  # unknown names: the registry's did-you-mean error
        modality = spec.modality
        if modality == "text" and max_length is not None and max_length > spec.input_size:
            raise ConfigError(f"--max-length (model.max_length) for {name} must be at most "
                              f"{spec.input_size} tokens (its longest input), got {max_length}.")
    if image_size is not None and modality != "image":
        raise ConfigError(f"--image-size (model.image_size) applies to image backbones; "
                          f"{name} is a {modality} backbone.",
                          hint="drop --image-size (texts are cut with --max-length).")
    if max_length is not None and modality != "text":
        raise ConfigError(f"--max-length (model.max_length) applies to text backbones; "
                          f"{name} is an {modality} backbone.",
                          hint="drop --max-length (images are resized with --image-size).")
    if max_length is not None and max_length < MIN_TOKENS:  # the tokenizer would not cut
        raise ConfigError(f"--max-length (model.max_length) {max_length} leaves no room for a "
                          f"word: a text takes its two special tokens ([CLS], [SEP]) and at "
                          f"least one more, so at least {MIN_TOKENS}.",
                          hint="e.g. --max-length 64 (texts longer than that are cut).")
    if not prefix_modality(name):
        options = {"image_size": image_size} if image_size is not None else {}
        describe_backbone(name, **options)  # e.g. an image size the trunk cannot take
    return modality


def load_labelled(data: Any, modality: str, backbone: str, purpose: str) -> Domain:
    """``data.path`` loaded with the section's columns; refused when it has no labels
    (``purpose``, e.g. "fine-tuning", needs them) or holds the other modality."""
    domain = load_with_columns(data.path, text_column=data.text_column,
                               label_column=data.label_column, skip_corrupt=data.skip_corrupt)
    if not domain.labelled:
        raise DataError(f"data {domain.name!r} has no labels; {purpose} needs labelled data.",
                        hint="set data.label_column to the column that holds the labels.")
    check_modality(domain, modality, backbone)
    return domain


def check_modality(domain: Domain, modality: str | None, backbone: Any,
                   what: str = "data") -> None:
    if modality is not None and domain.modality != modality:
        raise DataError(f"{what} {domain.name!r} holds {domain.modality}s but backbone "
                        f"{getattr(backbone, 'name', backbone)!r} reads {modality}s.",
                        hint=f"pick a {domain.modality} backbone with --backbone/-b "
                        "(`graftlab backbones` lists them).")


# ---------------------------------------------------------------------- the output location
def check_writable(path: str | Path, option: str) -> None:
    """Refuse, before any work, a location where a folder or file cannot be written."""
    path = Path(path).expanduser()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{option} {path} cannot be written: {probe} is a file, not a folder.",
                          hint=f"point {option} at a folder (new or existing).")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path} is not writable (no permission to write in "
                          f"{probe}).", hint=f"point {option} at a folder you can write to.")


def check_cache(cache: bool = True) -> None:
    """The feature cache must be writable when it is used."""
    if cache:
        from graftlab.features import FeatureCache

        FeatureCache().check_writable()


def user_path(path: str | Path | None) -> Path | None:
    """A path as the user meant it: ``~`` expanded (a shell leaves it in ``--out=~/x``)."""
    return None if path is None else Path(path).expanduser()


def check_out_folder(out: str | Path | None, runs_dir: str | Path, overwrite: bool,
                     kind: str) -> None:
    """What :func:`prepare_run_folder` will accept, checked without creating anything."""
    out, runs_dir = user_path(out), user_path(runs_dir)
    if out is None:
        check_writable(runs_dir, "--runs-dir")
        return
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file, not a folder.",
                          hint="point --out at a new or empty folder.")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise ConfigError(f"run folder {folder} already exists and is not empty; graftlab "
                              "never overwrites a run.",
                              hint="choose another --out, drop --out for a fresh dated folder, "
                              "or pass --overwrite to replace it.")
        if not is_graftlab_run(folder, kind):  # only a run of this command graftlab wrote
            raise not_a_run_error(folder, kind)
    check_writable(folder, "--out")


def prepare_run_folder(out: str | Path | None, runs_dir: str | Path, overwrite: bool,
                       kind: str = "compare") -> Path:
    """A new run folder; an existing one only with ``overwrite`` and only if it is a run
    folder graftlab wrote (its results.json in a graftlab format; never anything else). The
    earlier run is removed: :func:`run_folder` keeps it aside until the new one has results.
    OS errors become ConfigErrors."""
    out, runs_dir = user_path(out), user_path(runs_dir)
    with _os_errors(out or runs_dir):
        return _fresh(out, runs_dir, overwrite, kind)


def _fresh(out: str | Path | None, runs_dir: str | Path, overwrite: bool, kind: str,
           aside: Path | None = None) -> Path:
    from graftlab.report import new_run_folder

    check_out_folder(out, runs_dir, overwrite, kind)
    if out is None:
        return new_run_folder(runs_dir, kind)
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        if aside is None:
            shutil.rmtree(folder)
        else:
            os.replace(folder, aside)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _os_errors(where: str | Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"cannot create the run folder under {where}: "
                          f"{exc.strerror or exc}.",
                          hint="point --out or --runs-dir at a folder you can write to.") from None


@contextmanager
def run_folder(out: str | Path | None, runs_dir: str | Path, overwrite: bool,
               kind: str) -> Iterator[Path]:
    """The run folder for the work in the ``with`` block (see :func:`prepare_run_folder`),
    settled if the work fails (see :func:`settled`). An earlier run that ``--overwrite``
    replaces is kept aside until the new run finished something: if it fails before that, the
    earlier run is put back, so nothing already written is lost."""
    out, runs_dir = user_path(out), user_path(runs_dir)
    created = out is None or not Path(out).exists()
    aside = None if out is None else Path(out).with_name(f".{Path(out).name}.previous")
    with _os_errors(out or runs_dir):
        if aside is not None and aside.exists():
            shutil.rmtree(aside)  # left by a process that was killed
        folder = _fresh(out, runs_dir, overwrite, kind, aside)
    try:
        with settled(folder, created):
            yield folder
    except BaseException:
        if aside is not None and aside.exists() and not any(folder.iterdir()):
            folder.rmdir()
            os.replace(aside, folder)  # nothing new finished: the earlier run stays
        raise
    finally:
        if aside is not None and aside.exists():
            shutil.rmtree(aside, ignore_errors=True)


def new_folder(runs_dir: str | Path, kind: str) -> Path:
    """A fresh dated run folder; OS errors become ConfigErrors."""
    return prepare_run_folder(None, runs_dir, False, kind)


def check_augment(preset: object, modality: str) -> None:
    """An augmentation preset that does not fit the backbone's modality, refused before any
    work (naming the presets that fit); True/False/None pass (they are not presets)."""
    if isinstance(preset, str):
        from graftlab.augment import build_preset

        build_preset(preset, modality)


@contextmanager
def early_folder(runs_dir: str | Path, kind: str) -> Iterator[Path]:
    """A fresh dated run folder made before the work (a tracker writes into it meanwhile);
    removed if the work fails before its results are written (metrics.json)."""
    folder = new_folder(runs_dir, kind)
    try:
        yield folder
    except BaseException:
        if not (folder / "metrics.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise


@contextmanager
def settled(folder: Path, created: bool) -> Iterator[None]:
    """Never leave a run folder saying "running": when the work fails, a folder where no run
    finished is removed (or emptied, when it existed before), else its results.json is marked
    ``failed`` (``interrupted`` for Ctrl-C) with the error's message."""
    try:
        yield
    except BaseException as exc:
        _settle(folder, created, exc)
        raise


def _settle(folder: Path, created: bool, exc: BaseException) -> None:
    path = folder / "results.json"
    try:
        results = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        results = None
    if results is not None and results.get("status") != "running":
        return  # the workflow settled it (e.g. compare's interrupted report)
    if not results or not results.get("runs"):
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for child in folder.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        return
    results["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    results["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    _atomic.write_json(path, results)


# ----------------------------------------------------------------------- the held-out set
def align_test(train: Domain, test: Domain, what: str = "--test-data") -> Domain:
    """``test`` with its labels coded in ``train``'s class order; refuses another modality, a
    class the training data lacks, or missing labels or targets."""
    if test.modality != train.modality:
        raise DataError(f"{what} {test.name!r} holds {test.modality}s but the training data "
                        f"{train.name!r} holds {train.modality}s.",
                        hint=f"give {what} data of the same kind as the training data.")
    if not train.labelled:
        if test.targets is None:
            raise DataError(f"{what} {test.name!r} has no numeric targets to score against.",
                            hint="give it the same --target-column as the training data.")
        return test
    if not test.labelled:
        raise DataError(f"{what} {test.name!r} has no labels; a held-out set is scored against "
                        "its labels.", hint="give it labels laid out like the training data's.")
    if not (train.classes and test.classes):
        return test
    from graftlab.data.tables import canonical_number as number

    same = {number(c): c for c in train.classes if number(c) is not None}
    spelt = {c: same[number(c)] for c in test.classes
             if c not in train.classes and number(c) is not None and number(c) in same}
    if spelt:  # one number spelt two ways across the files ("01" and "1"): one class
        log.warning("%s %r spells training classes otherwise: %s", what, test.name,
                    ", ".join(f"{a!r} taken as {b!r}" for a, b in spelt.items()))
        test = dataclasses.replace(test, classes=[spelt.get(c, c) for c in test.classes])
    extra = [c for c in test.classes if c not in train.classes]
    if extra:
        raise DataError(f"{what} {test.name!r} has classes the training data lacks: {extra} "
                        f"(training classes: {train.classes}).",
                        hint="the held-out set must use the training data's class names.")
    code = np.array([train.classes.index(c) for c in test.classes])
    return dataclasses.replace(test, labels=code[test.labels], classes=list(train.classes))


def load_test(path: str | None, train: Domain, *, text_column: str = "text",
              label_column: str | None = "label", target_column: str | None = None,
              skip_corrupt: bool = False) -> Domain | None:
    """The explicit held-out set (``--test-data``), aligned to ``train``; None without one."""
    if path is None:
        return None
    test = load_with_columns(path, text_column=text_column, label_column=label_column,
                             target_column=target_column, skip_corrupt=skip_corrupt,
                             min_classes=1)  # some of the training classes may do
    return align_test(train, test)


def load_with_test(data: ProbeData) -> tuple[Domain, Domain | None]:
    """A command's data section loaded: the data set at ``data.path`` and its explicit
    held-out set (``data.test_data``; None without one), with the same columns. A target
    column means regression: the label column is then not read."""
    columns = {"text_column": data.text_column, "target_column": data.target_column,
               "label_column": None if data.target_column else data.label_column}
    domain = load_with_columns(data.path, skip_corrupt=data.skip_corrupt, **columns)
    return domain, load_test(data.test_data, domain, skip_corrupt=data.skip_corrupt, **columns)


def limit_domain(domain: Domain, limit: int | None, task: str, seed: int = 0) -> Domain:
    """A stratified sample of ``limit`` rows, as a data set of its own (its own cache root)."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be an integer >= 2, got {limit}.")
    if not limit or limit >= len(domain):
        return domain
    n_classes = len(np.unique(domain.labels)) if task == "classification" else 1
    if limit < n_classes:
        raise ConfigError(f"--limit {limit} is fewer than the {n_classes} classes of "
                          f"{domain.name!r}: a stratified sample needs one per class.",
                          hint=f"raise --limit to {n_classes} or more (or drop it).")
    return domain.sample(limit, seed, stratify=task == "classification")


def class_names(domain: Domain, labels: np.ndarray) -> np.ndarray:
    """The user's label names for class ids (what a saved model must predict)."""
    return np.asarray(domain.classes)[labels] if domain.classes else labels


def check_source_size(source: Domain, holdout: float = 0.1, limit: int | None = None,
                      selected: str | None = None) -> None:
    """The source is split (stratified) into training and a held-out part that scores every
    method: each class needs two samples, and the held-out part one per class. ``selected``
    names the selection that left ``source`` (its message then blames that, not --limit)."""
    if not source.labelled:
        return
    counts = np.bincount(source.labels)
    n_classes = int((counts > 0).sum())
    if (counts[counts > 0] >= 2).all() and len(source) * holdout >= n_classes:
        return
    need = math.ceil(n_classes / holdout)
    message = (f"source {source.name!r} has {len(source)} samples of {n_classes} classes; its "
               f"{holdout:.0%} held-out part needs one per class ({need} samples in all) and "
               "each class two.")
    if selected is not None:
        raise ConfigError(f"{selected} kept too few: {message}",
                          hint="keep a larger share (--keep-fraction), or give more source "
                          "samples.")
    if limit is not None:
        raise ConfigError(f"--limit {limit} is too few: {message}",
                          hint=f"raise --limit to {need} or more (or drop it).")
    raise DataError(message, hint="add source samples.")
