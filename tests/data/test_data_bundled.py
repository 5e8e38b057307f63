"""The bundled registry and the image benchmarks (mnist, digits, mnist_m)."""

import numpy as np
import pytest

from graftlab.data.bundled import mnist_m_rows
from graftlab.data import DatasetSpec, get_dataset_spec, list_datasets, load_dataset
from graftlab.errors import ConfigError, NotFoundError


def test_registry_lists_every_set_with_a_full_spec():
    specs = list_datasets()
    assert [s.name for s in specs] == ["digits", "fashion_mnist", "mnist", "mnist_m", "vader",
                                       "vader_ratings", "wnut16"]
    for spec in specs:
        assert isinstance(spec, DatasetSpec) and spec.modality in ("image", "text")
        assert spec.domains and spec.description and spec.source and spec.licence
        assert bool(spec.classes) == (spec.task in ("classification", "tokens"))
    assert {s.name: s.task for s in specs if s.task != "classification"} == {
        "vader_ratings": "regression", "wnut16": "tokens"}
    assert get_dataset_spec("vader:movies").domains == {
        "movies": 10072, "amazon": 2985, "nyt": 2970, "tweets": 3432}


def test_unknown_data_set_suggests_the_closest():
    with pytest.raises(NotFoundError, match=r"unknown data set 'mnsit'\. Known data sets: digits, "
                                            r"fashion_mnist, mnist, mnist_m, vader, vader_ratings, "
                                            r"wnut16\. Did you mean 'mnist'"):
        load_dataset("mnsit")
    with pytest.raises(NotFoundError, match="unknown data set 'nope'"):
        get_dataset_spec("nope")


def test_unknown_domain_lists_the_domains():
    with pytest.raises(NotFoundError, match=r"unknown domain 'movie'\. Known domains: amazon, "
                                            r"movies, nyt, tweets\. Did you mean 'movies'"):
        load_dataset("vader:movie")
    with pytest.raises(NotFoundError, match="unknown domain 'svhn'"):
        load_dataset("mnist", domain="svhn")


def test_multi_domain_set_needs_a_domain():
    with pytest.raises(ConfigError,
                       match=r"'vader' has 4 domains(.|\n)*load_dataset\('vader:movies'"):
        load_dataset("vader")


def test_domain_given_twice():
    with pytest.raises(ConfigError, match="two domains given for 'vader'"):
        load_dataset("vader:movies", domain="nyt")


def test_unknown_option_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"'mnist_m' has no option 'sed'; its options are: "
                                          r"seed(.|\n)*did you mean 'seed'"):
        load_dataset("mnist_m", sed=1)
    with pytest.raises(ConfigError, match=r"options are: \(none\)"):
        load_dataset("mnist", framed=True)


def _check_digits(d, n):
    assert d.modality == "image" and d.inputs.shape == (n, 28, 28, 3)
    assert d.inputs.dtype == np.uint8 and d.classes == [str(i) for i in range(10)]


def test_mnist():
    d = load_dataset("mnist")
    _check_digits(d, 5000)
    assert d.name == "mnist" and np.bincount(d.labels).tolist() == [500] * 10
    assert (d.inputs[..., 0] == d.inputs[..., 1]).all() and d.inputs.max() == 255
    d.inputs[:] = 0  # a caller's edits must not leak into the next load
    assert load_dataset("mnist").inputs.max() == 255


def test_digits_framed_like_mnist():
    d = load_dataset("digits")
    _check_digits(d, 1797)
    assert np.bincount(d.labels).sum() == 1797 and d.labels.max() == 9
    frame = np.ones((28, 28), bool)
    frame[4:24, 4:24] = False
    assert (d.inputs[:, frame] == 0).all()  # 4-pixel empty frame, like MNIST
    assert d.inputs.max() > 200


def test_digits_stretched():
    d = load_dataset("digits", framed=False)
    _check_digits(d, 1797)
    assert d.inputs[:, 4:24, :4].any() and d.meta["framed"] is False


