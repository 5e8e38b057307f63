"""`graftlab select`: a folder pool of two parts, a target like one of them; the run folder
holds the kept indices, weights, the per-part table and the pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app


def _save(folder, images):
    folder.mkdir(parents=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i}.png")


def _data(tmp_path, n=8):
    rng = np.random.default_rng(0)

    def plain(value, n=n):
        return np.clip(rng.normal(value, 20, (n, 32, 32, 3)), 0, 255).astype(np.uint8)

    def stripes(n=n):
        x = rng.integers(0, 255, (n, 32, 32, 3)).astype(np.uint8)
        x[:, ::4] = 255
        return x

    for label, value in [("dark", 30), ("bright", 220)]:
        _save(tmp_path / "pool" / "plain" / label, plain(value))
        _save(tmp_path / "pool" / "noisy" / label, stripes())
        _save(tmp_path / "target" / label, plain(value, 6))
    return tmp_path / "pool", tmp_path / "target"


@pytest.mark.slow  # EfficientNet-Lite0's weights, on 64 small images
def test_select_writes_kept_weights_and_report(tmp_path):
    pool, target = _data(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["select", "--pool", str(pool), "--target", str(target),
                                      "--selector", "knn", "--keep-fraction", "0.5",
                                      "--image-size", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parts"] == {"noisy": {"kept": 0, "total": 16},
                                "plain": {"kept": 16, "total": 16}}
    assert metrics["emptied_parts"] == ["noisy"] and "no sample left of noisy" in result.output
    kept, weights = np.load(out / "kept.npy"), np.load(out / "weights.npy")
    assert len(kept) == 16 and weights.shape == (32,) and (weights[kept] > 0).all()
    assert metrics["curve"] and {r["fraction"] for r in metrics["curve"]} >= {0.5, 1.0}
    summary = (out / "summary.md").read_text()
    assert "kept_vs_dropped.svg" in summary and (out / "fraction_curve.svg").exists()
    again = CliRunner().invoke(app, ["select", "--pool", str(pool), "--target", str(target),
                                     "--image-size", "32", "--out", str(out), "--overwrite"])
    assert again.exit_code == 0, again.output  # its own run folder: replaceable
    assert json.loads((out / "results.json").read_text())["format"] == "graftlab.select/1"


def test_select_refuses_a_keep_fraction_outside_0_1(tmp_path):
    pool, target = _data(tmp_path)
    result = CliRunner().invoke(app, ["select", "--pool", str(pool), "--target", str(target),
                                      "--keep-fraction", "1.5", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "keep fraction must be in (0, 1], got 1.5" in result.output
    assert not (tmp_path / "r").exists()


def test_adapt_select_options_are_checked_before_any_work(tmp_path):
    pool, target = _data(tmp_path)
    result = CliRunner().invoke(app, ["adapt", "--source", str(pool / "plain"), "--target",
                                      str(target), "--select", "knn", "--keep-fraction", "0",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "keep fraction must be in (0, 1], got 0" in result.output
    result = CliRunner().invoke(app, ["adapt", "--source", str(pool / "plain"), "--target",
                                      str(target), "--select", "knnn"])
    assert result.exit_code == 2 and "Did you mean 'knn'" in result.output
    assert not (tmp_path / "r").exists()


def test_select_keys_in_the_adapt_config():
    from graftlab.config import AdaptConfig, load_config

    cfg = load_config(None, ["select.selector=kliep", "select.keep_fraction=0.3"],
                      schema=AdaptConfig, options={"data.source": "mnist",
                                                   "data.target": "mnist_m"})
    assert cfg.select.selector == "kliep" and cfg.select.keep_fraction == 0.3
    assert AdaptConfig(data={"source": "a", "target": "b"}).select.selector is None


def test_fit_select_needs_a_target(tmp_path):
    pool, _ = _data(tmp_path)
    result = CliRunner().invoke(app, ["fit", f"data.path={pool / 'plain'}", "--select", "knn",
                                      f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2
    assert "--select knn needs a target to select for" in result.output
    assert "--select-target DATA" in result.output


@pytest.mark.slow  # EfficientNet-Lite0's weights; one epoch on 16 images
def test_fit_trains_on_what_the_selector_keeps(tmp_path):
    pool, target = _data(tmp_path)
    result = CliRunner().invoke(app, [
        "fit", f"data.path={pool / 'plain'}", "model.image_size=32", "train.epochs=1",
        "data.test_size=0.25", "--select", "kliep", "--keep-fraction", "0.5",
        "--select-target", str(target), f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["selection"]["selector"] == "kliep" and metrics["train"] == 6


@pytest.mark.slow  # EfficientNet-Lite0's weights; source_only and dann, one epoch each
def test_adapt_trains_on_what_the_selector_keeps(tmp_path):
    pool, target = _data(tmp_path, n=22)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "adapt", "--source", str(pool / "plain"), "--target", str(target), "--method", "dann",
        "--strategy", "head_only", "--head", "mlp", "--bottleneck", "8", "--epochs", "1",
        "--image-size", "32", "--select", "knn", "--keep-fraction", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    selection = json.loads((out / "selection.json").read_text())
    assert selection["selector"] == "knn" and selection["kept"] == 22
    assert json.loads((out / "results.json").read_text())["source"]["size"] == 22
