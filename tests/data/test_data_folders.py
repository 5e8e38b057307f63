"""load_image_folder: layout, sizing, and every error path."""

import logging

import numpy as np
import pytest
from PIL import Image

from graftlab.data import load_image_folder
from graftlab.errors import ConfigError, DataError


def _save(path, size=(8, 6), colour=(200, 10, 10), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size[1], size[0]), colour if mode == "RGB" else 128).save(path)


def _folder(root, counts=None, size=(8, 6)):
    for cls, n in (counts or {"dog": 3, "cat": 2}).items():
        for i in range(n):
            _save(root / cls / f"{i}.png", size=size)
    return root


def test_loads_classes_sorted_as_rgb_uint8(tmp_path):
    root = _folder(tmp_path / "pets")
    _save(tmp_path / "pets" / "cat" / "grey.JPG", mode="L")
    _save(tmp_path / "pets" / "dog" / "nested" / "x.Jpeg")
    _save(tmp_path / "pets" / "dog" / "y.bmp")
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "pets" / ".hidden").mkdir()
    _save(tmp_path / "pets" / "dog" / ".ipynb_checkpoints" / "copy.png")
    d = load_image_folder(root)
    assert d.name == "pets" and d.modality == "image"
    assert d.classes == ["cat", "dog"]
    assert d.inputs.shape == (8, 8, 6, 3) and d.inputs.dtype == np.uint8
    assert np.bincount(d.labels).tolist() == [3, 5]
    assert len(d.meta["files"]) == 8 and "skipped" not in d.meta
    grey = d.meta["files"].index(str(root / "cat" / "grey.JPG"))
    assert (d.inputs[grey] == 128).all()


@pytest.mark.parametrize(("size", "shape"), [(16, (16, 16)), ((12, 20), (12, 20))])
def test_image_size_resizes_all(tmp_path, size, shape):
    d = load_image_folder(_folder(tmp_path / "p"), image_size=size, name="mine")
    assert d.inputs.shape[1:3] == shape and d.name == "mine"


def test_mixed_sizes_resize_to_224_and_log(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    _save(root / "cat" / "big.png", size=(30, 40))
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert d.inputs.shape == (6, 224, 224, 3)
    assert "224x224" in caplog.text


@pytest.mark.parametrize("bad", [0, -3, (10,), (10, 0), "224", 2.5])
def test_bad_image_size(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"image_size must be a positive int or a \(height"):
        load_image_folder(_folder(tmp_path / "p"), image_size=bad)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"no such image folder: .*nowhere"):
        load_image_folder(tmp_path / "nowhere")


def test_path_is_a_file(tmp_path):
    file = tmp_path / "x.png"
    _save(file)
    with pytest.raises(DataError, match=r"is a file, not a folder(.|\n)*load_table"):
        load_image_folder(file)


def test_no_class_subfolders(tmp_path):
    _save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match=r"no class sub-folders \(it holds 1 loose image"):
        load_image_folder(tmp_path / "flat")


def test_empty_class_folder_is_named(tmp_path):
    root = _folder(tmp_path / "p")
    (root / "zebra").mkdir()
    (root / "zebra" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"class folder .*zebra.* holds no images"):
        load_image_folder(root)


def test_single_class(tmp_path):
    with pytest.raises(DataError, match=r"single class 'cat'.*at least two"):
        load_image_folder(_folder(tmp_path / "p", {"cat": 2}))


def _corrupt(root, n):
    for i in range(n):
        (root / "cat" / f"bad{i:02d}.png").write_bytes(b"definitely not a png")


def test_corrupt_files_stop_with_list_and_hint(tmp_path):
    root = _folder(tmp_path / "p")
    _corrupt(root, 2)
    with pytest.raises(DataError, match=r"2 image file\(s\).*cannot be read") as err:
        load_image_folder(root)
    assert "bad00.png" in str(err.value) and "bad01.png" in str(err.value)
    assert "skip_corrupt=True" in str(err.value) and "--skip-corrupt" in str(err.value)


def test_truncated_image_counts_as_corrupt(tmp_path):
    root = _folder(tmp_path / "p")
    Image.new("RGB", (64, 64)).save(root / "cat" / "cut.png")
    data = (root / "cat" / "cut.png").read_bytes()
    (root / "cat" / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.png"):
        load_image_folder(root)


def test_many_corrupt_files_are_abbreviated(tmp_path):
    root = _folder(tmp_path / "p")
    _corrupt(root, 13)
    with pytest.raises(DataError, match=r"13 image file\(s\)(.|\n)*and 3 more") as err:
        load_image_folder(root)
    assert "bad12.png" not in str(err.value)


def test_skip_corrupt_skips_logs_and_records(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    _corrupt(root, 2)
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root, skip_corrupt=True)
    assert len(d) == 5
    assert sorted(d.meta["skipped"]) == [str(root / "cat" / f"bad0{i}.png") for i in range(2)]
    assert "skipped 2 unreadable image(s)" in caplog.text


def test_skip_corrupt_with_a_class_left_empty(tmp_path):
    root = _folder(tmp_path / "p", {"dog": 2})
    (root / "cat").mkdir()
    _corrupt(root, 2)
    with pytest.raises(DataError, match=r"every image of class\(es\) cat"):
        load_image_folder(root, skip_corrupt=True)
