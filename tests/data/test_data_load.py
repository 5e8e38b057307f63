"""load_data: one entry point that dispatches on what it is given."""

import pytest
from PIL import Image

import graftlab.data as data
from graftlab.data import load_data
from graftlab.errors import DataError


def test_public_names():
    for name in ["Domain", "load_image_folder", "load_table", "from_arrays", "load_dataset",
                 "list_datasets", "get_dataset_spec", "fetch_vader", "load_data"]:
        assert name in data.__all__ and callable(getattr(data, name))


def test_folder_goes_to_load_image_folder(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / cls / "x.png")
    d = load_data(tmp_path / "imgs", image_size=8)
    assert d.modality == "image" and d.inputs.shape == (2, 8, 8, 3)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_tables_go_to_load_table(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        path.write_text("body,label\nhi,a\nbye,b\n")
    else:
        path.write_text('{"body": "hi", "label": "a"}\n{"body": "bye", "label": "b"}\n')
    d = load_data(str(path), text_column="body")
    assert d.modality == "text" and d.classes == ["a", "b"]


def test_other_existing_file_is_an_unsupported_table(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"unsupported extension '\.txt'"):
        load_data(tmp_path / "notes.txt")


def test_bundled_names_with_domain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local file called 'mnist'
    assert load_data("mnist").name == "mnist"
    monkeypatch.setenv("GRAFTLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="graftlab fetch vader"):
        load_data("vader:movies")


def test_neither_path_nor_name_says_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"'mnits' is neither an existing file or folder \(no such "
                                        r"path\) nor a bundled data set\. Bundled data sets: "
                                        r"digits, fashion_mnist, mnist, mnist_m, vader, "
                                        r"vader_ratings, wnut16\. Did you mean 'mnist'"):
        load_data("mnits")
    with pytest.raises(DataError, match=r"no such path(.|\n)*'vader:movies'"):
        load_data(tmp_path / "missing.csv")


def _loose(root, n=3):
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(root / f"{i}.png")
    return root


def test_unlabelled_loose_images(tmp_path):
    """An unlabelled image target can be a folder of loose images (issue 13, item 9)."""
    root = _loose(tmp_path / "target")
    for labelled in (False, None):
        d = load_data(root, labelled=labelled)
        assert d.modality == "image" and d.labels is None and len(d) == 3
    with pytest.raises(DataError, match=r"no class sub-folders(.|\n)*labelled=False"):
        load_data(root)


def test_labelled_false_strips_tables_and_bundled(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nhi,a\nbye,b\n")
    assert load_data(path, labelled=False).labels is None
    assert load_data(path, labelled=None).classes == ["a", "b"]
    monkeypatch.chdir(tmp_path)
    assert load_data("digits", labelled=False).labels is None
    assert load_data("digits", labelled=None).labelled


def test_skip_corrupt_reaches_folders_and_is_ignored_elsewhere(tmp_path):
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / cls / "x.png")
    (root / "a" / "bad.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"cannot be read(.|\n)*--skip-corrupt"):
        load_data(root)
    assert len(load_data(root, skip_corrupt=True)) == 2
    path = tmp_path / "t.csv"
    path.write_text("text,label\nhi,a\nbye,b\n")
    assert len(load_data(path, skip_corrupt=True)) == 2


def test_labelled_option_is_checked(tmp_path):
    from graftlab.errors import ConfigError

    with pytest.raises(ConfigError, match="labelled must be True, False or None"):
        load_data(tmp_path, labelled="auto")


def test_a_table_checks_its_labelled_option_too(tmp_path):
    from graftlab.data import load_table
    from graftlab.errors import ConfigError

    path = tmp_path / "t.csv"
    path.write_text("text,label\na,x\nb,y\n")
    with pytest.raises(ConfigError, match="labelled must be True, False or None"):
        load_table(path, labelled="no")  # was read as True, labels and all
