"""The `graftlab` command: lists, extraction, the cache, the probe, and errors as exit code 2."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.features import FeatureCache, extract_features

TEXTS = ["a lovely, moving film", "dull and far too long", "fine", "I would watch it again"]


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([t, i % 2] for i, t in enumerate(TEXTS))
    return path


@pytest.fixture
def squares(tmp_path) -> Path:
    """An image folder: 12 red-ish and 12 blue-ish squares of assorted sizes, as real PNGs."""
    rng = np.random.default_rng(0)
    root = tmp_path / "squares"
    for name, colour in [("red", (210, 40, 30)), ("blue", (30, 60, 210))]:
        (root / name).mkdir(parents=True)
        for i in range(12):
            image = np.full((28, 28, 3), 235, np.uint8)
            side, top, left = rng.integers(10, 20), rng.integers(0, 8), rng.integers(0, 8)
            image[top:top + side, left:left + side] = colour
            Image.fromarray(image).save(root / name / f"{i:02d}.png")
    return root


def test_backbones_lists_the_four_names(cli):
    out = cli("backbones").output
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "minilm_l6"):
        assert name in out  # whole, even on an 80-column, non-terminal output
    assert "hf:PATH" in out and "wrap_module" in out


def test_python_dash_m_graftlab_is_the_same_command_line():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "graftlab", "datasets"], capture_output=True,
                         text=True, check=True).stdout
    assert "mnist" in out and "vader" in out


def test_adapt_help_names_every_registered_method():
    """--method's help is typed (the CLI imports no torch to show it): a method registered
    later must be added there too."""
    from graftlab.methods import list_methods

    command = typer.main.get_command(app).commands["adapt"]
    option = next(p for p in command.params if "--method" in getattr(p, "opts", ()))
    for name in list_methods():
        assert re.search(rf"\b{name}\b", option.help), name


def test_datasets_lists_the_bundled_sets_and_vader_domains(cli):
    out = cli("datasets").output
    for name in ("mnist", "digits", "mnist_m", "vader", "movies", "amazon", "nyt", "tweets"):
        assert name in out
    assert "5,000" in out and "1,797" in out


def test_layers(cli):
    out = cli("layers", "efficientnet_lite0").output
    assert out.startswith("efficientnet_lite0: stem, blocks.0, blocks.1")
    assert "blocks.15, head" in out and "default layer: head; pooling: avg" in out


def test_unknown_backbone_is_exit_code_2_with_the_message(cli):
    result = cli("layers", "efficientnet_lite9", code=2)
    assert "error: unknown backbone 'efficientnet_lite9'" in result.stderr
    assert "Did you mean 'efficientnet_lite" in result.stderr
    assert "Traceback" not in result.output


def test_extract_csv_with_minilm_to_npy(cli, reviews_csv, tmp_path, minilm):
    out = tmp_path / "x.npy"
    result = cli("extract", str(reviews_csv), "--backbone", "minilm_l6", "--out", str(out))
    assert "layer.5: 4 x 384 features" in result.output
    saved = np.load(out)
    assert saved.shape == (4, 384)
    np.testing.assert_allclose(saved, extract_features(minilm, TEXTS), atol=1e-5)


def test_progress_off_a_terminal_is_plain_lines_on_stderr(cli, reviews_csv, tmp_path):
    """A log or a job scheduler sees that the run started; the result on stdout stays clean."""
    result = cli("extract", str(reviews_csv), "--backbone", "minilm_l6", "--out",
                 str(tmp_path / "x.npy"))
    assert re.search(r"^\[\d+s\] extract reviews: \d/4$", result.stderr, re.M), result.stderr
    assert "extract reviews" not in result.stdout


def test_plain_progress_prints_the_first_update_then_one_line_per_interval(capsys):
    from graftlab.cli.app import _plain_progress

    now = [100.0]
    update = _plain_progress(clock=lambda: now[0], interval=10.0)
    for second in range(0, 95):  # a task updated every second for 95 s (a fake clock)
        now[0] = 100.0 + second
        update("trials", second, 95)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["[0s] trials: 0/95", *[f"[{s}s] trials: {s}/95" for s in range(10, 60, 10)],
                     *[f"[1m{s - 60:02d}s] trials: {s}/95" for s in range(60, 95, 10)]]
    now[0] = 195.5
    update("trials", 95, 95)  # the end of a task shown before: printed whatever the interval
    update("epoch 1", 0, 3)
    update("epoch 1", 3, 3)  # a task never shown: its end is not either
    assert capsys.readouterr().err.splitlines() == ["[1m35s] trials: 95/95"]


def test_extract_several_layers_writes_one_file_each(cli, reviews_csv, tmp_path):
    out = tmp_path / "feats.npy"
    cli("extract", str(reviews_csv), "-b", "minilm_l6", "-l", "embeddings", "-l", "layer.2",
        "--pooling", "cls", "--out", str(out), "--no-cache")
    assert np.load(tmp_path / "feats.embeddings.npy").shape == (4, 384)
    assert np.load(tmp_path / "feats.layer.2.npy").shape == (4, 384)
    assert FeatureCache().entries() == []


def test_extract_an_image_folder(cli, squares, tmp_path, lite0):
    out = tmp_path / "squares.npy"
    result = cli("extract", str(squares), "--image-size", "32", "-l", "blocks.3", "--out", str(out))
    assert "blocks.3: 24 x 40 features" in result.output
    assert np.load(out).shape == (24, 40)


def test_extract_an_unlabelled_table(cli, tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    result = cli("extract", str(path), "-b", "minilm_l6", "--no-cache")
    assert "layer.5: 4 x 384 features" in result.output


def test_extract_errors_are_exit_code_2(cli, reviews_csv, tmp_path):
    result = cli("extract", str(tmp_path / "missing.csv"), code=2)
    assert "is neither an existing file or folder" in result.stderr
    result = cli("extract", str(reviews_csv), "-b", "minilm_l6", "-l", "layer.9", code=2)
    assert "unknown layer 'layer.9'" in result.stderr
    result = cli("extract", str(reviews_csv), "-b", "efficientnet_lite0", code=2)
    assert "holds texts but backbone 'efficientnet_lite0' reads images" in result.stderr
    assert "--backbone/-b" in result.stderr


def test_cache_list_and_clear(cli, reviews_csv):
    cli("extract", str(reviews_csv), "-b", "minilm_l6", "-l", "layer.1", "-l", "layer.3")
    entries = FeatureCache().entries()
    assert len(entries) == 2
    listing = cli("cache", "list").output
    assert str(FeatureCache().root) in listing.replace("\n", "")
    for entry in entries:
        assert entry["id"][:8] in listing
    cleared = cli("cache", "clear", "--yes").output
    assert "removed 2 cache entries" in cleared
    assert FeatureCache().entries() == []
    assert "total 0.0 MiB" in cli("cache", "list").output


def test_cache_clear_without_yes_refuses_when_not_interactive(cli, reviews_csv):
    cli("extract", str(reviews_csv), "-b", "minilm_l6", "-l", "layer.1")
    result = cli("cache", "clear", code=2)
    assert "pass --yes" in result.stderr
    assert len(FeatureCache().entries()) == 1


def test_probe_on_an_image_folder(cli, squares, tmp_path):
    runs = tmp_path / "runs"
    result = cli("probe", str(squares), "--image-size", "32", "--runs-dir", str(runs))
    (folder,) = runs.iterdir()
    assert folder.name.startswith("probe-") and str(folder) in result.output.replace("\n", "")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json",
                                                        "summary.md"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["train"] + metrics["test"] == 24
    assert metrics["accuracy"] >= 0.8  # red vs blue squares
    assert f"held-out accuracy {metrics['accuracy']:.3f}" in result.output
    config = json.loads((folder / "config.json").read_text())
    assert config["data"] == "squares" and config["image_size"] == 32
    assert "# Linear probe on squares" in (folder / "summary.md").read_text()


def test_probe_errors_are_exit_code_2(cli, reviews_csv, tmp_path):
    result = cli("probe", str(reviews_csv), "-b", "minilm_l6", "--runs-dir", str(tmp_path / "r"),
                 code=2)
    assert "too small to split" in result.stderr
    assert not (tmp_path / "r").exists()


def test_probe_regression_on_a_numeric_column(cli, tmp_path):
    rng = np.random.default_rng(0)
    words = ["awful", "bad", "fine", "good", "great", "superb"]
    path = tmp_path / "ratings.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "score"])
        for i in range(40):
            k = int(rng.integers(0, len(words)))
            writer.writerow([f"the film was {words[k]} number {i}", k - 2.5])
    runs = tmp_path / "runs"
    result = cli("probe", str(path), "-b", "minilm_l6", "--target-column", "score",
                 "--runs-dir", str(runs))
    assert "R²" in result.output
    (folder,) = runs.iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["task"] == "regression" and metrics["r2"] > 0.3


def test_probe_regression_needs_targets(cli, squares):
    result = cli("probe", str(squares), "--task", "regression", "--image-size", "32", code=2)
    assert "no continuous targets" in result.stderr


def test_extract_out_must_be_an_npy_file(tmp_path):
    from typer.testing import CliRunner

    from graftlab.cli import app

    result = CliRunner().invoke(app, ["extract", "digits", "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 2 and "the name must end in .npy" in " ".join(
        result.output.split())
    assert not (tmp_path / "f.csv").exists()


def test_extract_out_expands_home_and_does_not_overwrite_unasked(cli, reviews_csv, tmp_path,
                                                                 monkeypatch):
    """``--out=~/f.npy`` (a shell leaves the ~ after =) lands in the home folder, not in a
    folder named ~; an existing file is replaced only with --overwrite."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path)
    cli("extract", str(reviews_csv), "-b", "minilm_l6", "--out=~/f.npy")
    assert (tmp_path / "home" / "f.npy").is_file() and not (tmp_path / "~").exists()
    result = cli("extract", str(reviews_csv), "-b", "minilm_l6", "--out=~/f.npy", code=2)
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    cli("extract", str(reviews_csv), "-b", "minilm_l6", "--out=~/f.npy", "--overwrite")


