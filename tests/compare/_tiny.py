"""A tiny image data set for the compare tests (a module with a unique name: importable from
any test file, unlike conftest)."""

from __future__ import annotations

import numpy as np

from graftlab.data import Domain

KW = {"image_size": 32, "epochs": 2, "batch_size": 16, "seeds": 2, "test_size": 0.25}
STRATEGIES = ["linear_probe", "last_k", "full"]


def tiny_domain(per_class: int = 16) -> Domain:
    """Three classes told apart by where a bright square sits."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 90, (3 * per_class, 32, 32, 3), dtype=np.uint8)
    y = np.repeat(np.arange(3), per_class)
    for i, label in enumerate(y):
        r, c = [(2, 2), (18, 18), (2, 18)][label]
        x[i, r:r + 12, c:c + 12] = 250
    return Domain("squares", "image", x, labels=y, classes=["tl", "br", "tr"])
