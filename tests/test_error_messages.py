"""User-facing errors added with the engine rebuild, each checked by its message."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.errors import ConfigError, DataError


def test_a_config_json_that_is_not_utf8_is_named(tmp_path):
    from graftlab.integrity import read_json

    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ConfigError, match=r"config.json is not valid JSON \(not UTF-8 text "
                                          r"\(byte 7\)\)"):
        read_json(path)


def test_an_unknown_extraction_backend_lists_the_known_ones():
    from graftlab.features import extract_features

    with pytest.raises(ConfigError, match=r"backend 'cuda' is not one of auto, torch, onnx"):
        extract_features("efficientnet_lite0", np.zeros((1, 8, 8, 3), np.uint8),
                         backend="cuda")


def test_a_folder_where_no_image_loads_says_so(tmp_path):
    from graftlab.data import load_image_folder

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"no image in .* could be loaded \(2 tried\)"):
        load_image_folder(tmp_path, skip_corrupt=True)


def test_extract_out_must_name_a_file(tmp_path):
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "x.png")
    result = CliRunner().invoke(app, ["extract", str(tmp_path / "imgs"), "--out",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert f"--out {tmp_path} is a folder; give a file name" in result.output
