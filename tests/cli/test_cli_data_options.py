"""--skip-corrupt on the commands that read images, and extraction without labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app


def _folder(root, classes=("cat", "dog"), n=4, corrupt=True, loose=False):
    rng = np.random.default_rng(0)
    for c in classes:
        d = root if loose else root / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
                d / f"{c}{i}.png")
    if corrupt:
        (root / (classes[0] if not loose else "") / "broken.png").write_bytes(b"not a png")
    return root


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_corrupt_image_stops_extract_and_names_the_flag_that_skips_it(tmp_path):
    folder = _folder(tmp_path / "imgs")
    out = tmp_path / "f.npy"
    result = _run("extract", folder, "--image-size", 32, "--out", out)
    assert result.exit_code == 2
    assert "broken.png" in result.output and "--skip-corrupt" in result.output
    result = _run("extract", folder, "--image-size", 32, "--out", out, "--skip-corrupt")
    assert result.exit_code == 0, result.output
    assert np.load(out).shape[0] == 8  # the broken file left out, every readable one kept
    # which file each row came from, the broken one absent
    rows = (tmp_path / "f.files.txt").read_text().splitlines()
    assert len(rows) == 8 and not any("broken" in r for r in rows)
    assert [Path(r).name for r in rows] == [f"{c}{i}.png" for c in ("cat", "dog")
                                             for i in range(4)]
    assert "row order:" in result.output


@pytest.mark.parametrize("layout", ["loose", "one class"])
def test_extract_needs_no_labels(tmp_path, layout):
    folder = _folder(tmp_path / "imgs", classes=("cat",), corrupt=False,
                     loose=layout == "loose")
    out = tmp_path / "f.npy"
    result = _run("extract", folder, "--image-size", 32, "--out", out)
    assert result.exit_code == 0, result.output
    assert np.load(out).shape[0] == 4


def test_probe_takes_skip_corrupt(tmp_path):
    folder = _folder(tmp_path / "imgs", n=6)
    result = _run("probe", folder, "--image-size", 32, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "--skip-corrupt" in result.output
    result = _run("probe", folder, "--image-size", 32, "--runs-dir", tmp_path / "runs",
                  "--skip-corrupt")
    assert result.exit_code == 0, result.output
