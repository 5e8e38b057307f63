"""A Domain drawn from a data set (a sample, a greyscale copy) remembers its rows there, so
that the samples a derived set was made from (mnist_m from mnist) are still found after it."""

from __future__ import annotations

import numpy as np

from graftlab.data import to_grayscale, without_shared
from graftlab.data.domain import MADE_FROM, Domain, dataset_rows


def _sets(n=60):
    rng = np.random.default_rng(0)
    root = Domain("a", "image", rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8),
                  labels=np.arange(n) % 3, classes=["x", "y", "z"], meta={"dataset": "a"})
    made = np.arange(0, n, 2)  # derived sample i blends root sample 2i
    derived = Domain("b", "image", root.inputs[made] // 2, labels=root.labels[made],
                     classes=["x", "y", "z"], meta={"dataset": "b", MADE_FROM: ("a", made)})
    return root, derived, made


def test_a_sample_remembers_its_rows_in_the_data_set():
    root, _, _ = _sets()
    sample = root.sample(30, seed=1)
    rows = dataset_rows(sample)
    assert len(rows) == 30 and (root.inputs[rows] == sample.inputs).all()
    inner = sample.subset(np.array([0, 5]))  # a subset of the sample: rows compose
    assert (root.inputs[dataset_rows(inner)] == inner.inputs).all()
    again = sample.sample(12, seed=2)  # a sample of a sample: rows compose too
    assert (root.inputs[dataset_rows(again)] == again.inputs).all()
    grey = to_grayscale(sample)
    assert (dataset_rows(grey) == rows).all()


def test_shared_originals_are_found_in_samples_and_only_they_are_dropped():
    root, derived, made = _sets()
    source, target = root.sample(30, seed=1), derived.sample(20, seed=2, stratify=False)
    shared = set(made[dataset_rows(target)].tolist()) & set(dataset_rows(source).tolist())
    kept, _, dropped = without_shared(source, target)
    assert dropped["source"] == len(shared) > 0
    assert not set(dataset_rows(kept).tolist()) & shared
    # once dropped, a sample of what is left shares nothing: nothing more is dropped (the
    # rows of a sample used to read as 0..n-1, dropping samples and whole classes wrongly)
    clean, _, _ = without_shared(root, derived)
    again, _, dropped = without_shared(clean.sample(20, seed=3), target)
    assert dropped["source"] == 0 and len(again) == 20
    assert sorted(np.bincount(again.labels).tolist()) == [6, 7, 7]  # every class kept
    grey, _, dropped = without_shared(to_grayscale(clean.sample(20, seed=3)),
                                      to_grayscale(target))
    assert dropped["source"] == 0

