"""`adapt` on a numeric target: the methods and validators that apply to regression, a pick by
iwv, the guard, and a run folder with the kept GrafterRegressor."""

from __future__ import annotations

import json

import pytest
from test_adapter_regressor import OPTS, _brightness

from graftlab import GrafterRegressor
from graftlab.config import METHODS
from graftlab.data import Domain
from graftlab.errors import ConfigError
from graftlab.workflows.adapt_regression import (adapt_regression_to_folder,
                                                 regression_methods_from, select_regression)


def _domain(n=24, dark=False, seed=0):
    x, y = _brightness(n, dark, seed)
    return Domain("dark" if dark else "light", "image", x, targets=y)


def test_a_numeric_source_runs_the_regression_adaptation(tmp_path):
    results = adapt_regression_to_folder(
        _domain(), _domain(dark=True, seed=1), methods=["coral", "dan"], out=tmp_path / "run",
        backbone="efficientnet_lite0", strategy="head_only", head="mlp",
        head_options={"hidden": [16]}, epochs=1, batch_size=8, backbone_options=OPTS)
    assert results["task"] == "regression"
    assert [r["method"] for r in results["runs"]] == ["source_only", "coral", "dan"]
    run = results["runs"][1]
    assert set(run["validators"]) == {"iwv", "snd"} and run["validators"]["iwv"] <= 0
    assert {"source_rmse", "target_rmse", "heldout_target_rmse"} <= set(run)
    assert results["kept"] in ("source_only", "coral", "dan")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["model"]["load_with"] == "graftlab.GrafterRegressor.load"
    assert "need class probabilities" in (tmp_path / "run" / "report.md").read_text()
    model = GrafterRegressor.load(tmp_path / "run" / "model")
    assert model.predict(_domain(4).inputs).shape == (4,)


def test_the_default_method_list_keeps_those_for_regression_and_an_explicit_one_is_checked():
    assert regression_methods_from(METHODS, METHODS) == ["source_only", "dann", "dan", "coral"]
    with pytest.raises(ConfigError, match="(?s)mcc needs class probabilities.*use source_only"):
        regression_methods_from(["coral", "mcc"], METHODS)


def test_options_about_classes_are_refused_for_regression(tmp_path):
    with pytest.raises(ConfigError, match="keep='average' applies to class labels"):
        adapt_regression_to_folder(_domain(), _domain(dark=True), methods=["coral"],
                                   keep="average", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_guard_keeps_source_only_when_the_pick_loses_on_the_source():
    runs = [{"method": "source_only", "validators": {"iwv": -2.0, "snd": 1.0}, "source_rmse": 1.0},
            {"method": "coral", "validators": {"iwv": -1.0, "snd": 1.0}, "source_rmse": 1.2}]
    out = select_regression(runs, ["source_only", "coral"], guard=True)
    assert out["selected"] == "coral" and out["kept"] == "source_only"
    assert out["guard"]["source_rmse_rise"] == pytest.approx(0.2)
    assert select_regression(runs, ["source_only", "coral"], guard=False)["kept"] == "coral"


@pytest.mark.slow  # MiniLM on fetched VADER through the command (~20 s)
def test_graftlab_adapt_on_vader_ratings(tmp_path):
    from typer.testing import CliRunner

    from graftlab.cli import app
    from graftlab.data.fetch import vader_file
    from graftlab.errors import DataError

    try:
        vader_file("movies")
    except DataError as exc:
        pytest.skip(f"VADER is not fetched (run `graftlab fetch vader`): {exc}")
    result = CliRunner().invoke(app, [
        "adapt", "--source", "vader_ratings:movies", "--target", "vader_ratings:tweets",
        "--backbone", "minilm_l6", "--strategy", "head_only", "--head", "mlp",
        "--bottleneck", "16", "--epochs", "1", "--limit", "60", "--max-length", "16",
        "--method", "coral", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "graftlab adapt (regression)" in result.output and "| coral" in result.output
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_tracking_a_regression_adaptation_is_refused_by_name(tmp_path):
    import numpy as np

    from graftlab.data.domain import Domain
    from graftlab.errors import ConfigError
    from graftlab.workflows.adapt_regression import adapt_regression_to_folder

    rows = np.zeros((4, 8, 8, 3), np.uint8)
    source = Domain(name="s", modality="image", inputs=rows, targets=np.arange(4.0))
    target = Domain(name="t", modality="image", inputs=rows)
    with pytest.raises(ConfigError, match="--track is not wired into adaptation of a numeric"):
        adapt_regression_to_folder(source, target, methods=["coral"], track="mlflow",
                                   runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before a run folder exists
