"""run_adapt: source_only beside each method, validators, selection, the guard, distances."""

from __future__ import annotations

import numpy as np
import pytest
from test_adapter import OPTS, _squares

from graftlab.workflows.adapt import run_adapt
from graftlab.data import Domain
from graftlab.errors import DataError, NotFoundError

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)


def _domains():
    xs, ys = _squares(12)
    xt, yt = _squares(12, dark=True, seed=1)
    return (Domain("light", "image", xs, labels=ys, classes=["l", "r"]),
            Domain("dark", "image", xt, labels=yt, classes=["l", "r"]))


def test_run_adapt_scores_selects_and_reports_distances():
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann"], epochs=2, batch_size=8,
                  backbone_options=OPTS)
    assert [x["method"] for x in r["runs"]] == ["source_only", "coral", "dann"]
    for run in r["runs"]:
        assert set(run["validators"]) == {"entropy", "info_max", "snd", "iwv", "ensv"}
        assert 0 <= run["target_accuracy"] <= 1 and 0 <= run["source_accuracy"] <= 1
        # what the partial-label check reads: class masses on the target, per-class source
        assert sum(run["target_class_mass"]) == pytest.approx(1.0)
        assert len(run["source_class_accuracy"]) == len(run["source_class_count"]) == 2
    assert r["selected"] in ("source_only", "coral", "dann")
    assert set(r["validator_picks"]) == {"entropy", "info_max", "snd", "iwv", "ensv"}
    assert r["oracle"] in ("source_only", "coral", "dann")
    assert set(r["validator_matches_oracle"]) == {*r["validator_picks"], "rank vote"}
    assert sorted(r["rank_points"].values()) != [0, 0, 0]
    for when in ("before", "after"):
        assert 0 <= r["distances"][when]["proxy_a_distance"] <= 2
    # the light/dark shift is obvious to a domain classifier on frozen features
    assert r["distances"]["before"]["proxy_a_distance"] > 1.0


def test_guard_keeps_source_only_when_the_validators_vote_for_it(monkeypatch):
    import graftlab.workflows.adapt as run_module

    source, target = _domains()
    real = run_module._score

    def rigged(adapter, *args):  # validators that always prefer source_only
        scored = real(adapter, *args)
        bonus = 1.0 if adapter.method == "source_only" else 0.0
        scored.run["validators"] = {k: v + bonus for k, v in scored.run["validators"].items()}
        return scored

    monkeypatch.setattr(run_module, "_score", rigged)
    kw = {"methods": ["coral"], "epochs": 1, "batch_size": 8, "backbone_options": OPTS}
    guarded = run_adapt(source, target, **kw)
    assert guarded["selected"] == "source_only" and guarded["guard"]["kept_source_only"]
    unguarded = run_adapt(source, target, guard=False, **kw)
    assert unguarded["selected"] == "coral" and not unguarded["guard"]["kept_source_only"]
    # one method's agreement with an ensemble of itself would always pick it: not scored
    assert "ensv" not in guarded["validator_picks"]
    assert guarded["voters"] == ["info_max", "snd"]


def test_label_sets_that_differ_are_named():
    source, target = _domains()
    other = Domain("dark", "image", target.inputs, labels=target.labels, classes=["l", "x"])
    with pytest.raises(DataError, match=r"target has \['x'\].*lacks \['r'\]"):
        run_adapt(source, other, methods=["dann"], backbone_options=OPTS)
    with pytest.raises(NotFoundError, match="Did you mean 'coral'"):
        run_adapt(source, target, methods=["corral"], backbone_options=OPTS)
    unlabelled = Domain("s", "image", source.inputs)
    with pytest.raises(DataError, match="source 's' has no labels"):
        run_adapt(unlabelled, target, methods=["dann"], backbone_options=OPTS)


