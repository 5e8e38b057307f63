"""A labelled (or unlabelled) data set from one domain: the unit every graftlab step consumes."""

from __future__ import annotations

import dataclasses

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from graftlab.errors import ConfigError, DataError

Modality = Literal["image", "text"]

# meta key of a data set made from another one's samples: (that data set's name, the rows of
# it that sample i of this one was made from), e.g. mnist_m from mnist's digits
MADE_FROM = "made_from"
# where a Domain that is a data set of its own (a sample, a greyscale copy) came from: its
# samples' rows in the data set it was drawn from, so that made_from still finds them
ROWS = "dataset_rows"


@dataclass
class Domain:
    """Inputs, optional labels and metadata of one domain.

    ``inputs`` holds images as a uint8 array ``(N, H, W, 3)`` (RGB, all the same size) or texts
    as a list of ``str``. ``labels`` are integer class ids into ``classes`` (or None when the
    domain is unlabelled, e.g. a target domain). ``targets`` keeps a raw continuous value per
    sample when one exists (VADER's mean rating), for regression.
    """

    name: str
    modality: Modality
    inputs: np.ndarray | list[str]
    labels: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    targets: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    # (root domain, row indices) when this domain is a subset: lets the feature cache serve a
    # split from one extraction of the whole data set.
    origin: tuple[Domain, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.modality not in ("image", "text"):
            raise DataError(
                f"domain {self.name!r}: modality must be 'image' or 'text', got {self.modality!r}."
            )
        if self.modality == "image":
            arr = np.asarray(self.inputs)
            if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
                raise DataError(
                    f"domain {self.name!r}: images must be a uint8 array (N, H, W, 3), "
                    f"got dtype {arr.dtype} and shape {arr.shape}.",
                    hint="convert greyscale with np.repeat(x[..., None], 3, -1) and scale to 0-255.",
                )
            self.inputs = arr
        else:
            self.inputs = [str(t) for t in self.inputs]
        if len(self) == 0:
            raise DataError(f"domain {self.name!r} is empty: it holds no samples.")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self),):
                raise DataError(
                    f"domain {self.name!r}: {len(self)} inputs but labels of shape "
                    f"{self.labels.shape}; give one label per input."
                )
            if self.classes and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
                raise DataError(
                    f"domain {self.name!r}: labels must be ids in 0..{len(self.classes) - 1}."
                )
        if self.targets is not None:
            self.targets = np.asarray(self.targets, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def inputs_at(self, index: np.ndarray) -> np.ndarray | list[str]:
        """The raw inputs at ``index`` (an image array, or a list of texts)."""
        if self.modality == "image":
            return self.inputs[np.asarray(index)]
        return [self.inputs[i] for i in index]

    def subset(self, index: np.ndarray, name: str | None = None) -> Domain:
        """A new domain holding the samples at ``index`` (same classes); it remembers its
        ``origin`` (the root domain and the rows there)."""
        index = np.asarray(index, dtype=np.int64)
        inputs = self.inputs_at(index)
        origin = (self.origin[0], self.origin[1][index]) if self.origin else (self, index)
        return Domain(
            name=name or self.name,
            modality=self.modality,
            inputs=inputs,
            labels=None if self.labels is None else self.labels[index],
            classes=list(self.classes),
            targets=None if self.targets is None else self.targets[index],
            meta=dict(self.meta),
            origin=origin,
        )

    def sample(self, n: int, seed: int = 0, *, stratify: bool = True) -> Domain:
        """``n`` samples drawn at random, stratified by class label where there are labels
        and ``stratify`` (bundled sets come sorted by class, so ``inputs[:n]`` would hold one
        class; an adaptation target is drawn with ``stratify=False``: its labels never choose),
        as a data set of its own: its features are extracted and cached for these alone."""
        from sklearn.model_selection import train_test_split

        if n >= len(self):
            return self
        labels = self.labels if stratify else None
        if labels is not None and n < len(np.unique(labels)):
            raise DataError(f"a sample of {n} from {self.name!r} cannot hold one of each of its "
                            f"{len(np.unique(labels))} classes.",
                            hint="draw more, or use unlabelled() first.")
        index, _ = train_test_split(np.arange(len(self)), train_size=n, random_state=seed,
                                    stratify=labels)
        index = np.sort(index)
        return dataclasses.replace(self.subset(index), origin=None,
                                   meta={**self.meta, ROWS: dataset_rows(self)[index]})

    def unlabelled(self) -> Domain:
        """The same inputs without labels (how a target domain is handed to adaptation)."""
        return Domain(self.name, self.modality, self.inputs, None, list(self.classes), None,
                      dict(self.meta), origin=self.origin)

    def fingerprint(self) -> str:
        """A content hash of the inputs (not the labels): the data key of the feature cache."""
        h = hashlib.sha256(self.modality.encode())
        if self.modality == "image":
            h.update(str(self.inputs.shape).encode())
            h.update(np.ascontiguousarray(self.inputs).data)
        else:
            for text in self.inputs:
                h.update(text.encode("utf-8"))
                h.update(b"\0")
        return h.hexdigest()[:32]

    def describe(self) -> dict:
        """Size, classes and counts, for tables and run records."""
        out = {"name": self.name, "modality": self.modality, "size": len(self),
               "classes": list(self.classes)}
        if self.labels is not None:
            out["class_counts"] = np.bincount(self.labels, minlength=self.num_classes).tolist()
        if self.modality == "image":
            out["image_shape"] = list(self.inputs.shape[1:])
        return out


def check_labelled(labelled: object) -> None:
    """The one check of the loaders' ``labelled`` option: True (labels as the data lays them
    out), False (inputs alone) or None (labels where the data has them)."""
    if labelled not in (True, False, None):
        raise ConfigError(f"labelled must be True, False or None (labels where the data has "
                          f"them), got {labelled!r}.")


def dataset_rows(domain: Domain) -> np.ndarray:
    """Row indices of ``domain``'s samples in the data set it was loaded as: through its
    ``origin`` (a subset), or the rows a sample or copy remembers (``meta[ROWS]``)."""
    root, rows = domain.origin if domain.origin is not None else (domain, None)
    base = root.meta.get(ROWS)
    if base is None or len(base) != len(root):  # a root as loaded (or grown since: edits)
        base = np.arange(len(root))
    return np.asarray(base) if rows is None else np.asarray(base)[rows]


def shared_originals(original: Domain, derived: Domain) -> np.ndarray:
    """Positions in ``original`` of the samples that ``derived`` was made from (its
    ``meta["made_from"]`` names ``original``'s data set); empty when it was not. Both must be
    whole data sets, or subsets, samples or copies of them, which remember their rows."""
    made = derived.meta.get(MADE_FROM)
    root = original.origin[0] if original.origin is not None else original
    if not made or made[0] != root.meta.get("dataset"):
        return np.zeros(0, dtype=np.int64)
    used = np.asarray(made[1])[dataset_rows(derived)]
    return np.flatnonzero(np.isin(dataset_rows(original), used))


def without_shared(source: Domain, target: Domain) -> tuple[Domain, Domain, dict]:
    """Source and target with no underlying sample in common: where one was made from the
    other's samples (mnist_m from mnist's digits), those originals are dropped from the
    domain that holds them, so that no target image is a blend of a digit trained on (or the
    other way round). Returns both and ``{"source": n, "target": m}`` dropped."""
    dropped = {"source": 0, "target": 0}
    for side, original, derived in (("source", source, target), ("target", target, source)):
        shared = shared_originals(original, derived)
        if len(shared):
            keep = np.setdiff1d(np.arange(len(original)), shared)
            if not len(keep):
                raise DataError(f"every sample of {side} {original.name!r} is one that "
                                f"{derived.name!r} was made from; nothing is left to use.",
                                hint=f"use another {side}.")
            dropped[side] = len(shared)
            reduced = original.subset(keep)
            source, target = (reduced, target) if side == "source" else (source, reduced)
    return source, target, dropped
