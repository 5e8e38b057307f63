"""from_arrays: images (RGB, greyscale, floats), texts, labels, and every error path."""

import numpy as np
import pytest

from graftlab.data import from_arrays
from graftlab.errors import DataError


def test_rgb_uint8_passes_through():
    X = np.random.default_rng(0).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    d = from_arrays(X, [0, 1, 1, 0])
    assert d.name == "arrays" and d.modality == "image"
    assert np.array_equal(d.inputs, X) and d.classes == ["0", "1"]


@pytest.mark.parametrize("shape", [(3, 5, 5), (3, 5, 5, 1)])
def test_greyscale_repeats_to_three_channels(shape):
    X = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    d = from_arrays(X)
    assert d.inputs.shape == (3, 5, 5, 3) and d.labels is None
    assert (d.inputs[..., 0] == d.inputs[..., 2]).all()


def test_floats_in_unit_range_are_scaled():
    X = np.array([0.0, 0.5, 1.0, 0.25]).reshape(1, 2, 2)
    d = from_arrays(X)
    assert d.inputs.dtype == np.uint8 and d.inputs[0, ..., 0].ravel().tolist() == [0, 128, 255, 64]


def test_float_out_of_range_error():
    with pytest.raises(DataError, match=r"float images must lie in \[0, 1\], got values in "
                                        r"\[0, 255\](.|\n)*astype\(np.uint8\)"):
        from_arrays(np.linspace(0, 255, 32).reshape(2, 4, 4))


def test_float_nan_error():
    X = np.zeros((1, 2, 2))
    X[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        from_arrays(X)


def test_integer_images_cast_or_rejected():
    assert from_arrays(np.full((1, 2, 2), 200, dtype=np.int64)).inputs.dtype == np.uint8
    with pytest.raises(DataError, match=r"integer images must lie in 0..255, got -1..300"):
        from_arrays(np.array([-1, 300, 0, 0]).reshape(1, 2, 2))


def test_channels_first_hint():
    with pytest.raises(DataError, match=r"shape \(2, 3, 8, 8\)(.|\n)*transpose\(0, 2, 3, 1\)"):
        from_arrays(np.zeros((2, 3, 8, 8), np.uint8))


def test_flat_rows_hint():
    with pytest.raises(DataError, match=r"shape \(2, 784\)(.|\n)*reshape"):
        from_arrays(np.zeros((2, 784), np.uint8))


def test_texts_with_string_labels():
    d = from_arrays(["good", "bad", "ok"], ["pos", "neg", "pos"], name="reviews")
    assert d.modality == "text" and d.name == "reviews"
    assert d.classes == ["neg", "pos"] and d.labels.tolist() == [1, 0, 1]


def test_texts_must_be_strings_and_not_empty():
    with pytest.raises(DataError, match=r"item\(s\) \[1\] are not"):
        from_arrays(["a", 3])
    with pytest.raises(DataError, match=r"text item\(s\) \[1\] are empty"):
        from_arrays(["a", "  "])


def test_empty_input():
    with pytest.raises(DataError, match="X is empty"):
        from_arrays([])


def test_explicit_classes_keep_ids_and_map_names():
    X = np.zeros((3, 2, 2, 3), np.uint8)
    assert from_arrays(X, [2, 0, 2], classes=["a", "b", "c"]).labels.tolist() == [2, 0, 2]
    assert from_arrays(X, ["c", "a", "c"], classes=["a", "b", "c"]).labels.tolist() == [2, 0, 2]
    assert from_arrays(X, [1, 1, 1], classes=["a", "b"]).num_classes == 2


def test_label_not_in_classes():
    with pytest.raises(DataError, match=r"labels \['z'\] are not in classes"):
        from_arrays(["a", "b"], ["x", "z"], classes=["x", "y"])


def test_label_id_out_of_range():
    with pytest.raises(DataError, match=r"labels must be ids in 0..1"):
        from_arrays(["a", "b"], [0, 5], classes=["x", "y"])


def test_wrong_number_of_labels():
    with pytest.raises(DataError, match=r"2 inputs but y has shape \(3,\)"):
        from_arrays(["a", "b"], [0, 1, 0])


def test_single_inferred_class():
    with pytest.raises(DataError, match=r"single class '1'(.|\n)*classes=\[...\]"):
        from_arrays(["a", "b"], [1, 1])


def test_continuous_y_rejected():
    with pytest.raises(DataError, match="non-integer values"):
        from_arrays(["a", "b"], [0.2, 1.7])
    assert from_arrays(["a", "b"], [0.0, 1.0]).classes == ["0", "1"]
