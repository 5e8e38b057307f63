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
    with pytest.raises(DataError, match=r"2 image files in .* cannot be read \(corrupt, "
                                        r"truncated or not an image\)") as err:
        load_image_folder(root)
    assert "cat/bad00.png (not an image" in str(err.value) and "bad01.png" in str(err.value)
    assert "skip_corrupt=True" in str(err.value) and "--skip-corrupt" in str(err.value)
    assert "too large" not in str(err.value)


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
    with pytest.raises(DataError, match=r"13 image files(.|\n)*and 3 more") as err:
        load_image_folder(root)
    assert "bad12.png" not in str(err.value)


def test_skip_corrupt_skips_logs_and_records(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    _corrupt(root, 2)
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root, skip_corrupt=True)
    assert len(d) == 5
    assert sorted(d.meta["skipped"]) == [str(root / "cat" / f"bad0{i}.png") for i in range(2)]
    assert "skipped 2 of 7 image files in" in caplog.text
    assert "cannot be loaded (skip_corrupt): cat/bad00.png, cat/bad01.png;" in caplog.text


def test_skip_corrupt_with_a_class_left_empty(tmp_path):
    root = _folder(tmp_path / "p", {"dog": 2})
    (root / "cat").mkdir()
    _corrupt(root, 2)
    with pytest.raises(DataError, match=r"every image of class\(es\) cat"):
        load_image_folder(root, skip_corrupt=True)


def test_skip_corrupt_warning_names_the_first_few(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    _corrupt(root, 8)
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root, skip_corrupt=True)
    assert len(d.meta["skipped"]) == 8
    assert "skipped 8 of 13 image files" in caplog.text
    assert "cat/bad04.png and 3 more" in caplog.text and "bad05" not in caplog.text


def test_too_large_image_says_so_with_the_limit(tmp_path, monkeypatch):
    """A valid image over Pillow's decompression-bomb limit (a 14000 x 14000 PNG in real life;
    here the limit is lowered) is too large, not 'cannot be read'."""
    root = _folder(tmp_path / "p", size=(4, 4))
    _save(root / "dog" / "huge.png", size=(20, 30))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"1 image file in .* is too large to load: "
                                        r"dog/huge\.png \(600 pixels\); Pillow refuses images "
                                        r"over 200 pixels") as err:
        load_image_folder(root)
    message = str(err.value)
    assert "cannot be read" not in message
    assert "shrink the large images below 200 pixels" in message
    assert "PIL.Image.MAX_IMAGE_PIXELS = 1_000_000" in message and "--skip-corrupt" in message
    d = load_image_folder(root, skip_corrupt=True)
    assert d.meta["skipped"] == [str(root / "dog" / "huge.png")] and len(d) == 5


def test_corrupt_and_too_large_are_reported_apart(tmp_path, monkeypatch, caplog):
    root = _folder(tmp_path / "p", size=(4, 4))
    _corrupt(root, 1)
    _save(root / "dog" / "huge.png", size=(20, 30))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"1 image file in .* cannot be read .*cat/bad00\.png"
                                        r"(.|\n)*1 image file .* is too large .*dog/huge\.png"):
        load_image_folder(root)
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        load_image_folder(root, skip_corrupt=True)
    assert "cat/bad00.png, dog/huge.png (too large)" in caplog.text