def test_label_map_renames_and_recodes_target_classes_explicitly(caplog):
    import numpy as np

    from graftlab.workflows.adapt_checks import _check_labels, parse_label_map

    source, target = _domains()
    # the same classes spelt otherwise and listed in another order
    other = Domain("dark", "image", target.inputs, labels=1 - target.labels,
                   classes=["right", "left"])
    with pytest.raises(DataError, match=r"--label-map 'right=r,left=l'"):  # alike names
        _check_labels(source, other)
    extra = Domain("dark", "image", target.inputs, labels=target.labels, classes=["l", "r"])
    three = Domain("s", "image", source.inputs[:3], labels=np.array([0, 1, 2]),
                   classes=["l", "r", "up"])
    with pytest.raises(DataError, match=r"the source has no class for \['up'\]: no --label-map"):
        _check_labels(extra, three)  # no source class left: no map is offered
    mapped = _check_labels(source, other, parse_label_map("left=l, right=r"))
    assert mapped.classes == ["l", "r"] and np.array_equal(mapped.labels, target.labels)
    with pytest.raises(DataError, match=r"names \['up'\], which are not target classes"):
        _check_labels(source, other, {"up": "l"})
    with pytest.raises(DataError, match="still|differ"):
        _check_labels(source, other, {"left": "l"})  # 'right' is left unmapped
    with pytest.raises(DataError, match="not a list of TARGET=SOURCE pairs"):
        parse_label_map("left:l")
    merged = _check_labels(source, other, {"left": "l", "right": "l"})
    assert set(merged.labels.tolist()) == {0}  # allowed (coarse classes), and said
    assert "merges target classes into one source class (right, left -> l)" in caplog.text
    partial = Domain("dark", "image", target.inputs[:4], labels=np.zeros(4, int), classes=["r"])
    assert _check_labels(source, partial).labels.tolist() == [1, 1, 1, 1]  # a subset is fine


def test_label_map_without_target_labels_or_class_names_says_why():
    from graftlab.workflows.adapt_checks import _check_labels

    source, target = _domains()
    assert _check_labels(source, target.unlabelled()) is not None  # no labels, no map: fine
    with pytest.raises(DataError, match="the target has no labels"):
        _check_labels(source, target.unlabelled(), {"l": "r"})
    nameless = Domain("dark", "image", target.inputs, labels=target.labels)
    with pytest.raises(DataError, match="the target's labels have no class names"):
        _check_labels(source, nameless, {"l": "r"})


