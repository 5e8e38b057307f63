"""A source pool and its named parts: ``mnist+fashion_mnist+digits`` (bundled names), a folder
whose sub-folders are the parts (each a folder of class sub-folders), or a CSV/JSONL table with
a ``source`` column. Features are extracted per part, so each part's cache entry serves every
pool it belongs to."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graftlab.data import load_data
from graftlab.data.domain import Domain
from graftlab.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Pool:
    """Named parts of one source pool, in order; labels share one class list."""

    parts: list[tuple[str, Domain]]
    classes: list[str]
    dropped: dict[str, int] = field(default_factory=dict)  # per part: made the target
    duplicates: dict[str, int] = field(default_factory=dict)  # per part: also in the target

    @property
    def groups(self) -> np.ndarray:
        return np.concatenate([[name] * len(d) for name, d in self.parts]).astype(str)

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate([d.labels for _, d in self.parts])

    def domain(self, index: np.ndarray | None = None, name: str = "pool") -> Domain:
        """The parts joined as one Domain (or the samples at ``index`` of it)."""
        first = self.parts[0][1]
        inputs = (np.concatenate([d.inputs for _, d in self.parts]) if first.modality == "image"
                  else [t for _, d in self.parts for t in d.inputs])
        joined = Domain(name, first.modality, inputs, self.labels, list(self.classes),
                        meta={"parts": [n for n, _ in self.parts]})
        return joined if index is None else joined.subset(index)


def load_pool(spec: str, *, text_column: str = "text", label_column: str = "label",
              source_column: str = "source", skip_corrupt: bool = False,
              target: Domain | None = None) -> Pool:
    """The pool that ``spec`` names (see the module's docstring); with ``target``, each part
    without the samples the target was made from (mnist's digits behind mnist_m: see
    :func:`~graftlab.data.without_shared`), their number per part in ``Pool.dropped``."""
    pool = _load_pool(spec, text_column, label_column, source_column, skip_corrupt)
    if target is not None:
        from graftlab.data import without_shared

        parts, pool.dropped, pool.duplicates = [], {}, {}
        seen = {_content(target, i) for i in range(len(target))}
        for name, d in pool.parts:
            kept, _, dropped = without_shared(d, target)
            if dropped["source"]:
                pool.dropped[name] = dropped["source"]
            twins = np.array([_content(kept, i) in seen for i in range(len(kept))], bool)
            if twins.any():  # the target itself in the pool: selection would find it first
                if twins.all():
                    raise DataError(f"every sample of pool part {name!r} is also in the target: "
                                    "the target is a part of the pool.",
                                    hint="leave the target out of the pool.")
                pool.duplicates[name] = int(twins.sum())
                kept = kept.subset(np.flatnonzero(~twins))
            parts.append((name, kept))
        pool.parts = parts
        if pool.duplicates:
            log.warning("left out of the pool, as samples also in the target: %s",
                        ", ".join(f"{n} of {p}" for p, n in pool.duplicates.items()))
    return pool


def _content(domain: Domain, i: int) -> bytes:
    """A digest of a sample's content (an image's pixels with its shape, a text's UTF-8)."""
    import hashlib

    x = domain.inputs[i]
    if isinstance(x, str):
        data = x.encode("utf-8", "surrogatepass")
    else:
        x = np.ascontiguousarray(x)
        data = str(x.shape).encode() + x.tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()


def _load_pool(spec: str, text_column: str, label_column: str, source_column: str,
               skip_corrupt: bool) -> Pool:
    path = Path(spec).expanduser()
    if path.is_dir():
        subs = part_folders(path)
        if not subs:
            raise DataError(f"pool folder {str(path)!r} has no sub-folders; each part of the "
                            "pool is a sub-folder (of class folders).")
        parts = [(p.name, load_data(p, skip_corrupt=skip_corrupt)) for p in subs]
    elif path.is_file():
        parts = _table_parts(path, text_column, label_column, source_column)
    else:
        names = [n for n in spec.split("+") if n]
        if len(names) < 2:
            raise DataError(f"pool {spec!r} has one part; selection chooses between parts or "
                            "samples of a pool of several.",
                            hint="join bundled names with '+', e.g. mnist+fashion_mnist+digits, "
                            "or give a folder of part folders or a table with a source column.")
        parts = [(n, load_data(n)) for n in names]
    return Pool(*_aligned(parts))


def part_folders(path: Path) -> list[Path]:
    """The non-hidden sub-folders of ``path``, sorted: a folder pool's parts."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def looks_like_pool(path: Path) -> bool:
    """A folder laid out as parts of class folders: two parts or more, each holding no image
    of its own and the same two class folders or more (hidden ones aside). A labelled set
    whose class folders hold sub-folders of their own can look the same; who reads a folder
    this way says so."""
    parts = part_folders(path)
    if len(parts) < 2 or any(q.is_file() and not q.name.startswith(".") for p in parts
                             for q in p.iterdir()):
        return False
    classes = [{q.name for q in part_folders(p)} for p in parts]
    return len(classes[0]) >= 2 and all(c == classes[0] for c in classes)


def _table_parts(path: Path, text_column: str, label_column: str, source_column: str
                 ) -> list[tuple[str, Domain]]:
    import pandas as pd

    table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_json(path, lines=True)
    if source_column not in table.columns:
        raise DataError(f"table {str(path)!r} has no column {source_column!r} naming each row's "
                        f"part of the pool; its columns: {', '.join(map(str, table.columns))}.",
                        hint="name the column with --source-column.")
    domain = load_data(path, text_column=text_column, label_column=label_column)
    if len(domain) != len(table):
        raise DataError(f"table {str(path)!r}: {len(table)} rows but {len(domain)} samples "
                        "loaded; remove empty rows so each row keeps its part.")
    missing = np.flatnonzero(table[source_column].isna().to_numpy()
                             | (table[source_column].astype(str).str.strip() == "").to_numpy())
    if len(missing):
        lines = ", ".join(str(i + 2) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"table {str(path)!r}: {len(missing)} row(s) name no part in column "
                        f"{source_column!r} (line(s) {lines}).",
                        hint="fill in each row's part of the pool, or drop those rows.")
    sources = table[source_column].astype(str).to_numpy()
    return [(name, domain.subset(np.flatnonzero(sources == name), name=name))
            for name in dict.fromkeys(sources.tolist())]


def _aligned(parts: list[tuple[str, Domain]]) -> tuple[list[tuple[str, Domain]], list[str]]:
    """Parts of one kind and image size, their labels on one class list: the same names, or
    (a part relabelled onto the first's labels, as in a poisoned pool) the same count."""
    first_name, first = parts[0]
    out = []
    for name, d in parts:
        if not d.labelled:
            raise DataError(f"pool part {name!r} has no labels; every source part needs them.")
        if d.modality != first.modality:
            raise DataError(f"pool part {name!r} holds {d.modality} but {first_name!r} holds "
                            f"{first.modality}; a pool is of one kind.")
        if d.modality == "image" and d.inputs.shape[1:] != first.inputs.shape[1:]:
            from graftlab.data.transforms import resized

            log.warning("pool part %r has images of %s but %r of %s: resized to %r's size "
                        "(bilinear)", name, tuple(d.inputs.shape[1:3]), first_name,
                        tuple(first.inputs.shape[1:3]), first_name)
            d = resized(d, first.inputs.shape[1:3])
        if d.classes != first.classes:
            shared = sorted(set(d.classes) & set(first.classes))
            if shared:  # by position would turn one part's class into another of the same name
                raise DataError(
                    f"pool part {name!r} has classes {sorted(d.classes)} and {first_name!r} "
                    f"{sorted(first.classes)}: they share {shared} but not the rest, so "
                    "neither their names nor their positions line them up.",
                    hint="give the parts the same class names (rename or drop the odd "
                    "folders or labels).")
            if len(d.classes) != len(first.classes):
                raise DataError(f"pool part {name!r} has {len(d.classes)} classes but "
                                f"{first_name!r} {len(first.classes)}; the parts must share "
                                "their labels.")
            log.warning("pool part %r: its classes %s are taken as %s (by position)", name,
                        d.classes[:3], first.classes[:3])
        out.append((name, d))
    return out, list(first.classes)
