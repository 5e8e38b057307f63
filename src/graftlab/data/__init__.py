"""Data: user folders and tables, in-memory arrays and bundled benchmarks, all as a Domain."""

from __future__ import annotations

from pathlib import Path

from graftlab.data.arrays import from_arrays
from graftlab.data.bundled import DatasetSpec, get_dataset_spec, list_datasets, load_dataset
from graftlab.data.domain import Domain
from graftlab.data.fetch import fetch_vader
from graftlab.data.folders import load_image_folder
from graftlab.data.tables import load_table
from graftlab.data.transforms import to_grayscale
from graftlab.errors import DataError, closest

__all__ = [
    "DatasetSpec", "Domain", "fetch_vader", "from_arrays", "get_dataset_spec", "list_datasets",
    "load_data", "load_dataset", "load_image_folder", "load_table", "to_grayscale",
]


def load_data(path_or_name: str | Path, **kw) -> Domain:
    """Load whatever ``path_or_name`` names: an image folder, a .csv/.jsonl table, or a bundled
    data set (``"mnist"``, ``"vader:movies"``). Keyword arguments go to that loader."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return load_image_folder(path, **kw)
    if path.exists():
        return load_table(path, **kw)
    names = [spec.name for spec in list_datasets()]
    text = str(path_or_name)
    if text.partition(":")[0] in names:
        return load_dataset(text, **kw)
    guess = closest(text.partition(":")[0], names)
    raise DataError(
        f"{text!r} is neither an existing file or folder (no such path) nor a bundled data set. "
        f"Bundled data sets: {', '.join(names)}." + (f" Did you mean {guess!r}?" if guess else ""),
        hint="give the path of an image folder or a .csv/.jsonl table, or a bundled name "
        "such as 'mnist' or 'vader:movies'.",
    )