def test_decoded_straight_into_one_array(tmp_path):
    """No list of images plus a stacked copy: the peak stays near the final array's size
    (it was twice that), here with every image resized to 224 x 224."""
    import tracemalloc

    root = _folder(tmp_path / "p", {"a": 20, "b": 20}, size=(8, 6))
    _save(root / "a" / "odd.png", size=(9, 7))
    tracemalloc.start()
    try:
        d = load_image_folder(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert d.inputs.shape == (41, 224, 224, 3)
    assert peak < 1.3 * d.inputs.nbytes


def test_header_size_differs_from_decoded_size(tmp_path, monkeypatch, caplog):
    """A late EXIF rotation can change an image's size after the headers agreed: the images
    already decoded are resized, and the load goes on at 224 x 224."""
    import graftlab.data.folders as folders

    root = _folder(tmp_path / "p", size=(8, 6))
    _save(root / "dog" / "3.png", size=(6, 8))
    monkeypatch.setattr(folders, "image_size", lambda path: (8, 6))
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert d.inputs.shape == (6, 224, 224, 3) and "224x224" in caplog.text
    assert (d.inputs[:, :, :, 0] == 200).all()


def test_more_formats_are_images(tmp_path):
    root = _folder(tmp_path / "p")
    for suffix in (".tif", ".TIFF", ".gif", ".webp"):
        _save(root / "cat" / f"x{suffix}")
    assert len(load_image_folder(root)) == 9


def test_loose_images_next_to_class_folders_are_named(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    _save(root / "stray.png")
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert len(d) == 5 and "ignored 1 image(s) directly in" in caplog.text
    assert "stray.png" in caplog.text


# --- unlabelled folders (issue 13, item 9) ---------------------------------------------------

def test_loose_images_load_unlabelled_when_asked(tmp_path):
    for i in range(3):
        _save(tmp_path / "flat" / f"{i}.png")
    _save(tmp_path / "flat" / "sub" / "deep.png")
    for labelled in (False, None):
        d = load_image_folder(tmp_path / "flat", labelled=labelled)
        assert d.labels is None and not d.labelled and d.classes == [] and len(d) == 4
        assert [p.rsplit("/", 2)[-1] for p in d.meta["files"]] == [
            "0.png", "1.png", "2.png", "deep.png"]


def test_loose_images_when_labels_are_required(tmp_path):
    _save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match=r"no class sub-folders \(it holds 1 loose image"
                                        r"(.|\n)*HINT: .*labelled=False"):
        load_image_folder(tmp_path / "flat")


def test_class_folders_load_unlabelled_or_auto(tmp_path):
    root = _folder(tmp_path / "p")
    flat = load_image_folder(root, labelled=False)
    assert flat.labels is None and len(flat) == 5
    auto = load_image_folder(root, labelled=None)
    assert auto.classes == ["cat", "dog"] and auto.labels.tolist() == [0, 0, 1, 1, 1]
    one = load_image_folder(_folder(tmp_path / "one", {"cat": 2}), labelled=None)
    assert one.labels is None and len(one) == 2


def test_single_class_hint_names_unlabelled_loading(tmp_path):
    with pytest.raises(DataError, match=r"single class(.|\n)*labelled=False"):
        load_image_folder(_folder(tmp_path / "p", {"cat": 2}))


def test_unlabelled_folder_without_images(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match=r"holds no images"):
        load_image_folder(tmp_path / "empty", labelled=False)


def test_labelled_must_be_a_bool_or_none(tmp_path):
    with pytest.raises(ConfigError, match=r"labelled must be True, False or None"):
        load_image_folder(_folder(tmp_path / "p"), labelled="yes")


# --- symbolic links (issue 13, item 4) -------------------------------------------------------

def _link_warning(caplog):
    return "\n".join(r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage())


def test_link_to_the_root_is_not_a_class(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    (root / "all").symlink_to(root, target_is_directory=True)
    (root / "dog" / "up").symlink_to("..", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert d.classes == ["cat", "dog"] and len(d) == 5
    warning = _link_warning(caplog)
    assert "skipped 2 symbolic link(s)" in warning
    assert "all points back at the data root" in warning
    assert "dog/up points back at the data root" in warning
    assert sorted(d.meta["skipped_links"])[0].startswith("all points back")


def test_links_above_outside_broken_and_looping_are_skipped(tmp_path, caplog):
    root = _folder(tmp_path / "data" / "p")
    outside = _folder(tmp_path / "elsewhere", {"x": 2})
    (root / "parent").symlink_to(tmp_path / "data", target_is_directory=True)
    (root / "ext").symlink_to(outside, target_is_directory=True)
    (root / "cat" / "ext.png").symlink_to(outside / "x" / "0.png")
    (root / "cat" / "gone.png").symlink_to(root / "nowhere.png")
    (root / "cat" / "loop.png").symlink_to(root / "cat" / "loop.png")
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert d.classes == ["cat", "dog"] and len(d) == 5
    warning = _link_warning(caplog)
    assert "skipped 5 symbolic link(s)" in warning
    assert f"parent points at {tmp_path / 'data'}, a folder above the data root" in warning
    assert f"ext points outside the data root, to {outside}" in warning
    assert "cat/ext.png points outside the data root" in warning
    assert "cat/gone.png is broken or loops" in warning and "cat/loop.png is broken" in warning
    assert "pass follow_symlinks=True" in warning


def test_link_inside_the_root_loads_its_target_once(tmp_path, caplog):
    root = _folder(tmp_path / "p")
    (root / "cat" / "dogs").symlink_to(root / "dog", target_is_directory=True)
    (root / "cat" / "alias.png").symlink_to(root / "dog" / "0.png")
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert np.bincount(d.labels).tolist() == [2, 3]
    warning = _link_warning(caplog)
    assert "cat/dogs points to dog inside the data root, which is loaded from there" in warning
    assert "cat/alias.png points to dog/0.png inside the data root" in warning


def test_follow_symlinks_reads_linked_folders_outside_the_root(tmp_path, caplog):
    outside = _folder(tmp_path / "store", {"birds": 2, "fish": 1})
    root = _folder(tmp_path / "p", {"cat": 2})
    (root / "bird").symlink_to(outside / "birds", target_is_directory=True)
    (root / "cat" / "fish.png").symlink_to(outside / "fish" / "0.png")
    (outside / "birds" / "again").symlink_to(outside / "birds", target_is_directory=True)
    (root / "cat" / "twice.png").symlink_to(outside / "fish" / "0.png")
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root, follow_symlinks=True)
    assert d.classes == ["bird", "cat"] and np.bincount(d.labels).tolist() == [2, 3]
    warning = _link_warning(caplog)
    assert "bird/again loops back to" in warning
    assert "cat/twice.png is the same file as cat/fish.png, loaded once" in warning
    assert "follow_symlinks=True" not in warning


def test_hidden_folder_reached_by_a_link_is_loaded(tmp_path, caplog):
    root = _folder(tmp_path / "p", {"cat": 1})
    _save(root / ".pool" / "d1.png")
    _save(root / ".pool" / "d2.png")
    (root / "dog").symlink_to(root / ".pool", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="graftlab.data.folders"):
        d = load_image_folder(root)
    assert d.classes == ["cat", "dog"] and np.bincount(d.labels).tolist() == [1, 2]
    assert not _link_warning(caplog)


def test_class_folders_that_all_hold_the_same_folders_are_said_to(tmp_path, caplog):
    from PIL import Image

    from graftlab.data import load_image_folder

    for split in ("train", "val"):
        for label in ("cat", "dog"):
            (tmp_path / "split" / split / label).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
                tmp_path / "split" / split / label / "0.png")
    domain = load_image_folder(tmp_path / "split")
    assert domain.classes == ["train", "val"]  # read as it is laid out, and said:
    assert "holds the same sub-folders (cat, dog)" in caplog.text


def test_images_of_a_format_not_read_are_counted_and_named(tmp_path, caplog):
    from PIL import Image

    from graftlab.data import load_image_folder

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / label / "0.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a" / "web.jfif", "JPEG")
    (tmp_path / "b" / "phone.heic").write_bytes(b"not readable here")
    domain = load_image_folder(tmp_path)
    assert len(domain) == 3  # the .jfif (a JPEG) is read
    assert "left out 1 image(s)" in caplog.text and "b/phone.heic" in caplog.text
