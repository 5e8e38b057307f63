"""``--track`` on fit, compare and adapt: the command's parameters, every trained model's
per-epoch metrics in a nested run of its own, the report and the model as artifacts; and a
bad ``--track`` refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.data import Domain


def _squares(n: int = 12, dark: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: a bright square on the left or on the right (dark: a shifted domain)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(150 if dark else 0, 200 if dark else 90, (2 * n, 32, 32, 3), dtype=np.uint8)
    y = np.repeat([0, 1], n)
    for i, label in enumerate(y):
        x[i, 10:22, (2 if label == 0 else 18):][:, :12] = 40 if dark else 250
    return x, y


def _image_folder(root):
    x, y = _squares()
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        (root / "lr"[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "lr"[label] / f"{i}.png")
    return root


def _mlflow_runs(folder):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("graftlab").experiment_id])
    return client, {r.info.run_name: r for r in found}


def test_a_bad_track_is_refused_before_any_work(tmp_path):
    data = _image_folder(tmp_path / "images")
    result = CliRunner().invoke(app, ["fit", f"data.path={data}", "model.image_size=32",
                                      f"runs_dir={tmp_path / 'runs'}", "--track", "mlfow"])
    assert result.exit_code == 2
    assert "unknown tracker 'mlfow'" in result.output and "Did you mean 'mlflow'?" in result.output
    assert not (tmp_path / "runs").exists()
    result = CliRunner().invoke(app, ["compare", "--data", str(data), "--image-size", "32",
                                      "--out", str(tmp_path / "c"), "track=tensorbord"])
    assert result.exit_code == 2 and "Did you mean 'tensorboard'?" in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.slow  # trains the real EfficientNet-Lite0's head
def test_fit_tracked_with_mlflow_keeps_config_epochs_final_scores_and_model(tmp_path, offline):
    data = _image_folder(tmp_path / "images")
    with offline():
        result = CliRunner().invoke(app, [
            "fit", f"data.path={data}", "model.image_size=32", "train.epochs=2",
            "train.batch_size=8", f"runs_dir={tmp_path / 'runs'}", "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    client, runs = _mlflow_runs(folder)
    (run,) = runs.values()
    assert run.info.run_name == folder.name and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2" and run.data.params["track"] == "mlflow"
    assert run.data.params["trainer.epochs"] == "2"  # from the trainer's callback
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0, 1]
    assert 0 <= run.data.metrics["accuracy"] <= 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "metrics.json", "config.json", "summary.md"} <= artifacts


@pytest.mark.slow  # trains the real EfficientNet-Lite0's last blocks
def test_compare_tracked_with_tensorboard_has_a_sub_run_per_strategy_and_seed(tmp_path,
                                                                                offline):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from graftlab.workflows.compare import run_compare

    x, y = _squares(8)
    domain = Domain("squares", "image", x, labels=y, classes=["l", "r"])
    with offline():
        run_compare(domain, strategies=["linear_probe", "last_k"], scratch=False, seeds=1,
                    epochs=2, batch_size=8, image_size=32, test_size=0.25, feature_map=False,
                    out=tmp_path / "run", track="tensorboard")
    board = tmp_path / "run" / "tensorboard"
    assert sorted(p.name for p in board.iterdir() if p.is_dir()) == \
        ["last_k_seed_0", "linear_probe_seed_0"]
    trained = EventAccumulator(str(board / "last_k_seed_0")).Reload()
    assert [e.step for e in trained.Scalars("train_loss")] == [0, 1]
    assert "accuracy" in trained.Tags()["scalars"]
    top = EventAccumulator(str(board)).Reload()
    assert any("artifacts" in tag for tag in top.Tags()["tensors"])


@pytest.mark.slow  # adapts the real EfficientNet-Lite0
def test_adapt_tracked_with_mlflow_has_a_nested_run_per_method(tmp_path, offline):
    from graftlab.workflows.adapt import adapt_to_folder

    (xs, ys), (xt, yt) = _squares(), _squares(dark=True, seed=1)
    source = Domain("light", "image", xs, labels=ys, classes=["l", "r"])
    target = Domain("dark", "image", xt, labels=yt, classes=["l", "r"])
    with offline():
        adapt_to_folder(source, target, methods=["coral"], epochs=2, batch_size=8,
                        backbone_options={"image_size": 32}, feature_map=False,
                        out=tmp_path / "run", track="mlflow")
    client, runs = _mlflow_runs(tmp_path / "run")
    assert set(runs) == {"run", "source_only seed 0", "coral seed 0"}
    top = runs["run"]
    assert top.data.params["methods"] == "['source_only', 'coral']"
    for name in ("source_only seed 0", "coral seed 0"):
        nested = runs[name]
        assert nested.data.tags["mlflow.parentRunId"] == top.info.run_id
        history = client.get_metric_history(nested.info.run_id, "train_loss")
        assert [m.step for m in history] == [0, 1]
        assert {"source_accuracy", "info_max"} <= set(nested.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(top.info.run_id)}
    assert {"model", "report.md", "report.html", "results.json"} <= artifacts
