"""`graftlab fit CONFIG.yaml key=value ...`: trains, scores, saves a loadable model."""

from __future__ import annotations

import json

import numpy as np
import pytest
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


def _config(tmp_path, data, strategy="head_only", epochs=1):
    config = tmp_path / "fit.yaml"
    config.write_text(f"data: {{path: {data}, test_size: 0.3}}\n"
                      f"model: {{backbone: efficientnet_lite0, image_size: 32}}\n"
                      f"train: {{strategy: {strategy}, epochs: {epochs}, batch_size: 8}}\n"
                      f"runs_dir: {tmp_path / 'runs'}\n")
    return config


def test_fit_from_yaml_with_overrides(tmp_path):
    data = _folder(tmp_path)
    config = _config(tmp_path, data)
    result = CliRunner().invoke(app, ["fit", str(config), "train.epochs=3", "train.lr=0.01"])
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    saved = json.loads((folder / "config.json").read_text())
    assert saved["train"]["epochs"] == 3 and len(metrics["history"]) == 3
    assert metrics["accuracy"] >= 0.8  # dark vs bright is easy
    model = Grafter.load(folder / "model")
    # the user's label names, not class indices
    assert model.classes_.tolist() == ["bright", "dark"]
    for label in ("dark", "bright"):
        images = np.stack([np.asarray(Image.open(p)) for p in sorted((data / label).iterdir())])
        assert (model.predict(images) == label).mean() >= 0.8


def test_fit_scores_an_explicit_held_out_set(tmp_path):
    data = _folder(tmp_path)
    held = tmp_path / "held"
    for label in ("dark", "bright"):
        (held / label).mkdir(parents=True)
        for i in range(3):
            (data / label / f"{i}.png").rename(held / label / f"{i}.png")
    result = CliRunner().invoke(app, ["fit", f"data.path={data}", f"data.test_data={held}",
                                      "model.image_size=32", "train.epochs=1",
                                      f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["train"], metrics["test"], metrics["test_data"]) == (14, 6, str(held))


def test_fit_with_a_held_out_set_of_another_class_says_so(tmp_path):
    data = _folder(tmp_path)
    for label in ("grey", "dark"):
        (tmp_path / "held" / label).mkdir(parents=True)
        for i in range(2):
            (data / "dark" / f"{i}{label}.png").write_bytes((data / "dark" / f"{i}.png")
                                                            .read_bytes())
            (data / "dark" / f"{i}{label}.png").rename(tmp_path / "held" / label / f"{i}.png")
    result = CliRunner().invoke(app, ["fit", f"data.path={data}",
                                      f"data.test_data={tmp_path / 'held'}",
                                      f"runs_dir={tmp_path / 'runs'}"])
    assert result.exit_code == 2
    assert "has classes the training data lacks: ['grey']" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_fit_with_a_misspelt_key_names_the_right_one(tmp_path):
    result = CliRunner().invoke(app, ["fit", "data.path=mnist", "train.epoch=2"])
    assert result.exit_code == 2
    assert "'train.epoch' does not exist" in result.stderr
    assert "Did you mean 'train.epochs'" in result.stderr


def test_fit_killed_mid_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """The same command after a crash continues from the last finished epoch (it says so), and
    the checkpoint is removed once the run folder is written."""
    from graftlab.train.trainer import Trainer

    config = _config(tmp_path, _folder(tmp_path), "last_k", 3)
    real_save = Trainer._save

    def killed_after_first_epoch(self, epoch, *args):
        real_save(self, epoch, *args)
        if epoch == 0:
            raise RuntimeError("killed")

    monkeypatch.setattr(Trainer, "_save", killed_after_first_epoch)
    result = CliRunner().invoke(app, ["fit", str(config)])
    assert result.exit_code != 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [".checkpoints"]  # no run folder
    checkpoints = list((tmp_path / "runs" / ".checkpoints").iterdir())
    assert len(checkpoints) == 1 and (checkpoints[0] / "checkpoint.pt").is_file()
    monkeypatch.setattr(Trainer, "_save", real_save)
    result = CliRunner().invoke(app, ["fit", str(config)])
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.name != ".checkpoints"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["record"]["resumed_from"]["epoch"] == 0
    assert [h["epoch"] for h in metrics["history"]] == [0, 1, 2]
    assert not (tmp_path / "runs" / ".checkpoints").exists()


@pytest.mark.slow
def test_fit_distils_from_a_run_folder(tmp_path):
    """`graftlab fit ... --distill-from RUN`: the student's run records its teacher (the run's
    model folder and the sha256 of its weights); the saved student loads with Grafter.load."""
    data = _folder(tmp_path)
    config = _config(tmp_path, data, "last_k", 1)
    assert CliRunner().invoke(app, ["fit", str(config)]).exit_code == 0
    (teacher_run,) = (tmp_path / "runs").iterdir()
    result = CliRunner().invoke(app, ["fit", str(config), "--distill-from", str(teacher_run),
                                      "--distill-temperature", "2", "train.seed=1"])
    assert result.exit_code == 0, result.output
    assert "distilled from efficientnet_lite0" in result.output
    (student_run,) = set((tmp_path / "runs").iterdir()) - {teacher_run}
    record = json.loads((student_run / "metrics.json").read_text())["record"]["distillation"]
    assert record["source"] == str(teacher_run / "model") and record["temperature"] == 2.0
    assert record["teacher_outputs"] == "cached"  # last_k does not augment: computed once
    saved = json.loads((student_run / "config.json").read_text())
    assert saved["train"]["distill_from"] == str(teacher_run)
    assert Grafter.load(student_run / "model").distilled_from_ == record


@pytest.mark.parametrize("words, message", [
    (["--distill-from", "/nonexistent/run"], "distill_from /nonexistent/run: does not exist"),
    (["--distill-weight", "1.5"], "--distill-weight (train.distill_weight) must be a number >= 0 "
                                  "and <= 1, got 1.5."),
    (["--distill-temperature", "0"], "--distill-temperature (train.distill_temperature) must be "
                                     "a number > 0, got 0.0."),
])
def test_fit_refuses_a_bad_teacher_before_any_work(tmp_path, words, message):
    result = CliRunner().invoke(app, ["fit", "data.path=mnist", f"runs_dir={tmp_path / 'runs'}",
                                      *words])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "runs").exists()


def test_an_interrupted_fit_says_what_was_kept(tmp_path, monkeypatch):
    import graftlab.workflows.fit as fit_module

    runs = tmp_path / "runs"

    def stopped(config, progress=None):
        folder = fit_module.resume_folder(config)
        folder.mkdir(parents=True)
        (folder / "checkpoint.pt").write_bytes(b"x")  # what the epochs done left
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "run_fit", stopped)
    result = CliRunner().invoke(app, ["fit", "data.path=digits", f"runs_dir={runs}"])
    assert result.exit_code == 130
    said = " ".join(result.output.split())
    assert "interrupted: no model saved" in said and "the same command resumes" in said
