"""`graftlab compare` on an image folder: the table, the verdict, where the report is; and the
messages for bad input (exit code 2, no traceback)."""

from __future__ import annotations

import pytest

import json

from _tiny import tiny_domain
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)


def _folder(root, per_class=12):
    d = tiny_domain(per_class)
    for i, (x, y) in enumerate(zip(d.inputs, d.labels)):
        target = root / d.classes[y]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(target / f"{i:03d}.png")
    return root


def test_compare_command_prints_the_table_and_the_report_path(tmp_path):
    data = _folder(tmp_path / "images")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "compare", "--data", str(data), "--strategies", "linear_probe,last_k", "--seeds", "1",
        "--epochs", "1", "--image-size", "32", "--test-size", "0.25", "--no-map",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "linear_probe" in result.output and "scratch" in result.output
    assert f"{out}/report.html" in result.output.replace("\n", "")
    saved = json.loads((out / "results.json").read_text())
    assert [r["strategy"] for r in saved["summary"]] == ["linear_probe", "last_k", "scratch"]


def test_compare_command_explains_bad_input(tmp_path):
    data = _folder(tmp_path / "images", per_class=6)
    runner = CliRunner()
    bad = runner.invoke(app, ["compare", "--data", str(data), "--strategies", "ful"])
    assert bad.exit_code == 2 and "Did you mean 'full'?" in bad.output
    small = runner.invoke(app, ["compare", "--data", str(data), "--image-size", "32"])
    assert small.exit_code == 2 and "each class needs at least 10 samples" in small.output
    assert "Traceback" not in bad.output + small.output