def image_folders(tmp_path):
    """_domains() written as class folders: tmp_path/light (source), tmp_path/dark (target)."""
    from PIL import Image

    source, target = _domains()
    for d, root in ((source, tmp_path / "light"), (target, tmp_path / "dark")):
        for i, (x, y) in enumerate(zip(d.inputs, d.labels)):
            (root / d.classes[y]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(root / d.classes[y] / f"{i:03d}.png")
    return source, target


def test_adapt_command_writes_the_report_and_refuses_to_overwrite(tmp_path):
    import json

    from typer.testing import CliRunner

    from graftlab.cli import app

    image_folders(tmp_path)
    out = tmp_path / "run"
    args = ["adapt", "--source", str(tmp_path / "light"), "--target", str(tmp_path / "dark"),
            "--method", "coral", "--epochs", "1", "--batch-size", "8", "--image-size", "32",
            "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "source_only" in result.output and "report:" in result.output
    assert "no ensemble to agree with" in result.output  # one method: the guard is weaker
    saved = json.loads((out / "results.json").read_text())
    assert saved["status"] == "complete" and saved["selected"] in ("source_only", "coral")
    page = (out / "report.html").read_text()
    for section in ("verdict", "results", "validators", "distances", "map", "setup"):
        assert f'id="{section}"' in page
    assert 'id="classes"' not in page  # PADA's section only where PADA ran
    assert (out / "model" / "model.safetensors").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "never overwrites" in again.output


def test_a_pada_run_records_its_class_weights_and_the_report_draws_them(tmp_path):
    import json

    from typer.testing import CliRunner

    from graftlab.cli import app

    image_folders(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "adapt", "--source", str(tmp_path / "light"), "--target", str(tmp_path / "dark"),
        "--method", "pada", "--epochs", "2", "--batch-size", "4", "--image-size", "32",
        "--seeds", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["classes"] == ["l", "r"]
    weights = [r["class_weights"] for r in saved["runs"] if r["method"] == "pada"]
    # updated from the target's predictions (all ones would mean no update came)
    assert len(weights) == 2 and all(len(w) == 2 and max(w) == 1.0 and 0 < min(w) < 1
                                     for w in weights)
    assert not any("class_weights" in r for r in saved["runs"] if r["method"] != "pada")
    page = (out / "report.html").read_text()
    assert 'id="classes"' in page and "PADA weighs each source class" in page
    assert (out / "figures" / "classes.svg").read_text().startswith("<svg")
    assert "![Target classes (PADA)](figures/classes.svg)" in (out / "report.md").read_text()


def test_the_class_weights_note_names_the_classes_the_target_seems_to_lack():
    import numpy as np

    from graftlab.report.adapt import class_weights, classes_note

    results = {"classes": ["0", "1", "2"], "runs": [
        {"method": "source_only"}, {"method": "pada", "class_weights": [1.0, 0.2, 0.8]},
        {"method": "pada", "class_weights": [0.9, 0.4, 1.0]}]}
    names, mean, std = class_weights(results)
    np.testing.assert_allclose(mean, [0.95, 0.3, 0.9])
    assert "Below 0.5: 1: the target seems to lack these" in classes_note((names, mean, std))
    assert class_weights({"classes": ["0"], "runs": [{"method": "dann"}]}) is None


def _run(method, src=0.9, **scores):
    return {"method": method, "seed": 0, "source_accuracy": src, "validators": scores}


def test_selection_is_the_rank_vote_of_im_snd_and_ensv():
    from graftlab.evaluate.selection import select as _select

    # info_max favours the confident mcc; snd and ensv favour dann; entropy and iwv also
    # favour mcc: they are reported but do not vote
    runs = [_run("source_only", entropy=-0.9, info_max=0.5, snd=5.0, iwv=-0.8, ensv=0.80),
            _run("dann", entropy=-0.6, info_max=0.6, snd=6.0, iwv=-0.9, ensv=0.90),
            _run("mcc", entropy=-0.1, info_max=0.9, snd=4.0, iwv=-0.1, ensv=0.70)]
    picked = _select(runs, ["source_only", "dann", "mcc"], guard=True)
    assert picked["validator_picks"]["entropy"] == picked["validator_picks"]["iwv"] == "mcc"
    assert picked["voters"] == ["info_max", "snd", "ensv"]
    assert picked["rank_points"] == {"source_only": 2, "dann": 5, "mcc": 2}
    assert picked["selected"] == picked["rank_pick"] == "dann"
    assert "rank vote" in picked["primary_validator"]


def test_a_collapsed_method_that_entropy_favours_is_outvoted():
    from graftlab.evaluate.selection import select as _select

    # MNIST -> MNIST-M seed 0 of the benchmark: mcc is the most confident (entropy, IM) at
    # 49% target accuracy; ensv ranks it last, and coral (76%) wins the vote
    runs = [_run("source_only", entropy=-0.393, info_max=1.686, snd=6.117, ensv=0.741),
            _run("dann", entropy=-0.821, info_max=1.459, snd=7.483, ensv=0.787),
            _run("dan", entropy=-0.661, info_max=1.631, snd=5.392, ensv=0.862),
            _run("coral", entropy=-0.580, info_max=1.698, snd=5.846, ensv=0.869),
            _run("cdan", entropy=-0.627, info_max=1.610, snd=7.353, ensv=0.835),
            _run("mcc", entropy=-0.028, info_max=1.845, snd=6.325, ensv=0.612)]
    picked = _select(runs, ["source_only", "mcc", "cdan", "coral", "dan", "dann"], guard=True)
    assert picked["validator_picks"]["entropy"] == picked["validator_picks"]["info_max"] == "mcc"
    assert picked["rank_points"]["coral"] == 10 and picked["rank_points"]["mcc"] == 8
    assert picked["selected"] == "coral" and not picked["guard"]["kept_source_only"]


def test_guard_keeps_source_only_on_a_tie_and_when_it_ranks_first():
    from graftlab.evaluate.selection import select as _select

    tie = [_run("source_only", info_max=0, snd=1, ensv=float("nan")),
           _run("coral", info_max=1, snd=0, ensv=float("nan"))]
    assert _select(tie, ["source_only", "coral"], guard=True)["selected"] == "source_only"
    assert _select(tie, ["source_only", "coral"], guard=False)["selected"] == "coral"
    # equal scores share a rank: a method that only ties source_only does not beat it
    same = [_run("source_only", info_max=1, snd=1, ensv=float("nan")),
            _run("coral", info_max=1, snd=1, ensv=float("nan"))]
    picked = _select(same, ["source_only", "coral"], guard=True)
    assert picked["rank_points"] == {"source_only": 1.5, "coral": 1.5}
    assert picked["selected"] == "source_only" and picked["guard"]["kept_source_only"]


def test_guard_trips_when_the_pick_loses_source_accuracy():
    from graftlab.evaluate.selection import select as _select

    runs = [_run("source_only", src=0.90, info_max=0.5, ensv=0.8),
            _run("dann", src=0.80, info_max=0.9, ensv=0.9)]
    assert _select(runs, ["source_only", "dann"], guard=True)["selected"] == "source_only"
    assert _select(runs, ["source_only", "dann"], guard=False)["selected"] == "dann"


def test_adapt_command_explains_a_malformed_label_map():
    from typer.testing import CliRunner

    from graftlab.cli import app

    result = CliRunner().invoke(app, ["adapt", "--source", "mnist", "--target", "digits",
                                      "--label-map", "seven"])
    assert result.exit_code == 2
    assert "not a list of TARGET=SOURCE pairs" in result.output


def test_verdict_names_source_only_once_when_the_guard_keeps_it():
    from graftlab.report.adapt import verdict

    runs = [{"method": m, "target_accuracy": a} for m, a in (("source_only", 0.4),
                                                              ("coral", 0.5))]
    dist = {"before": {"proxy_a_distance": 1.9}, "source_only": {"proxy_a_distance": 1.8},
            "after": {"proxy_a_distance": 1.8, "model": "source_only"}}
    text = verdict({"selected": "source_only", "primary_validator": "rank vote of ensv",
                    "guard": {"kept_source_only": True}, "validator_picks": {},
                    "oracle": "coral", "methods": ["source_only", "coral"], "runs": runs,
                    "distances": dist})
    assert text.count("source_only 40.0%") == 1 and "coral) 50.0%" in text
    assert "keeps **source_only**" in text and text.count("source_only's") == 1


def test_validators_table_marks_the_validator_that_does_not_vote():
    from graftlab.evaluate.selection import select as _select
    from graftlab.report.adapt import tables

    runs = [{**_run(m, entropy=e, info_max=-e, snd=e, iwv=-e, ensv=e), "target_accuracy": e,
             "trainable_params": 10, "seconds": 1.0}
            for m, e in (("source_only", 0.5), ("coral", 0.7))]
    results = {"methods": ["source_only", "coral"], "runs": runs,
               "target": {"labelled_for_evaluation": True},
               "distances": {"before": {"proxy_a_distance": 1.0, "mmd": 0.1},
                             "after": {"proxy_a_distance": 0.5, "mmd": 0.05, "model": "coral"}},
               **_select(runs, ["source_only", "coral"], guard=True)}
    head, rows = tables(results)["validators"]
    assert head == ["method", "entropy (no vote)", "info_max", "snd", "iwv (no vote)", "ensv",
                    "rank vote"]
    assert rows[-1][0][2].startswith("matches oracle")


def test_a_target_without_origin_is_scored_through_the_feature_cache(monkeypatch):
    import graftlab.workflows.adapt as run_module
    from graftlab.grafter import Grafter

    source, target = _domains()  # built directly, as --limit builds them: no origin
    assert target.origin is None
    uncached = []
    real_run = Grafter._run

    def spy(self, X, batch_size, *, features):
        uncached.append(getattr(X, "origin", None) is None and
                        self.prediction_route().kind != "inputs")
        return real_run(self, X, batch_size, features=features)

    monkeypatch.setattr(Grafter, "_run", spy)
    run_module.run_adapt(source, target, methods=["coral", "mcc"], epochs=1, batch_size=8,
                         strategy="head_only", head="mlp", head_options={"hidden": [8]},
                         backbone_options=OPTS)
    # every prediction that could read cached features had an origin to key them by
    assert uncached and not any(uncached)


def test_tied_methods_are_separated_by_ensemble_agreement():
    from graftlab.evaluate.selection import select as _select

    # dann and coral tie on points; dann agrees more with the ensemble, and wins whatever
    # order the methods were given in
    runs = [_run("source_only", info_max=0.1, snd=2.0, ensv=0.70),
            _run("dann", info_max=0.3, snd=1.0, ensv=0.90),
            _run("coral", info_max=0.2, snd=3.0, ensv=0.80)]
    for order in (["source_only", "dann", "coral"], ["source_only", "coral", "dann"]):
        picked = _select(runs, order, guard=True)
        assert picked["rank_points"] == {"source_only": 1, "dann": 4, "coral": 4}
        assert picked["selected"] == "dann"


def test_a_diverged_run_neither_votes_in_nor_wins_the_ensemble():
    import numpy as np

    from graftlab.evaluate.validators import ensemble_agreement

    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    broken = np.full((3, 2), np.nan)
    scores = ensemble_agreement([good, broken, good[:, ::-1]], members=[0, 1, 2])
    assert np.isnan(scores[1]) and scores[0] + scores[2] == 1.0


def test_a_labelled_target_is_also_scored_on_a_part_no_training_saw():
    import numpy as np

    from graftlab.workflows.adapt import SeedData

    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann"], epochs=1, batch_size=8,
                  target_holdout=0.25, backbone_options=OPTS)
    assert r["target"]["held_out"] == 0.25
    for part in (*r["runs"], *r["average"], *r["refined"]):
        assert 0 <= part["heldout_target_accuracy"] <= 1 and 0 <= part["target_accuracy"] <= 1
    # the split is random, never by label, and the held-out part is scored by the kept model
    data = SeedData.split(source, target.unlabelled(), target.labels, 0, 0.1, 0.25)
    assert len(data.held) == 6 and len(data.target) == 18
    assert not set(data.held.origin[1]) & set(data.target.origin[1])
    student = r["_models"]["refined"]
    held = np.mean(student.predict(data.held) == data.y_held)
    assert r["refined"][0]["heldout_target_accuracy"] == pytest.approx(held)
    with pytest.raises(Exception, match=r"--target-holdout 1 must be in \[0, 1\)"):
        run_adapt(source, target, methods=["coral"], target_holdout=1, backbone_options=OPTS)


def test_target_labels_change_nothing_but_the_scores():
    """Target labels swapped (l <-> r): the same splits, validators, choices and weights."""
    import torch

    source, target = _domains()
    shuffled = Domain(target.name, "image", target.inputs,
                      labels=1 - target.labels,
                      classes=target.classes)
    kw = {"methods": ["coral", "dann"], "epochs": 1, "batch_size": 8, "backbone_options": OPTS}
    a, b = run_adapt(source, target, **kw), run_adapt(source, shuffled, **kw)
    for key in ("selected", "kept", "validator_picks", "rank_points"):
        assert a[key] == b[key], key
    for x, y in zip(a["runs"] + a["refined"], b["runs"] + b["refined"], strict=True):
        # equal up to float noise (iwv's weights: a fit on features read from the cache)
        assert x["validators"] == pytest.approx(y["validators"], rel=1e-5)
        assert x["source_accuracy"] == y["source_accuracy"]
    assert [r["target_accuracy"] for r in a["runs"]] != [r["target_accuracy"] for r in b["runs"]]
    for name, model in a["_models"].items():
        other = b["_models"][name].grafter_.model_.state_dict()
        for key, value in model.grafter_.model_.state_dict().items():
            assert torch.equal(value, other[key]), (name, key)


def test_the_saved_model_predicts_the_users_class_names(tmp_path):
    from graftlab import Grafter
    from graftlab.workflows.adapt import adapt_to_folder

    source, target = _domains()
    r = adapt_to_folder(source, target, methods=["coral"], epochs=1, batch_size=8,
                        backbone_options=OPTS, out=tmp_path / "run", feature_map=False)
    model = Grafter.load(tmp_path / "run" / "model")
    assert model.classes_.tolist() == ["l", "r"]  # not the ids 0, 1 training used
    assert set(model.predict(target.inputs[:4]).tolist()) <= {"l", "r"}
    assert r["classes"] == ["l", "r"]


def test_problems_the_first_method_would_hit_are_named_before_any_training(monkeypatch,
                                                                            tmp_path):
    from graftlab.adapt.adapter import Adapter
    from graftlab.errors import ConfigError
    from graftlab.workflows.adapt import adapt_to_folder

    def never(*args, **kw):
        raise AssertionError("trained before the check")

    monkeypatch.setattr(Adapter, "fit", never)
    source, target = _domains()
    with pytest.raises(ConfigError, match="dann aligns features, but with strategy 'head_only'"):
        adapt_to_folder(source, target, methods=["dann"], strategy="head_only",
                        backbone_options=OPTS, out=tmp_path / "a")
    with pytest.raises(DataError, match="target 'dark' has 5 sample"):
        adapt_to_folder(source, target.subset(np.arange(5)), methods=["coral"],
                        backbone_options=OPTS, out=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_interrupted_adaptation_keeps_a_report_of_the_finished_runs(monkeypatch, tmp_path):
    import json

    from graftlab.adapt.adapter import Adapter
    from graftlab.workflows.adapt import AdaptInterrupted, adapt_to_folder

    fit, calls = Adapter.fit, []

    def stopping(self, *args, **kw):
        calls.append(self.method)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(self, *args, **kw)

    monkeypatch.setattr(Adapter, "fit", stopping)
    source, target = _domains()
    with pytest.raises(AdaptInterrupted) as stop:
        adapt_to_folder(source, target, methods=["coral", "dann"], head="mlp", epochs=1,
                        batch_size=8, backbone_options=OPTS, out=tmp_path / "run")
    assert isinstance(stop.value, KeyboardInterrupt)  # exits as Ctrl-C does
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["status"] == "interrupted" and len(saved["runs"]) == 1
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Stopped after 1 of 4 runs" in report and "| source_only | 0 |" in report
    assert not (tmp_path / "run" / "model").exists()


def test_a_weighting_selection_weighs_every_models_source_loss(monkeypatch):
    from graftlab.adapt.adapter import Adapter

    fit, seen = Adapter.fit, []

    def spy(self, X, y, *, sample_weight=None, **kw):
        seen.append((X, None if sample_weight is None else np.asarray(sample_weight)))
        return fit(self, X, y, sample_weight=sample_weight, **kw)

    monkeypatch.setattr(Adapter, "fit", spy)
    source, target = _domains()
    weights = np.linspace(0.5, 2.0, len(source))
    run_adapt(source, target, methods=["coral"], epochs=1, batch_size=8, target_holdout=0,
              backbone_options=OPTS, source_weight=weights)
    assert len(seen) == 2
    # each model's weights are those of its training part of the source, sample by sample
    from graftlab.data.domain import dataset_rows

    for X, w in seen:
        assert len(w) < len(weights) and np.array_equal(w, weights[dataset_rows(X)])


def test_the_adapt_command_hands_a_weighting_selections_weights_to_training(monkeypatch):
    import graftlab.workflows.configured as configured
    from graftlab.config import AdaptConfig

    handed = {}
    weights = np.linspace(0.5, 1.5, 100)
    monkeypatch.setattr(configured, "select_source", lambda source, *a, **k: (
        source, {"selector": "kliep", "kept": len(source)}, weights))
    monkeypatch.setattr(configured, "adapt_to_folder",
                        lambda *d, **kw: handed.update(kw) or {"run_folder": "."})
    monkeypatch.setattr(configured, "_with_selection", lambda result, selection: result)
    config = AdaptConfig.model_validate({"data": {"source": "digits", "target": "digits",
                                                  "limit": 100},
                                         "model": {"image_size": 32, "head": "mlp"},
                                         "select": {"selector": "kliep"}})
    configured.run_adapt_config(config)
    assert np.array_equal(handed["source_weight"], weights)
    assert handed["selection"]["selector"] == "kliep"


def test_adapt_selects_from_a_folder_of_part_folders_and_reports_what_it_kept(tmp_path):
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from graftlab.cli import app

    source, target = image_folders(tmp_path)
    for part, (x, y) in {"bright": _squares(12), "grey": _squares(12, dark=True, seed=2)}.items():
        for i, (img, label) in enumerate(zip(x, y)):
            folder = tmp_path / "pool" / part / source.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:03d}.png")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "adapt", "--source", str(tmp_path / "pool"), "--target", str(tmp_path / "dark"),
        "--method", "coral", "--epochs", "1", "--batch-size", "8", "--image-size", "32",
        "--select", "knn", "--no-map", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    # the parts are parts, not classes: the model predicts l and r
    assert saved["classes"] == ["l", "r"]
    parts = saved["selection"]["parts"]
    assert {name: part["total"] for name, part in parts.items()} == {"bright": 24, "grey": 24}
    assert saved["selection"]["kept"] == 24  # half of the pool, the default
    report = (out / "report.md").read_text()
    assert "## Source selection" in report and "selector knn kept 24 of 48" in report


def test_a_saved_model_of_unsorted_class_names_keeps_its_answers_in_sorted_order(tmp_path):
    from graftlab import Grafter
    from graftlab.workflows.adapt import adapt_to_folder

    source, target = _domains()
    flipped = Domain("light", "image", source.inputs, labels=source.labels,
                     classes=["r", "l"])  # id 0 is "r": the names are not in id order
    kept = Domain("dark", "image", target.inputs, labels=target.labels, classes=["r", "l"])
    adapt_to_folder(flipped, kept, methods=["coral"], strategy="head_only", head="mlp",
                    epochs=30, lr=1e-2, batch_size=8, backbone_options=OPTS,
                    out=tmp_path / "run", feature_map=False)
    model = Grafter.load(tmp_path / "run" / "model")
    assert model.classes_.tolist() == ["l", "r"]  # sorted, as a fitted model's are
    truth = np.asarray(flipped.classes)[flipped.labels]
    assert (model.predict(flipped.inputs) == truth).mean() >= 0.9  # rows moved with names

