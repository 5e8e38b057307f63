"""to_grayscale: luminance on three channels, labels kept, grey images unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from graftlab.data import Domain, to_grayscale
from graftlab.errors import DataError


def test_colours_become_their_luminance_and_labels_stay():
    x = np.zeros((3, 4, 4, 3), np.uint8)
    x[0, ..., 0] = 255  # red
    x[1, ..., 1] = 255  # green
    x[2] = 77           # already grey
    d = Domain("c", "image", x, labels=np.array([0, 1, 1]), classes=["a", "b"])
    g = to_grayscale(d)
    assert g.inputs.shape == x.shape and g.inputs.dtype == np.uint8
    assert (g.inputs[..., 0] == g.inputs[..., 2]).all()
    assert g.inputs[0, 0, 0, 0] == 76 and g.inputs[1, 0, 0, 0] == 150
    np.testing.assert_array_equal(g.inputs[2], x[2])  # grey in, the same grey out
    assert g.labels.tolist() == [0, 1, 1] and g.classes == ["a", "b"]
    assert g.meta["grayscale"] is True


def test_text_is_refused_with_the_fix():
    with pytest.raises(DataError, match="works on images, but domain .t. holds text"):
        to_grayscale(Domain("t", "text", ["a", "b"]))
