"""Data: user folders and tables, in-memory arrays and bundled benchmarks, all as a Domain."""

from __future__ import annotations

from pathlib import Path

from graftlab.data.arrays import from_arrays
from graftlab.data.bundled import (DatasetSpec, get_dataset_spec, list_datasets, load_dataset,
                                   tagged_dataset)
from graftlab.data.domain import Domain, check_labelled, without_shared
from graftlab.data.fetch import fetch_vader
from graftlab.data.folders import load_image_folder
from graftlab.data.tables import load_table
from graftlab.data.tagged import TaggedSentences, read_conll
from graftlab.data.transforms import to_grayscale
from graftlab.errors import DataError, closest

__all__ = [
    "DatasetSpec", "Domain", "fetch_vader", "from_arrays", "get_dataset_spec", "list_datasets",
    "load_data", "load_dataset", "load_image_folder", "load_table", "to_grayscale",
    "without_shared",
    "TaggedSentences", "is_tagged", "load_tagged", "read_conll", "tagged_dataset",
]


def load_data(path_or_name: str | Path, *, labelled: bool | None = True,
              skip_corrupt: bool = False, **kw) -> Domain:
    """Load whatever ``path_or_name`` names: an image folder, a .csv/.jsonl table, or a bundled
    data set (``"mnist"``, ``"vader:movies"``). Other keyword arguments go to that loader.

    ``labelled``: True (the default) reads labels as the data lays them out (class
    sub-folders, a table's ``label_column``); False loads the inputs alone (any folder of
    images, loose or in sub-folders; a table without its label column; a bundled set
    unlabelled), as feature extraction or an adaptation target need; None takes labels where
    the data has them. ``skip_corrupt`` (image folders; ignored otherwise) leaves out image files
    that cannot be loaded, with a warning, instead of stopping with an error.
    """
    check_labelled(labelled)
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return load_image_folder(path, labelled=labelled, skip_corrupt=skip_corrupt, **kw)
    if path.exists():
        return load_table(path, labelled=labelled, **kw)
    names = [spec.name for spec in list_datasets()]
    text = str(path_or_name)
    if text.partition(":")[0] in names:
        domain = load_dataset(text, **kw)
        return domain.unlabelled() if labelled is False else domain
    guess = closest(text.partition(":")[0], names)
    raise DataError(
        f"{text!r} is neither an existing file or folder (no such path) nor a bundled data set. "
        f"Bundled data sets: {', '.join(names)}." + (f" Did you mean {guess!r}?" if guess else ""),
        hint="give the path of an image folder or a .csv/.jsonl table, or a bundled name "
        "such as 'mnist' or 'vader:movies'.",
    )


TAGGED_SUFFIXES = (".conll", ".conllu", ".bio", ".iob", ".iob2", ".bioes")


def is_tagged(path_or_name: str | Path) -> bool:
    """Whether data named so holds tagged sentences: a bundled tagged set (``wnut16:train``)
    or a file whose suffix says CoNLL/BIO (other files: ask for ``task="tokens"``)."""
    name = str(path_or_name)
    specs = {spec.name: spec for spec in list_datasets()}
    spec = specs.get(name.partition(":")[0])
    if spec is not None and not Path(name).expanduser().exists():
        return spec.task == "tokens"
    return Path(name).suffix.lower() in TAGGED_SUFFIXES


def load_tagged(path_or_name: str | Path, **options) -> TaggedSentences:
    """Tagged sentences for token classification: a CoNLL-style file (``read_conll``) or a
    bundled tagged data set by name (``"wnut16:test"``)."""
    path = Path(path_or_name).expanduser()
    if path.exists():
        return read_conll(path, **options)
    names = [spec.name for spec in list_datasets()]
    if str(path_or_name).partition(":")[0] not in names:
        raise DataError(f"{str(path_or_name)!r} is neither an existing file nor a bundled data "
                        "set.", hint="give a CoNLL-style file (token<TAB>tag per line) or a "
                        "bundled tagged set such as 'wnut16:train'.")
    return tagged_dataset(str(path_or_name), **options)
