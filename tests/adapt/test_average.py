"""--keep average: the mean of the adapted models' probabilities, saved and loaded whole."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_adapter import OPTS
from test_run_adapt import _domains, image_folders

from graftlab.adapt.average import AveragedModel
from graftlab.workflows.adapt import run_adapt
from graftlab.errors import ConfigError

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)

KW = {"epochs": 1, "batch_size": 8, "backbone_options": OPTS}


def test_run_adapt_keeps_the_average_and_scores_it():
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann"], keep="average", guard=False,
                  target_holdout=0, **KW)  # the whole target adapted to, and scored
    assert r["kept"] == "average" and r["selected"] in ("coral", "dann")
    (avg,) = r["average"]
    assert 0 <= avg["target_accuracy"] <= 1 and 0 <= avg["source_accuracy"] <= 1
    models = r["_models"]
    mean = AveragedModel({m: models[m].grafter_ for m in ("coral", "dann")})
    expected = (models["coral"].predict_proba(target) + models["dann"].predict_proba(target)) / 2
    assert np.allclose(mean.predict_proba(target), expected, atol=1e-6)
    assert avg["target_accuracy"] == pytest.approx(
        float((mean.predict(target) == target.labels).mean()))


def test_keep_average_is_refused_with_one_method_or_an_unknown_policy():
    source, target = _domains()
    with pytest.raises(ConfigError, match="there is one"):
        run_adapt(source, target, methods=["coral"], keep="average", **KW)
    with pytest.raises(ConfigError, match="choose 'refined'"):
        run_adapt(source, target, methods=["coral", "dann"], keep="best", **KW)


def test_adapt_command_saves_an_average_that_loads_and_predicts(tmp_path):
    from typer.testing import CliRunner

    from graftlab.cli import app
    from graftlab.data import Domain

    _, target = image_folders(tmp_path)
    tgt = tmp_path / "dark"
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "adapt", "--source", str(tmp_path / "light"), "--target", str(tgt), "--method",
        "coral,dann", "--keep", "average", "--no-guard", "--no-map", "--epochs", "1",
        "--batch-size", "8", "--image-size", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["kept"] == "average" and saved["model"]["members"] == ["coral", "dann"]
    assert "average of coral, dann" in (out / "report.md").read_text()
    model = AveragedModel.load(out / "model")
    probs = model.predict_proba(Domain("x", "image", target.inputs))
    assert probs.shape == (len(target.inputs), 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    with pytest.raises(ConfigError, match="no average.json"):
        AveragedModel.load(out / "model" / "members" / "coral")


def test_an_average_needs_two_models_with_the_same_classes():
    class Fake:
        def __init__(self, classes):
            self.classes_ = np.array(classes)

    with pytest.raises(ConfigError, match="two models or more"):
        AveragedModel({"a": Fake([0, 1])})
    with pytest.raises(ConfigError, match="different classes"):
        AveragedModel({"a": Fake([0, 1]), "b": Fake([0, 2])})


def test_auto_keeps_the_pick_with_one_method():
    source, target = _domains()
    one = run_adapt(source, target, methods=["coral"], guard=False, **KW)
    assert one["kept"] == one["selected"] == "coral" and one["average"] == []
    assert one["refined"] == []


def test_grafter_load_points_an_average_folder_to_its_loader(tmp_path):
    from graftlab import Grafter

    (tmp_path / "average.json").write_text("{}")
    with pytest.raises(ConfigError, match="an average of adapted models") as err:
        Grafter.load(tmp_path)
    assert "AveragedModel.load" in str(err.value.hint)


def test_loading_an_average_of_another_format_names_both(tmp_path):
    (tmp_path / "average.json").write_text(json.dumps({"format": "graftlab.average/9",
                                                       "members": ["coral", "dann"]}))
    with pytest.raises(ConfigError, match=r"'graftlab.average/9', not 'graftlab.average/1'"):
        AveragedModel.load(tmp_path)
