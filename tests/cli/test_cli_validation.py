"""Every command checks every option, the backbone and the output location before any work:
given an invalid one it exits 2 with a short message naming the option (no traceback), and
leaves no run folder behind, so the corrected command with the same --out then works."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app


@pytest.fixture
def where(tmp_path):
    """Image data (2 classes x 12), a text table, a file to put folders under, the runs dir."""
    rng = np.random.default_rng(0)
    for name, colour in [("red", (210, 40, 30)), ("blue", (30, 60, 210))]:
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(12):
            image = np.clip(np.array(colour) + rng.integers(-20, 21, (32, 32, 3)), 0, 255)
            Image.fromarray(image.astype(np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "reviews.csv").write_text(
        "text,label\n" + "".join(f"review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(24)))
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path


IMG, TXT, FILE, RUNS = "{imgs}", "{csv}", "{file}", "{runs}"
DATA = {"probe": [IMG], "extract": [IMG], "compare": ["--data", IMG],
        "adapt": ["--source", IMG, "--target", IMG], "fit": [f"data.path={IMG}"]}
OUTPUT = {"probe": ["--runs-dir", RUNS], "extract": [], "compare": ["--out", RUNS + "/run"],
          "adapt": ["--out", RUNS + "/run"], "fit": [f"runs_dir={RUNS}"]}

# (command, arguments, what the message must say)
CASES = [
    *[(cmd, ["--batch-size", "0"], "--batch-size (model.batch_size) must be an integer >= 1"
       if cmd == "extract" else "--batch-size (train.batch_size) must be an integer >= 1")
      for cmd in ("extract", "compare", "adapt")],
    *[(cmd, ["--epochs", "0"], "--epochs (train.epochs) must be an integer >= 1, got 0")
      for cmd in ("compare", "adapt")],
    *[(cmd, ["--limit", value], f"--limit (data.limit) must be an integer >= 2, got {value}")
      for cmd in ("compare", "adapt") for value in ("-5", "1", "0")],
    *[(cmd, ["--test-size", value], f"--test-size (data.test_size) must be a number > 0 and "
       f"< 1, got {value}") for cmd in ("probe", "compare") for value in ("0", "1", "1.5")],
    *[(cmd, ["--image-size", "0"], "--image-size (model.image_size) must be an integer >= 1")
      for cmd in ("probe", "extract", "compare", "adapt")],
    *[(cmd, ["--image-size", "64", "--backbone", "minilm_l6"],
       "--image-size (model.image_size) applies to image backbones; minilm_l6 is a text")
      for cmd in ("probe", "extract", "compare", "adapt")],
    *[(cmd, ["--max-length", "16"], "--max-length (model.max_length) applies to text "
       "backbones; efficientnet_lite0 is an image") for cmd in ("probe", "extract", "compare",
                                                                 "adapt")],
    *[(cmd, ["--image-size", "50"], "must be a multiple of 32")
      for cmd in ("probe", "compare", "adapt")],
    *[(cmd, ["--backbone", "efficientnet_lite7"], "unknown backbone 'efficientnet_lite7'")
      for cmd in ("probe", "extract", "compare", "adapt")],
    *[(cmd, ["--backbone", "hf:/nonexistent/path"], "backbone 'hf:/nonexistent/path': "
       "/nonexistent/path is not a Hugging Face model folder (it does not exist)")
      for cmd in ("probe", "extract", "compare", "adapt")],
    ("probe", ["--runs-dir", FILE + "/runs"], "--runs-dir {file}/runs cannot be written: "
     "{file} is a file, not a folder"),
    ("compare", ["--out", FILE + "/run"], "--out {file}/run cannot be written: {file} is a "
     "file"),
    ("adapt", ["--out", FILE + "/run"], "--out {file}/run cannot be written"),
    ("extract", ["--out", FILE + "/x.npy"], "--out {file} cannot be written"),
    ("compare", ["--runs-dir", FILE], "--runs-dir {file} cannot be written"),
    *[(cmd, ["--backbone", "minilm_l6", "--max-length", "9999"], "--max-length "
       "(model.max_length) for minilm_l6 must be at most 256 tokens") for cmd in
      ("probe", "compare")],
    ("compare", ["--seeds", "0"], "--seeds (train.seeds) must be an integer >= 1, got 0"),
    ("compare", ["--lr", "-1"], "--lr (train.lr) must be a number > 0, got -1.0"),
    ("compare", ["--strategies", "lineer_probe"], "unknown strategy 'lineer_probe'"),
    ("compare", ["--task", "ranking"], "--task (task): Input should be 'auto'"),
    ("adapt", ["--lambda", "-1"], "--lambda (train.transfer_weight) must be a number >= 0"),
    ("adapt", ["--pseudo-fraction", "0"], "--pseudo-fraction (train.pseudo_fraction) must be "
     "a number > 0 and <= 1"),
    ("adapt", ["--k", "0"], "--k (model.k) must be an integer >= 1"),
    ("adapt", ["--target-holdout", "1"], "--target-holdout (data.target_holdout) must be a "
     "number >= 0 and < 1, got 1.0"),
    ("adapt", ["--method", "dan,coral,danm"], "unknown adaptation method 'danm'"),
    ("adapt", ["--keep", "best"], "--keep (train.keep): Input should be 'auto'"),
    ("adapt", ["--augment", "token_edits"], "augmentation preset 'token_edits' is for text "
     "inputs, but the backbone takes image. Presets for image: light"),
    ("fit", ["--augment", "expnd"], "unknown augmentation preset 'expnd'"),
    ("fit", ["--augment", "expand", "model.backbone=minilm_l6"], "augmentation preset 'expand' "
     "is for image inputs, but the backbone takes text. Presets for text: token_edits"),
    *[(cmd, ["model.backbon=x"], "config key 'model.backbon' does not exist") for cmd in
      ("probe", "extract", "compare", "adapt", "fit")],
    ("fit", ["train.epochs=0"], "config key 'train.epochs' must be an integer >= 1, got 0"),
    ("fit", ["train.batch_size=0"], "config key 'train.batch_size' must be an integer >= 1"),
    *[("fit", [f"data.test_size={v}"], "config key 'data.test_size' must be a number > 0 and "
       "< 1") for v in ("0", "1", "1.5")],
    ("fit", ["model.image_size=0"], "config key 'model.image_size' must be an integer >= 1"),
    ("fit", ["model.max_length=16"], "--max-length (model.max_length) applies to text "
     "backbones"),
    ("fit", ["model.backbone=hf:/nonexistent/path"], "is not a Hugging Face model folder"),
    ("fit", ["runs_dir={file}/runs"], "runs_dir {file}/runs cannot be written"),
]


def _fill(words: list[str], where) -> list[str]:
    return [w.format(imgs=where / "imgs", csv=where / "reviews.csv", file=where / "a-file",
                     runs=where / "runs") for w in words]


@pytest.mark.parametrize("command, args, message", CASES,
                         ids=[f"{c}:{' '.join(a)}" for c, a, _ in CASES])
def test_an_invalid_option_exits_2_with_one_message_and_no_run_folder(where, command, args,
                                                                       message):
    output = [] if {"--out", "--runs-dir"} & set(args) else OUTPUT[command]
    words = _fill([command, *DATA[command], *output, *args], where)
    result = CliRunner().invoke(app, words)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    error = result.stderr.strip().splitlines()
    assert error[0].startswith("error: ") and len(error) <= 2  # the message, and its HINT
    assert len(error) == 1 or error[1].startswith("HINT: ")
    assert _fill([message], where)[0] in " ".join(error)
    assert not (where / "runs").exists()  # no run folder, not even an empty one


def test_the_corrected_command_with_the_same_out_then_works(where):
    base = ["compare", "--data", str(where / "imgs"), "--out", str(where / "run"),
            "--strategies", "linear_probe", "--no-scratch", "--seeds", "1", "--no-map",
            "--image-size", "32"]
    bad = CliRunner().invoke(app, [*base, "--epochs", "0"])
    assert bad.exit_code == 2 and not (where / "run").exists()
    good = CliRunner().invoke(app, base)
    assert good.exit_code == 0, good.output
    results = json.loads((where / "run" / "results.json").read_text())
    assert results["status"] == "complete" and len(results["runs"]) == 1
    assert "Shared feature extraction" in good.output


def test_compare_with_nothing_to_compare_says_so_before_reading_the_data(where):
    result = CliRunner().invoke(app, ["compare", "--data", str(where / "no-such-folder"),
                                      "--strategies", "", "--no-scratch",
                                      "--out", str(where / "runs" / "run")])
    assert result.exit_code == 2
    assert "nothing to compare: no strategies and no from-scratch baseline" in result.stderr
    assert not (where / "runs").exists()


def test_probe_test_size_zero_names_the_option_not_the_data(where):
    result = CliRunner().invoke(app, ["probe", str(where / "imgs"), "--test-size", "0",
                                      "--runs-dir", str(where / "runs")])
    assert result.exit_code == 2
    assert "--test-size (data.test_size) must be a number > 0 and < 1, got 0.0" in result.stderr
    assert "too small" not in result.stderr and "data" not in result.stderr.split("(")[0]


def test_a_text_backbone_on_images_is_refused_before_any_work(where, tmp_path):
    result = CliRunner().invoke(app, ["probe", str(where / "imgs"), "--backbone", "minilm_l6",
                                      "--runs-dir", str(where / "runs")])
    assert result.exit_code == 2
    assert "holds images but backbone 'minilm_l6' reads texts" in result.stderr
    assert not (where / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--image-size", "0"], "--image-size must be an integer >= 1, got 0"),
    (["--image-size", "50"], "must be a multiple of 32"),
    (["--runs-dir", "{file}/runs"], "--runs-dir {file}/runs cannot be written"),
])
def test_demo_checks_its_options_before_loading_anything(where, args, message):
    result = CliRunner().invoke(app, ["demo", *_fill(args, where)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert _fill([message], where)[0] in result.stderr


def test_adapt_hands_its_augmentation_preset_to_every_adapter(where, monkeypatch):
    import graftlab.workflows.configured as configured

    seen = {}
    monkeypatch.setattr(configured, "adapt_to_folder", lambda *domains, **kw: seen.update(kw)
                        or {"run_folder": str(where / "runs" / "x")})
    imgs = str(where / "imgs")
    result = CliRunner().invoke(app, ["adapt", "--source", imgs, "--target", imgs,
                                      "--augment", "domain_mix", "--image-size", "32",
                                      "--runs-dir", str(where / "runs")])
    assert seen.get("augment") == "domain_mix", (result.output, result.exception)
