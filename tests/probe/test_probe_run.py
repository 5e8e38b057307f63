"""run_probe (the `graftlab probe` job) and the run folders every job writes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from graftlab.data import Domain
from graftlab.errors import DataError
from graftlab.workflows.probe import run_probe
from graftlab.report import markdown_table, new_run_folder, write_run


def colour_domain(n_per_class: int = 10, labelled: bool = True) -> Domain:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], n_per_class)
    base = np.where(y[:, None], [30, 80, 220], [220, 60, 30])
    X = np.clip(base[:, None, None, :] + rng.integers(-30, 31, (len(y), 28, 28, 3)), 0, 255)
    return Domain(name="colours", modality="image", inputs=X.astype(np.uint8),
                  labels=y if labelled else None, classes=["red", "blue"])


def test_run_probe_scores_and_records(lite0, tmp_path):
    result = run_probe(colour_domain(), backbone="efficientnet_lite0", image_size=32,
                       test_size=0.3, runs_dir=tmp_path / "runs")
    assert result["train"] + result["test"] == 20 and result["test"] == 6
    assert result["accuracy"] == 1.0  # red vs blue is separable by a linear probe
    folder = Path(result.pop("run_folder"))
    assert folder.parent == tmp_path / "runs" and folder.name.startswith("probe-")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json",
                                                        "summary.md"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics == pytest.approx(result)
    config = json.loads((folder / "config.json").read_text())
    assert config["job"] == "probe" and config["data"] == "colours"
    assert config["backbone"] == "efficientnet_lite0" and config["image_size"] == 32
    assert config["environment"]["torch"].startswith("2.")
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("# Linear probe on colours")
    assert "| accuracy | macro_f1 | probe_C | train | test |" in summary


def test_run_probe_needs_labels(tiny_backbone, tmp_path):
    with pytest.raises(DataError, match=r"data 'colours' has no labels(.|\n)*--label-column"):
        run_probe(colour_domain(labelled=False), backbone=tiny_backbone,
                  runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_run_probe_refuses_data_too_small_to_split(tiny_backbone, tmp_path):
    tiny = colour_domain(n_per_class=2)
    with pytest.raises(DataError, match=r"too small to split: 4 samples, 2 classes(.|\n)*"
                                        r"change --test-size"):
        run_probe(tiny, backbone=tiny_backbone, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_new_run_folders_never_collide(tmp_path):
    folders = [new_run_folder(tmp_path, "job") for _ in range(3)]
    assert len(set(folders)) == 3 and all(f.is_dir() for f in folders)
    stamp = time.strftime("%Y%m%d")
    assert all(re.fullmatch(rf"job-{stamp}-\d{{6}}(-\d)?", f.name) for f in folders)


def test_write_run_writes_three_files(tmp_path):
    folder = new_run_folder(tmp_path / "runs", "x")
    write_run(folder, config={"a": 1}, metrics={"acc": 0.5}, summary="# hi\n")
    assert json.loads((folder / "metrics.json").read_text()) == {"acc": 0.5}
    assert json.loads((folder / "config.json").read_text())["a"] == 1
    assert (folder / "summary.md").read_text() == "# hi\n"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_markdown_table():
    table = markdown_table([{"name": "a", "acc": 0.123456, "n": 3}, {"name": "b", "acc": 1.0}])
    assert table.splitlines() == ["| name | acc | n |", "|---|---|---|", "| a | 0.1235 | 3 |",
                                  "| b | 1 |  |"]
    assert markdown_table([{"x": 1, "y": 2}], columns=["y"]) == "| y |\n|---|\n| 2 |"


def test_run_probe_scores_an_explicit_held_out_set(lite0, tmp_path):
    held = colour_domain(n_per_class=4)
    held = Domain("held", "image", held.inputs[::-1].copy(), labels=1 - held.labels[::-1],
                  classes=["blue", "red"])  # its classes in the other order: recoded
    result = run_probe(colour_domain(), backbone="efficientnet_lite0", image_size=32,
                       test=held, runs_dir=tmp_path / "runs")
    assert (result["train"], result["test"], result["accuracy"]) == (20, 8, 1.0)
    config = json.loads((Path(result["run_folder"]) / "config.json").read_text())
    assert config["test_data"] == "held" and config["test_size"] is None


@pytest.mark.parametrize("kw, message", [
    ({"test_size": 0}, "--test-size must be a number > 0 and < 1, got 0"),
    ({"test_size": 1.0}, "--test-size must be a number > 0 and < 1, got 1.0"),
    ({"image_size": 0}, "--image-size must be an integer >= 1, got 0"),
    ({"runs_dir": "{file}/runs"}, "--runs-dir {file}/runs cannot be written: {file} is a file"),
])
def test_run_probe_refuses_bad_options_before_any_work(tiny_backbone, tmp_path, kw, message):
    from graftlab.errors import ConfigError

    (tmp_path / "f").write_text("")
    kw = {k: v.format(file=tmp_path / "f") if isinstance(v, str) else v for k, v in kw.items()}
    with pytest.raises(ConfigError, match=re.escape(message.format(file=tmp_path / "f"))):
        run_probe(colour_domain(), backbone=tiny_backbone, **{"runs_dir": tmp_path / "runs",
                                                              **kw})
    assert not (tmp_path / "runs").exists()


def test_check_probe_checks_the_options_before_the_data(tmp_path):
    from graftlab.errors import ConfigError
    from graftlab.workflows.probe import check_probe

    assert check_probe(backbone="minilm_l6", runs_dir=tmp_path / "runs") == "text"
    assert check_probe(backbone="minilm_l6", test_size=0, held_out=True) == "text"
    with pytest.raises(ConfigError, match="--task 'ranking' is not one of auto"):
        check_probe(backbone="minilm_l6", task="ranking")
    with pytest.raises(ConfigError, match="give a held-out set with --test-data"):
        check_probe(backbone="minilm_l6", test_size=0)
    assert not (tmp_path / "runs").exists()


def test_load_with_test_reads_the_held_out_set_with_the_same_columns(tmp_path):
    from graftlab.config import ProbeData
    from graftlab.workflows.common import load_with_test

    rows = "".join(f"review {i},{'pos' if i % 2 else 'neg'},{i / 10}\n" for i in range(8))
    for name in ("train.csv", "test.csv"):
        (tmp_path / name).write_text("body,label,score\n" + rows)
    data = ProbeData(path=str(tmp_path / "train.csv"), text_column="body")
    domain, test = load_with_test(data)
    assert domain.classes == ["neg", "pos"] and test is None
    data = ProbeData(path=str(tmp_path / "train.csv"), text_column="body",
                     test_data=str(tmp_path / "test.csv"), target_column="score")
    domain, test = load_with_test(data)
    assert not domain.labelled and not test.labelled  # a target column: the labels unread
    np.testing.assert_allclose(test.targets, np.arange(8) / 10)
