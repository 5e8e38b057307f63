"""Run tracking: both backends read back through their own readers (mlflow's client on the
SQLite store, tensorboard's EventAccumulator), the no-op tracker, the error paths, and lazy
imports."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from _tiny_fit import EPOCHS, tiny_fit

from graftlab.errors import ConfigError, NotFoundError
from graftlab.track import check_tracker, open_tracker
from graftlab.track.base import numbers

SRC = Path(__file__).resolve().parents[2] / "src"


def _tracked(kind: str, folder: Path) -> list[dict]:
    with open_tracker(kind, folder, run_name="top") as tracker:
        tracker.log_params({"train": {"epochs": EPOCHS, "lr": 0.1}, "backbone": "tiny"})
        tracker.log_params({"backbone": "tiny"})  # the same value again: fine
        tracker.log_params({"backbone": "other"})  # another: kept as first logged, warned
        with tracker.nested("head_only seed 0") as run:
            history = tiny_fit([run.callback()])
            run.log_metrics({"accuracy": 0.75, "confusion": [[1, 2]], "name": "x"})
        with pytest.raises(RuntimeError, match="the work failed"), tracker.nested("broken"):
            raise RuntimeError("the work failed")
        (folder / "report.md").write_text("# report\n")
        (folder / "model").mkdir()
        (folder / "model" / "weights.bin").write_bytes(b"0")
        tracker.log_outputs(folder)
    return history


def _mlflow(folder: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("graftlab").experiment_id])
    return client, {r.info.run_name: r for r in runs}


def test_mlflow_keeps_params_metrics_per_epoch_nested_runs_and_artifacts(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, "graftlab.track"):
        history = _tracked("mlflow", tmp_path)
    assert "parameter 'backbone' already logged as 'tiny'; 'other' not logged" in caplog.text
    client, runs = _mlflow(tmp_path)
    top, child = runs["top"], runs["head_only seed 0"]
    assert top.data.params == {"train.epochs": "3", "train.lr": "0.1", "backbone": "tiny"}
    assert child.data.tags["mlflow.parentRunId"] == top.info.run_id
    assert child.data.params["trainer.epochs"] == "3"
    assert int(child.data.params["trainer.trainable_params"]) == 4 * 2 + 2
    losses = client.get_metric_history(child.info.run_id, "train_loss")
    assert [m.step for m in losses] == list(range(EPOCHS))
    assert [m.value for m in losses] == pytest.approx([h["train_loss"] for h in history])
    assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) == EPOCHS
    assert "lr_0" in child.data.metrics and child.data.metrics["accuracy"] == 0.75
    assert "confusion" not in child.data.metrics and "name" not in child.data.metrics
    assert {top.info.status, child.info.status} == {"FINISHED"}
    assert runs["broken"].info.status == "FAILED"  # the block raised
    listed = {a.path for a in client.list_artifacts(top.info.run_id)}
    assert listed == {"report.md", "model"}  # the trackers' own stores are not artifacts
    assert [a.path for a in client.list_artifacts(top.info.run_id, "model")] == \
        ["model/weights.bin"]
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts stay in the run folder


def test_tensorboard_event_files_hold_the_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = _tracked("tensorboard", tmp_path)
    child = EventAccumulator(str(tmp_path / "tensorboard" / "head_only_seed_0")).Reload()
    losses = child.Scalars("train_loss")
    assert [e.step for e in losses] == list(range(EPOCHS))
    assert [e.value for e in losses] == pytest.approx([h["train_loss"] for h in history])
    assert {"val_accuracy", "lr_0", "accuracy"} <= set(child.Tags()["scalars"])
    top = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert "params" in " ".join(top.Tags()["tensors"])
    assert not (tmp_path / "tensorboard" / "model").exists()  # artifacts named, not copied


def test_no_tracker_tracks_nothing_and_writes_nothing(tmp_path):
    with open_tracker(None, tmp_path) as tracker:
        tracker.log_params({"a": 1})
        with tracker.nested("child") as run:
            tiny_fit([run.callback()], epochs=1)
        tracker.log_outputs(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_backend_is_named_with_the_known_ones():
    with pytest.raises(NotFoundError, match="unknown tracker 'mlfow'. Known trackers: mlflow, "
                       "tensorboard. Did you mean 'mlflow'?") as error:
        open_tracker("mlfow", Path("."))
    assert "--track takes tensorboard or mlflow" in str(error.value)


def test_a_missing_backend_library_is_explained(monkeypatch):
    import graftlab.track as track

    monkeypatch.setattr(track.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="(?s)--track mlflow needs the mlflow package.*"
                       "pip install 'graftlab\\[track\\]'"):
        check_tracker("mlflow")


def test_a_failing_backend_is_reported_once_and_the_work_goes_on(tmp_path, caplog, monkeypatch):
    from graftlab.track.tensorboard_backend import TensorBoardTracker

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(TensorBoardTracker, "_log_metrics", broken)
    with caplog.at_level(logging.ERROR, "graftlab.track"):
        with open_tracker("tensorboard", tmp_path) as tracker:
            tiny_fit([tracker.callback()])
    failures = [r.getMessage() for r in caplog.records]
    assert len(failures) == 1 and "tracking (tensorboard) failed" in failures[0]
    assert "OSError: disk full" in failures[0] and tracker.broken
    assert tracker.writer.all_writers is None  # a broken tracker still closes its files


def test_without_sqlalchemy_mlflow_falls_back_to_its_folder_store_loudly(tmp_path, caplog,
                                                                         monkeypatch):
    import graftlab.track.mlflow_backend as backend

    found = backend.importlib.util.find_spec
    monkeypatch.setattr(backend.importlib.util, "find_spec",
                        lambda name: None if name == "sqlalchemy" else found(name))
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")  # restored after the test
    with caplog.at_level(logging.WARNING, "graftlab.track"), \
            open_tracker("mlflow", tmp_path, run_name="top") as tracker:
        tracker.log_metrics({"loss": 1.0}, step=0)
    assert tracker.uri == (tmp_path.resolve() / "mlruns").as_uri() and not tracker.broken
    assert "SQLite store needs SQLAlchemy and alembic" in caplog.text
    assert "MLFLOW_ALLOW_FILE_STORE=true" in caplog.text
    assert not (tmp_path / "mlflow.db").exists() and (tmp_path / "mlruns").is_dir()


def test_numbers_keeps_finite_scalars_and_spreads_lists():
    assert numbers({"a": 1, "b": float("nan"), "c": True, "lr": [0.1, 0.2], "s": "x",
                    "n": None}) == {"a": 1.0, "lr_0": 0.1, "lr_1": 0.2}


def test_importing_graftlab_and_its_commands_imports_no_tracker_library():
    code = ("import sys, graftlab, graftlab.track, graftlab.cli.app, graftlab.workflows.fit, "
            "graftlab.workflows.configured\n"
            "graftlab.track.open_tracker(None, '.').close()\n"
            "graftlab.track.check_tracker('mlflow'); graftlab.track.check_tracker('tensorboard')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'tensorboard')"
            " or m.startswith('torch.utils.tensorboard')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
