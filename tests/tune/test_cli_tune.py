"""`graftlab tune DATA --space space.yaml --trials N`: the run folder and its error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _postgres import free_port
from PIL import Image
from typer.testing import CliRunner

from graftlab import Grafter
from graftlab.cli import app

SPACE = ("params:\n  lr: {type: float, low: 1.0e-3, high: 0.1, log: true}\n"
         "  strategy: {type: categorical, choices: [linear_probe, head_only]}\n"
         "fixed: {epochs: 2, augment: false, batch_size: 8}\n")


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    for label, value in [("dark", 30), ("bright", 220)]:
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(9):
            pixels = np.clip(rng.normal(value, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    (tmp_path / "space.yaml").write_text(SPACE)
    return [str(tmp_path / "imgs"), "--space", str(tmp_path / "space.yaml"), "--image-size",
            "32", "--runs-dir", str(tmp_path / "runs")]


@pytest.mark.slow  # EfficientNet-Lite0's weights
def test_tune_writes_trials_best_params_history_and_the_model(tmp_path):
    args = _folder(tmp_path)
    db = tmp_path / "study.db"
    result = CliRunner().invoke(app, ["tune", *args, "--trials", "4", "--cv", "3",
                                      "--storage", str(db), "--study", "s"])
    assert result.exit_code == 0, result.output
    assert "best mean CV accuracy" in result.output and "study 's'" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["format"] == "graftlab.tune/1" and len(results["trials"]) == 4
    assert results["storage"].startswith("sqlite:///") and results["cv"] == 3
    assert set(results["best_params"]) == {"lr", "strategy"}
    summary = (folder / "summary.md").read_text()
    assert "## Best: trial" in summary and "| trial | state |" in summary
    assert (folder / "history.svg").read_text().startswith("<svg")
    config = json.loads((folder / "config.json").read_text())
    # as the trials ran: the space's fixed values over the command's defaults, and the space
    assert config["train"]["epochs"] == 2 and config["train"]["batch_size"] == 8
    assert config["space"]["params"]["lr"]["log"] is True
    model = Grafter.load(folder / "model")
    assert model.classes_.tolist() == ["bright", "dark"] and model.lr == results["best_params"][
        "lr"]
    again = CliRunner().invoke(app, ["tune", *args, "--trials", "5", "--cv", "3",
                                     "--storage", str(db), "--study", "s"])
    assert again.exit_code == 0, again.output
    assert "the best of 5 finished" in again.output  # resumed: one trial more


@pytest.mark.parametrize("extra, space, words", [
    ([], "params:\n  learning_rate: {type: float, low: 0.1, high: 1}\n",
     ["unknown parameter 'learning_rate'", "Did you mean 'lr'?"]),
    ([], "params:\n  lr: {type: float, low: 1, high: 0.1}\n", ["params.lr", "empty range"]),
    (["--cv", "1"], SPACE, ["--cv (tune.cv) must be an integer >= 2"]),
    (["--pruner", "medain"], SPACE, ["--pruner", "Did you mean 'median'?"]),
])
def test_bad_input_is_named_before_any_trial(tmp_path, extra, space, words):
    args = _folder(tmp_path)
    (tmp_path / "space.yaml").write_text(space)
    result = CliRunner().invoke(app, ["tune", *args, *extra])
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_server_that_does_not_answer_is_named(tmp_path):
    port = free_port()
    result = CliRunner().invoke(app, ["tune", *_folder(tmp_path), "--storage",
                                      f"postgresql://me:secret@127.0.0.1:{port}/db"])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output and "pg_ctl" in result.output
    assert "secret" not in result.output


def test_the_space_is_required(tmp_path):
    result = CliRunner().invoke(app, ["tune", *_folder(tmp_path)[:1]])
    assert result.exit_code == 2
    assert "'tune.space'" in result.output and "give --space" in result.output


@pytest.mark.slow  # EfficientNet-Lite0's weights
def test_tune_tracked_with_mlflow_logs_each_trial_as_a_nested_run(tmp_path):
    from mlflow.tracking import MlflowClient

    args = _folder(tmp_path)
    result = CliRunner().invoke(app, ["tune", *args, "--trials", "3", "--cv", "2",
                                      "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    client = MlflowClient(tracking_uri=f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("graftlab").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    top = by_name[folder.name]
    assert {f"trial-{i}" for i in range(3)} <= set(by_name)
    for i in range(3):
        trial = by_name[f"trial-{i}"]
        assert trial.data.tags["mlflow.parentRunId"] == top.info.run_id
        assert {"lr", "strategy"} <= set(trial.data.params)
    best = json.loads((folder / "results.json").read_text())["best_score"]
    assert top.data.metrics["best_cv_accuracy"] == pytest.approx(best)
    assert "summary.md" in {a.path for a in client.list_artifacts(top.info.run_id)}


@pytest.mark.slow  # EfficientNet-Lite0's weights
def test_an_interrupted_tune_writes_the_finished_trials_and_exits_130(tmp_path, monkeypatch):
    import graftlab.tune.tuner as tuner_module

    real, calls = tuner_module.cross_validate, []

    def stopping(est, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(est, **kw)

    monkeypatch.setattr(tuner_module, "cross_validate", stopping)
    args = _folder(tmp_path)
    result = CliRunner().invoke(app, ["tune", *args, "--trials", "6", "--cv", "2",
                                      "--pruner", "none"])
    assert result.exit_code == 130, result.output
    assert "interrupted: 2 finished trial(s)" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "interrupted" and len(results["trials"]) == 2
    assert "**Interrupted**" in (folder / "summary.md").read_text()
    assert not (folder / "model").exists()  # nothing refitted


def test_a_missing_space_is_named_with_an_example_of_its_own():
    result = CliRunner().invoke(app, ["tune", "digits"])
    assert result.exit_code == 2
    assert "tune.space=space.yaml" in " ".join(result.output.split())
