"""graftlab.advise on a tiny wrapped backbone (no pretrained weights), the decision rule, the
run folder, and the errors (one class, unknown names) through the API and the command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import graftlab
from graftlab.backbones import wrap_module
from graftlab.cli import app
from graftlab.data.domain import Domain
from graftlab.errors import DataError, NotFoundError
from graftlab.scores import Advice, decide
from graftlab.workflows.advise import run_advise


class _Nan(nn.Module):
    def forward(self, x):
        return x * float("nan")


def _backbone():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                            nn.Conv2d(4, 4, 3, padding=1), _Nan()).eval()
    return wrap_module(net, name="tiny")


def _images(n=60, classes=3):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 80, size=(n, 8, 8, 3), dtype=np.uint8)
    y = np.arange(n) % classes
    x[y == 1, :4] += 150
    x[y == 2, :, :4] += 150
    return Domain(name="toy", modality="image", inputs=x, labels=y,
                  classes=[f"c{i}" for i in range(classes)])


def test_advise_scores_every_candidate_and_reports_non_finite_ones():
    advice = graftlab.advise(_images(), backbones=[_backbone()], layers=["1", "2", "3"],
                             poolings=["avg", "max"])
    assert len(advice.candidates) == 6 and advice.task == "classification"
    assert {(c["layer"], c["pooling"]) for c in advice.candidates} == \
        {(layer, p) for layer in "123" for p in ("avg", "max")}
    nan_rows = [c for c in advice.candidates if c["layer"] == "3"]
    assert all(c["scores"][s]["status"] == "non-finite" for c in nan_rows
               for s in ("logme", "hscore", "knn", "probe"))
    ranked = {i for s in ("logme", "probe") for i in advice.rankings[s]}
    assert ranked and not ranked & {advice.candidates.index(c) for c in nan_rows}
    # no source classifier on a wrapped module: NCE and LEEP do not apply
    assert {c["scores"]["leep"]["status"] for c in advice.candidates} == {"not applicable"}
    assert advice.rankings["leep"] == []
    assert advice.agreement["logme"]["probe"] is None or -1 <= advice.agreement["logme"][
        "probe"] <= 1
    r = advice.recommendation
    assert r.by == "probe" and r.layer in ("1", "2")
    assert r.strategy == "probe"  # 60 samples: fewer than the rule's 500 for fine-tuning
    assert set(advice.seconds) >= {"features", "logme", "probe", "total"}


def test_regression_targets_are_scored_by_the_scores_that_take_them():
    d = _images()
    d = Domain(name="toy", modality="image", inputs=d.inputs, targets=d.labels * 1.5)
    advice = graftlab.advise(d, backbones=[_backbone()], layers=["2"], poolings=["avg"],
                             scores=["logme", "hscore", "knn"])
    c = advice.candidates[0]["scores"]
    assert advice.task == "regression"
    assert c["logme"]["status"] == "ok" and c["hscore"]["status"] == "not applicable"
    assert advice.recommendation.by == "logme" and advice.recommendation.strategy == "undecided"


def _advice(probe: float, samples: int) -> Advice:
    cands = [{"backbone": "b", "layer": f"l{i}", "pooling": "avg", "dims": 4,
              "scores": {"probe": {"value": v, "status": "ok", "seconds": 0, "note": ""},
                         "logme": {"value": -v, "status": "ok", "seconds": 0, "note": ""}}}
             for i, v in enumerate([probe - 0.1, probe, probe - 0.2])]
    return decide(Advice("d", "classification", samples, 2, ["probe", "logme"], cands))


@pytest.mark.parametrize("probe,samples,strategy", [(0.80, 2000, "fine-tune"),
                                                    (0.97, 2000, "probe"),
                                                    (0.80, 100, "probe")])
def test_probe_or_fine_tune_rule(probe, samples, strategy):
    advice = _advice(probe, samples)
    assert advice.rankings["probe"] == [1, 0, 2] and advice.rankings["logme"] == [2, 0, 1]
    assert advice.agreement["probe"]["logme"] == pytest.approx(-1.0)
    assert (advice.recommendation.layer, advice.recommendation.strategy) == ("l1", strategy)


def test_run_folder_holds_results_and_reports(tmp_path):
    advice, folder = run_advise(_images(), out=tmp_path / "run", backbones=[_backbone()],
                                layers=["1", "3"], poolings=["avg"], scores=["logme", "probe"])
    results = json.loads((folder / "results.json").read_text())
    assert results["format"] == "graftlab.advise/1" and results["status"] == "done"
    assert results["advice"]["recommendation"]["layer"] == "1"
    md = (folder / "report.md").read_text()
    assert "Use **tiny**, layer **1**" in md and "| tiny | 3 | avg | 4 | non-finite |" in md
    assert "logme non-finite" in md and "not ranked" in md
    assert "<table>" in (folder / "report.html").read_text()


def test_one_class_is_refused_with_the_fix():
    d = _images()
    d = Domain(name="one", modality="image", inputs=d.inputs, labels=np.zeros(len(d), int),
               classes=["cat"])
    with pytest.raises(DataError, match=r"(?s)holds one class \(.cat.\).*HINT: add samples"):
        graftlab.advise(d, backbones=[_backbone()])


def test_a_class_of_one_sample_is_refused():
    d = _images(n=61)
    labels = np.r_[d.labels[:60], 3]
    d = Domain(name="rare", modality="image", inputs=d.inputs, labels=labels,
               classes=["c0", "c1", "c2", "c3"])
    with pytest.raises(DataError, match="class 'c3' of 'rare' has one sample"):
        graftlab.advise(d, backbones=[_backbone()])


def test_unknown_score_and_layer_get_did_you_mean():
    with pytest.raises(NotFoundError, match="unknown score 'logm'.*Did you mean 'logme'"):
        graftlab.advise(_images(), backbones=[_backbone()], scores=["logm"])
    with pytest.raises(NotFoundError, match="unknown layer '7'"):
        graftlab.advise(_images(), backbones=[_backbone()], layers=["7"])


def test_cli_one_class_and_unknown_backbone_exit_2(tmp_path):
    path = tmp_path / "one.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([["text", "label"], *[[f"t{i}", "pos"] for i in range(6)]])
    result = CliRunner().invoke(app, ["advise", str(path), "--runs-dir",
                                                   str(tmp_path)])
    assert result.exit_code == 2 and "holds a single" in result.output  # the loader's check
    assert "HINT: add rows of other classes" in result.output
    result = CliRunner().invoke(app, ["advise", str(path), "-b", "minilm_l5"])
    assert result.exit_code == 2 and "Did you mean 'minilm_l6'" in result.output
    assert not list(tmp_path.glob("advise-*"))


@pytest.mark.slow
def test_efficientnet_offers_its_imagenet_head_to_nce_and_leep(tmp_path):
    """A real backbone (32 px): its ImageNet classifier feeds NCE and LEEP; a second call is
    served from the feature cache."""
    advice = graftlab.advise(_images(n=40, classes=2), backbones=["efficientnet_lite0"],
                             layers=["blocks.10", "head"], poolings=["avg"], image_size=32,
                             scores=["nce", "leep", "logme"])
    for c in advice.candidates:
        assert c["scores"]["leep"]["status"] == "ok" and c["scores"]["leep"]["value"] < 0
        assert c["scores"]["nce"]["status"] == "ok"
    assert len({c["scores"]["leep"]["value"] for c in advice.candidates}) == 1  # per backbone
    from graftlab.features import FeatureCache

    before = len(FeatureCache().entries())
    graftlab.advise(_images(n=40, classes=2), backbones=["efficientnet_lite0"],
                    layers=["blocks.10", "head"], poolings=["avg"], image_size=32,
                    scores=["logme"])
    assert len(FeatureCache().entries()) == before  # nothing extracted again


def test_without_the_probe_the_recommendation_follows_the_first_score_asked():
    from graftlab.scores import Advice, decide

    cands = [{"backbone": "b", "layer": layer, "pooling": "avg",
              "scores": {"knn": {"value": k, "status": "ok"},
                         "logme": {"value": m, "status": "ok"}}}
             for layer, k, m in (("l1", 0.9, -1.0), ("l2", 0.5, 2.0))]
    asked = decide(Advice("d", "classification", 100, 2, ["knn", "logme"], cands))
    assert (asked.recommendation.by, asked.recommendation.layer) == ("knn", "l1")
    other = decide(Advice("d", "classification", 100, 2, ["logme", "knn"],
                          [dict(c) for c in cands]))
    assert (other.recommendation.by, other.recommendation.layer) == ("logme", "l2")


def test_a_constant_regression_target_is_refused():
    d = _images()
    d = Domain(name="flat", modality="image", inputs=d.inputs, targets=np.full(len(d), 5.0))
    with pytest.raises(DataError, match="every target is 5; a constant has nothing"):
        graftlab.advise(d, backbones=[_backbone()], scores=["logme"])


def test_a_layer_pooling_or_score_named_twice_is_scored_once():
    advice = graftlab.advise(_images(), backbones=[_backbone()], layers=["1", "1"],
                             poolings=["avg", "avg"], scores=["knn", "knn"])
    assert len(advice.candidates) == 1 and advice.scores == ["knn"]


def test_an_undecided_verdict_says_why_the_probe_gave_nothing():
    from dataclasses import asdict

    from graftlab.report.advise import verdict

    d = _images()
    d = Domain(name="toy", modality="image", inputs=d.inputs, targets=d.labels * 1.5)
    advice = graftlab.advise(d, backbones=[_backbone()], layers=["2"], poolings=["avg"],
                             scores=["logme"])
    assert "which was not asked for (--score probe adds it)" in verdict(asdict(advice))
