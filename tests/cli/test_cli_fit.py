"""`graftlab fit CONFIG.yaml key=value ...`: trains, scores, saves a loadable model."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from graftlab import Grafter
from graftlab.cli import app


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    for label, value in [("dark", 30), ("bright", 220)]:
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(rng.normal(value, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    return tmp_path / "imgs"


def test_fit_from_yaml_with_overrides(tmp_path):
    data = _folder(tmp_path)
    config = tmp_path / "fit.yaml"
    config.write_text(f"data: {{path: {data}, test_size: 0.3}}\n"
                      f"model: {{backbone: efficientnet_lite0, image_size: 32}}\n"
                      f"train: {{strategy: head_only, epochs: 1, batch_size: 8}}\n"
                      f"runs_dir: {tmp_path / 'runs'}\n")
    result = CliRunner().invoke(app, ["fit", str(config), "train.epochs=3", "train.lr=0.01"])
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    saved = json.loads((folder / "config.json").read_text())
    assert saved["train"]["epochs"] == 3 and len(metrics["history"]) == 3
    assert metrics["accuracy"] >= 0.8  # dark vs bright is easy
    model = Grafter.load(folder / "model")
    assert model.predict(np.full((1, 32, 32, 3), 230, np.uint8)).shape == (1,)


def test_fit_with_a_misspelt_key_names_the_right_one(tmp_path):
    result = CliRunner().invoke(app, ["fit", "data.path=mnist", "train.epoch=2"])
    assert result.exit_code == 2
    assert "'train.epoch' does not exist" in result.stderr
    assert "Did you mean 'train.epochs'" in result.stderr
