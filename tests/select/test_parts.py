"""Pools of named parts: a table's source column, a folder of part folders, bundled names;
and the pools that cannot be used, named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graftlab.errors import DataError
from graftlab.select.parts import load_pool


def test_a_table_with_a_source_column(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label,source\ngood film,pos,movies\nbad film,neg,movies\n"
                    "nice phone,pos,amazon\nbroken,neg,amazon\nfine,pos,amazon\n")
    pool = load_pool(str(path))
    assert [n for n, _ in pool.parts] == ["movies", "amazon"]
    assert pool.groups.tolist() == ["movies"] * 2 + ["amazon"] * 3
    joined = pool.domain()
    assert joined.inputs[2] == "nice phone" and len(joined) == 5
    with pytest.raises(DataError, match="has no column 'domain' naming each row's part"):
        load_pool(str(path), source_column="domain")


def test_a_folder_of_part_folders(tmp_path):
    for part, value in [("a", 20), ("b", 200)]:
        for label in ("x", "y"):
            (tmp_path / part / label).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(
                    tmp_path / part / label / f"{i}.png")
    pool = load_pool(str(tmp_path))
    assert pool.groups.tolist() == ["a"] * 4 + ["b"] * 4 and pool.classes == ["x", "y"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no sub-folders; each part of the pool"):
        load_pool(str(tmp_path / "empty"))


def test_bad_pools_are_named(tmp_path):
    with pytest.raises(DataError, match="pool 'mnist' has one part"):
        load_pool("mnist")
    for part, size in [("a", 8), ("b", 16)]:
        for label in ("x", "y"):
            (tmp_path / part / label).mkdir(parents=True)
            Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(
                tmp_path / part / label / "0.png")
    with pytest.raises(DataError, match=r"pool part 'b' has images of \(16, 16\) but 'a' of"):
        load_pool(str(tmp_path))