def test_mnist_m_shapes_labels_and_order():
    m, mnist = load_dataset("mnist_m"), load_dataset("mnist")
    rows = mnist_m_rows()
    _check_digits(m, 2500)
    assert np.array_equal(m.labels, mnist.labels[rows]) and m.meta["seed"] == 2015
    assert np.bincount(m.labels).tolist() == [250] * 10
    assert np.abs(m.inputs.astype(int) - mnist.inputs[rows]).mean() > 30  # really differs
    assert (m.inputs[..., 0] != m.inputs[..., 2]).mean() > 0.5  # colour from the photos


def _find_crop(image, digit):
    """The 28x28 crop of a sample photo that ``image`` shows wherever ``digit`` is 0."""
    from sklearn.datasets import load_sample_images

    ys, xs = np.nonzero(digit == 0)
    for photo in load_sample_images().images:
        windows = np.lib.stride_tricks.sliding_window_view(photo, (28, 28), axis=(0, 1))
        hits = (windows[..., ys[0], xs[0]] == image[ys[0], xs[0]]).all(-1)
        for top, left in zip(*np.nonzero(hits), strict=True):
            crop = photo[top:top + 28, left:left + 28]
            if (crop[ys, xs] == image[ys, xs]).all():
                return crop
    return None


def test_mnist_m_blend_recipe():
    """Sample i is |crop - digit| for a 28x28 crop of one of scikit-learn's sample photos and
    the mnist digit at row mnist_m_rows()[i]."""
    m, mnist = load_dataset("mnist_m"), load_dataset("mnist")
    for i in (0, 2121):
        digit = mnist.inputs[mnist_m_rows()[i]]
        crop = _find_crop(m.inputs[i], digit[..., 0])
        assert crop is not None
        expected = np.abs(crop.astype(int) - digit.astype(int)).astype(np.uint8)
        assert np.array_equal(m.inputs[i], expected)


def test_mnist_m_is_deterministic_per_seed():
    a = load_dataset("mnist_m").inputs
    b = load_dataset("mnist_m").inputs
    c = load_dataset("mnist_m", seed=1).inputs
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert load_dataset("mnist_m", seed=1).fingerprint() == load_dataset(
        "mnist_m", domain="mnist_m", seed=1).fingerprint()


def test_no_mnist_m_image_is_made_from_a_source_digit_adaptation_keeps():
    """mnist_m's digits are the second half of each mnist class; without_shared drops exactly
    those from an mnist source (whole, or a subset), so source and target share no digit."""
    from graftlab.data import without_shared

    mnist, m = load_dataset("mnist"), load_dataset("mnist_m")
    rows = mnist_m_rows()
    assert len(set(rows)) == 2500 and m.meta["made_from"][0] == "mnist"
    source, target, dropped = without_shared(mnist, m)
    assert dropped == {"source": 2500, "target": 0} and len(source) == 2500
    assert not set(source.origin[1]) & set(rows)
    # an mnist source with some digits and an mnist_m subset: only the shared ones go
    sub_s, sub_t = mnist.subset(np.arange(0, 5000, 2)), m.subset(np.arange(0, 2500, 5))
    s2, t2, d2 = without_shared(sub_s, sub_t)
    used = set(rows[t2.origin[1]])
    assert d2["source"] == len(set(sub_s.origin[1]) & used) > 0
    assert not set(s2.origin[1]) & used and len(t2) == 500
    # and the other way round (mnist_m -> mnist): the target loses them
    s3, t3, d3 = without_shared(m, mnist)
    assert d3 == {"source": 0, "target": 2500} and not set(t3.origin[1]) & set(rows)


def test_fashion_mnist_from_the_debian_package():
    from pathlib import Path

    from graftlab.data import bundled

    if not Path(bundled.FASHION_DIR, "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install "
                    "dataset-fashion-mnist)")
    d = load_dataset("fashion_mnist")
    assert d.inputs.shape == (5000, 28, 28, 3) and d.inputs.dtype == np.uint8
    assert np.bincount(d.labels).tolist() == [500] * 10 and d.classes[-1] == "ankle boot"


def test_fashion_mnist_missing_says_how_to_install(monkeypatch, tmp_path):
    from graftlab.data import bundled
    from graftlab.errors import DataError

    monkeypatch.setattr(bundled, "FASHION_DIR", str(tmp_path))
    with pytest.raises(DataError, match="Fashion-MNIST is not installed(.|\n)*apt-get install "
                                        "dataset-fashion-mnist"):
        load_dataset("fashion_mnist")
