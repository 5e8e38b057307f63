"""What an estimator's fit/predict take in memory: the mistakes that used to pass silently
(one string read as its characters, images read as texts, a single image read as greyscale
rows, binary pixels) are refused or warned about, naming the fix; and labels a model cannot
learn from (NaN, one-hot rows, none at all) are refused before training."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graftlab.data import Domain
from graftlab.data.arrays import in_memory
from graftlab.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tune"))
from _tune_data import tiny_data, tiny_grafter  # noqa: E402


@pytest.mark.parametrize("X, message", [
    ("one review", r"got one str where a sequence of inputs was expected\.\nHINT: wrap a "
                   r"single text in a list: \[text\]"),
    (np.zeros((2, 8, 8, 3), np.uint8), r"an array of dtype uint8 and shape \(2, 8, 8, 3\) is "
                                       r"not a list of texts.*\nHINT: for images pick an image "
                                       r"backbone"),
    ([["great", "film"], "fine"], r"item\(s\) \[0\] are list.*\nHINT: .*' '\.join\(words\)"),
    (["good", None, float("nan")], r"item\(s\) \[1, 2\] are NoneType, float"),
])
def test_texts_that_are_not_a_list_of_strings_are_refused(X, message):
    with pytest.raises(DataError, match=message):
        in_memory(X, "text")


def test_a_dataframe_is_refused_with_its_column_named():
    class Frame:  # what pandas' DataFrame looks like to the check (pandas is not a dependency)
        columns, iloc = ["text", "label"], None

        def __iter__(self):
            return iter(self.columns)

    with pytest.raises(DataError, match=r"got a table \(a DataFrame with columns \['text', "
                                        r"'label'\]\).*\nHINT: .*df\['text'\]\.tolist\(\)"):
        in_memory(Frame(), "text")


def test_texts_as_a_list_or_a_1d_array_pass_unchanged():
    assert in_memory(np.array(["a", "b"]), "text").inputs == ["a", "b"]
    assert in_memory(("a", ""), "text").inputs == ["a", ""]  # an empty text is still a text


@pytest.mark.parametrize("X, message", [
    (np.zeros((8, 8, 3), np.uint8), r"reads as 8 greyscale images 3 pixels wide; is it one RGB "
                                    r"image\?\nHINT: pass one image as X\[None\]"),
    (["a.png", "b.png"], r"item\(s\) \[0, 1\] are strings or paths.*\nHINT: texts need a text "
                         r"backbone.*PIL\.Image\.open"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)],
     r"the images differ in size \(\(8, 8, 3\), \(9, 8, 3\)\).*\nHINT: resize them"),
    (np.zeros((2, 8, 8, 4), np.uint8), r"4 channels \(RGBA\?\)\.\nHINT: drop the alpha"),
    ((np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1])),
     r"got a pair \(images, labels\?\).*\nHINT: pass the images alone"),
])
def test_images_that_would_be_misread_are_refused(X, message):
    with pytest.raises(DataError, match=message):
        in_memory(X, "image")


def test_images_come_in_as_from_arrays_takes_them():
    grey = in_memory(np.full((2, 4, 5), 7, np.uint8), "image").inputs
    assert grey.shape == (2, 4, 5, 3) and (grey == 7).all()
    unit = in_memory(np.full((1, 2, 2, 3), 0.5), "image").inputs
    assert unit.dtype == np.uint8 and (unit == 128).all()
    pil = [Image.new("RGB", (4, 3), (1, 2, 3))] * 2
    assert in_memory(pil, "image").inputs.shape == (2, 3, 4, 3)


def test_binary_uint8_pixels_are_warned_about():
    with pytest.warns(UserWarning, match="hold only the values 0 and 1.*multiply by 255"):
        in_memory(np.eye(5, dtype=np.uint8)[None].repeat(2, 0), "image")


def test_a_grafter_refuses_a_single_string_before_any_training():
    x, y = tiny_data()
    g = tiny_grafter(strategy="linear_probe").fit(x, y)
    with pytest.raises(DataError, match="got one str"):
        g.predict("a string")


@pytest.mark.parametrize("labels, message", [
    (lambda y: y.astype(float) + np.r_[np.nan, np.zeros(len(y) - 1)],
     r"labels hold NaN or infinite values \(at \[0\]\); a missing label is not a class"),
    (lambda y: np.eye(3)[y], r"labels must be one per input \(1-D\), got an array of shape "
                             r"\(48, 3\)\.\nHINT: one-hot .* y\.argmax\(1\)"),
    (lambda y: np.array([None, *y[1:]], dtype=object), r"labels hold None or NaN"),
])
def test_labels_a_model_cannot_learn_from_are_refused(labels, message):
    x, y = tiny_data()
    with pytest.raises(DataError, match=message):
        tiny_grafter(strategy="linear_probe").fit(x, labels(y))


def test_a_domain_without_labels_and_no_y_is_named():
    x, _ = tiny_data()
    with pytest.raises(DataError, match=r"data 'pics' has no labels, and no y was given"):
        tiny_grafter(strategy="linear_probe").fit(Domain("pics", "image", x), None)


def test_a_model_fitted_on_a_domain_learns_its_labels():
    x, y = tiny_data()
    domain = Domain("pics", "image", x, labels=y, classes=["red", "green", "blue"])
    g = tiny_grafter(strategy="linear_probe").fit(domain, None)
    assert list(g.classes_) == [0, 1, 2]  # domain.labels, so score(d, d.labels) works
    assert g.score(domain, domain.labels) > 0.9


def test_labels_as_a_column_are_taken_as_one_label_per_input():  # e.g. df[["label"]]
    x, y = tiny_data()
    g = tiny_grafter(strategy="linear_probe").fit(x, y[:, None])
    assert list(g.classes_) == [0, 1, 2]


@pytest.mark.parametrize("setting, message", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0."),
    ({"lr": 0.0}, "lr must be a number > 0, got 0.0."),
    ({"lr": float("nan")}, "lr must be a number > 0, got nan."),
    ({"weight_decay": -0.1}, "weight_decay must be a number >= 0, got -0.1."),
    ({"epochs": 2.5}, "epochs must be an integer >= 1, got 2.5."),
    ({"lora_r": 0}, "lora_r must be an integer >= 1, got 0."),
])
def test_training_numbers_that_cannot_train_are_refused_by_name(setting, message):
    from graftlab.errors import ConfigError

    x, y = tiny_data()
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        tiny_grafter(strategy="head_only", **setting).fit(x, y)


def test_numpy_integers_are_numbers_too():  # a GridSearchCV over np.arange gives np.int64
    x, y = tiny_data()
    g = tiny_grafter(strategy="head_only", epochs=np.int64(1), batch_size=np.int64(16))
    assert g.fit(x, y).score(x, y) > 0


def test_a_sample_of_a_sorted_data_set_holds_every_class():
    x, y = tiny_data()  # sorted by class, as the bundled sets are
    domain = Domain("pics", "image", x, labels=y, classes=["r", "g", "b"])
    small = domain.sample(6, seed=1)
    assert len(small) == 6 and sorted(small.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert small.origin is None  # a data set of its own: cached for these samples alone
    assert domain.sample(6, seed=1).inputs.tobytes() == small.inputs.tobytes()  # seeded
    assert domain.sample(100) is domain
    with pytest.raises(DataError, match="a sample of 2 from 'pics' cannot hold one of each of "
                                        "its 3 classes"):
        domain.sample(2)
