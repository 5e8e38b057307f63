"""The demo (MNIST -> MNIST-M) on a 300-image subset: run folder, numbers, and never overwriting.

The real demo uses all images (about a minute); here `load_dataset` is patched to return 300
random mnist digits and 150 mnist_m images (the demo drops the mnist digits mnist_m was made
from: about half of the 300).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import graftlab.workflows.demo as demo
from graftlab.cli import app
from graftlab.data import load_dataset, without_shared
from graftlab.data.bundled import mnist_m_rows
from graftlab.probe import LinearProbeClassifier

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)

N = 300


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(0)
    return {"mnist": load_dataset("mnist").subset(np.sort(rng.permutation(5000)[:N])),
            "mnist_m": load_dataset("mnist_m").subset(np.sort(rng.permutation(2500)[:N // 2]))}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One feature cache for this module, so only the first demo run extracts."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture
def small_demo(monkeypatch, small_data, shared_cache):
    monkeypatch.setattr(demo, "load_dataset", lambda name: small_data[name])
    monkeypatch.setenv("GRAFTLAB_CACHE", str(shared_cache))


def table_rows(summary: str) -> list[list[str]]:
    lines = [line for line in summary.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_demo_writes_a_consistent_run_folder(small_demo, small_data, tmp_path):
    metrics = demo.run_demo(runs_dir=tmp_path)
    folder = Path(metrics.pop("run_folder"))
    assert folder.parent == tmp_path and folder.name.startswith("demo-")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json",
                                                        "summary.md"]
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    # the source digits mnist_m's 150 images were made from are out of training, all of them
    source, target, dropped = without_shared(small_data["mnist"], small_data["mnist_m"])
    assert dropped["source"] > 0 and len(target) == 150
    assert not set(source.origin[1]) & set(mnist_m_rows()[target.origin[1]])
    assert saved["train_samples"] == len(source) - round(0.2 * len(source))
    assert saved["source_accuracy"] > 0.5
    assert saved["source_accuracy"] > saved["target_accuracy"]

    summary = (folder / "summary.md").read_text()
    rows = table_rows(summary)
    assert [r[0] for r in rows] == ["mnist (source, held out)", "mnist_m (target)"]
    for row, (acc, f1), n in zip(rows, [("source_accuracy", "source_macro_f1"),
                                        ("target_accuracy", "target_macro_f1")],
                                 [round(0.2 * len(source)), 150], strict=True):
        assert int(row[1]) == n
        assert float(row[2]) == pytest.approx(saved[acc], abs=5e-4)
        assert float(row[3]) == pytest.approx(saved[f1], abs=5e-4)
    gap = float(re.search(r"loses (-?[\d.]+) points of accuracy", summary).group(1))
    assert gap == pytest.approx(100 * (saved["source_accuracy"] - saved["target_accuracy"]),
                                abs=0.05)
    assert "chosen by cross-validation" in summary  # ~230 samples: below the hold-out minimum
    config = json.loads((folder / "config.json").read_text())
    assert (config["source"], config["target"], config["image_size"]) == ("mnist", "mnist_m", 64)


def test_a_second_run_gets_a_new_folder_and_the_same_numbers(small_demo, tmp_path):
    first = demo.run_demo(runs_dir=tmp_path)
    first_summary = (Path(first["run_folder"]) / "summary.md").read_text()
    second = demo.run_demo(runs_dir=tmp_path)
    assert second["run_folder"] != first["run_folder"]
    assert len(list(tmp_path.iterdir())) == 2
    assert (Path(first["run_folder"]) / "summary.md").read_text() == first_summary
    for key in ("source_accuracy", "target_accuracy", "probe_C"):
        assert second[key] == first[key]


def test_summary_names_the_hold_out_split_when_it_is_used(small_demo, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "LinearProbeClassifier",
                        functools.partial(LinearProbeClassifier, holdout_min=100))
    metrics = demo.run_demo(runs_dir=tmp_path)
    summary = (Path(metrics["run_folder"]) / "summary.md").read_text()
    assert "chosen on a stratified 20% hold-out split" in summary


def test_demo_command(small_demo, tmp_path):
    result = CliRunner().invoke(app, ["demo", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    assert "mnist (source, held out)" in result.output and "mnist_m (target)" in result.output
    metrics = json.loads((folder / "metrics.json").read_text())
    assert f"{metrics['source_accuracy']:.3f}" in result.output
    assert folder.name in result.output