def test_a_run_folder_out_expands_home(tmp_path, monkeypatch):
    from graftlab.workflows.common import run_folder

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with run_folder("~/runs/one", "runs", False, "advise") as folder:
        (folder / "results.json").write_text('{"format": "graftlab.advise/1"}')
    assert (tmp_path / "home" / "runs" / "one" / "results.json").is_file()
    assert not (tmp_path / "~").exists()


def test_a_max_length_without_room_for_a_word_is_refused(cli, reviews_csv):
    result = cli("extract", str(reviews_csv), "-b", "minilm_l6", "--max-length", "2", code=2)
    assert "leaves no room for a word" in result.stderr and "at least 3" in result.stderr


def test_cache_list_skips_a_folder_whose_meta_is_not_an_entry(cli, reviews_csv):
    cli("extract", str(reviews_csv), "-b", "minilm_l6", "-l", "layer.1")
    root = FeatureCache().root
    for name, meta in (("b" * 24, '{"backbone": "x"}'), ("c" * 24, "[1, 2]")):
        (root / name).mkdir()
        (root / name / "meta.json").write_text(meta)
    assert len(FeatureCache().entries()) == 1
    assert "layer.1" in cli("cache", "list").output


def test_extract_with_an_image_size_decodes_a_mixed_folder_to_it(cli, tmp_path, caplog):
    """Images of several sizes and --image-size 32: decoded to 32 once, not to 224 first
    (whose warning named the option the user had passed)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, side in enumerate((20, 40, 60)):
        Image.new("RGB", (side, side), (i * 80, 10, 10)).save(folder / f"{i}.png")
    cli("extract", str(folder), "--image-size", "32", "--no-cache")
    assert "224" not in caplog.text


def test_a_test_size_that_leaves_too_few_to_train_on_is_refused(cli, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,label\n" + "".join(f"good {i},pos\nbad {i},neg\n" for i in range(10)))
    result = cli("probe", str(path), "-b", "minilm_l6", "--test-size", "0.95",
                 "--runs-dir", str(tmp_path / "r"), code=2)
    assert "too small to split" in result.stderr and "training part" in result.stderr
    result = cli("fit", f"data.path={path}", "model.backbone=minilm_l6", "data.test_size=0.95",
                 f"runs_dir={tmp_path / 'r'}", code=2)
    assert "leaves 1 of 20 samples to train on, fewer than the 2 classes" in result.stderr


def test_a_held_out_file_of_one_training_class_is_scored(cli, tmp_path):
    """A test set may hold some of the training classes only (here all 'pos'); a training
    set of one class is still refused."""
    train = tmp_path / "tr.csv"
    train.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n"
                                              for i in range(10)))
    test = tmp_path / "te.csv"
    test.write_text("text,label\n" + "".join(f"great movie {i},pos\n" for i in range(4)))
    result = cli("probe", str(train), "-b", "minilm_l6", "--test-data", str(test),
                 "--runs-dir", str(tmp_path / "r"))
    assert "held-out accuracy" in result.output
    result = cli("probe", str(test), "-b", "minilm_l6", "--runs-dir", str(tmp_path / "r"), code=2)
    assert "holds a single class 'pos'" in result.stderr


def test_a_held_out_file_that_spells_the_class_numbers_otherwise_is_aligned(cli, tmp_path):
    train = tmp_path / "tr.csv"
    train.write_text("text,label\n" + "".join(f"good film {i},1\nbad film {i},0\n"
                                              for i in range(10)))
    test = tmp_path / "te.csv"
    test.write_text("text,label\ngreat movie,01\nawful movie,00\nnice movie,1.0\n")
    result = cli("probe", str(train), "-b", "minilm_l6", "--test-data", str(test),
                 "--runs-dir", str(tmp_path / "r"))
    assert "held-out accuracy" in result.output
