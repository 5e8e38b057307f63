"""Refinement: class-balanced pseudo-labels from the consensus, outliers left out, and one
student self-trained on them (the model kept by default)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_adapter import OPTS, _squares
from test_run_adapt import _domains, image_folders

from graftlab.adapt import Adapter
from graftlab.adapt.refine import confident_pseudo_labels, cut_margin, outliers, plan
from graftlab.workflows.adapt import run_adapt
from graftlab.errors import ConfigError, DataError

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)

KW = {"epochs": 1, "batch_size": 8, "backbone_options": OPTS}


def test_pseudo_labels_keep_the_confident_share_of_every_predicted_class():
    conf0 = [0.9, 0.8, 0.7, 0.6, 0.55, 0.52]  # six samples predicted 0
    conf1 = [0.95, 0.6, 0.58, 0.51]           # four predicted 1, the class a global cut favours
    probs = np.array([[c, 1 - c] for c in conf0] + [[1 - c, c] for c in conf1])
    labels = confident_pseudo_labels(probs, 0.5)
    assert labels.tolist() == [0, 0, 0, -1, -1, -1, 1, 1, -1, -1]
    assert (confident_pseudo_labels(probs, 1.0) == probs.argmax(1)).all()
    # a class the teacher predicts once keeps that one sample
    lone = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]])
    assert confident_pseudo_labels(lone, 0.1).tolist() == [0, -1, 1]


def test_pseudo_labels_refuse_bad_teachers_and_fractions():
    with pytest.raises(DataError, match="not finite"):
        confident_pseudo_labels(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError, match=r"\(samples, classes\)"):
        confident_pseudo_labels(np.array([0.2, 0.8]))
    with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
        confident_pseudo_labels(np.array([[0.2, 0.8]]), 0.0)


def test_outliers_are_far_below_the_median_agreement_or_diverged():
    agree = {"dann": 0.82, "dan": 0.86, "coral": 0.87, "cdan": 0.84, "mcc": 0.61}
    assert outliers(agree) == ["mcc"]
    assert outliers({**agree, "mcc": 0.75}) == []  # 11 points below the median: kept
    assert outliers({**agree, "dann": float("nan")}) == ["dann", "mcc"]


def test_plan_teaches_with_the_consensus_and_picks_the_student_among_its_members():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200)
    good = np.eye(3)[truth] * 0.6 + 0.4 / 3
    collapsed = np.tile([0.98, 0.01, 0.01], (200, 1))  # most confident, and wrong
    probs = {"dan": good, "coral": good * 0.9 + 0.1 / 3, "cdan": good,
             "mcc": collapsed}
    im = {"dan": 0.5, "coral": 0.7, "cdan": 0.6, "mcc": 1.9}  # IM favours the collapse
    step = plan(probs, im)  # the default: the student by information maximisation
    assert step["outliers"] == ["mcc"] and step["student"] == "coral"
    assert step["members"] == ["dan", "coral", "cdan"]
    np.testing.assert_allclose(step["teacher"], np.mean([probs[m] for m in step["members"]],
                                                        axis=0))
    assert step["pseudo_labels"] == int((confident_pseudo_labels(step["teacher"]) >= 0).sum())
    # the student by agreement: the member whose argmax matches the ensemble's most often
    noisy = good.copy()
    noisy[:60] = np.roll(noisy[:60], 1, axis=1)  # wrong on 60 samples
    by_agreement = plan({**probs, "dan": noisy}, im, student="agreement")
    assert by_agreement["student"] in ("coral", "cdan")
    assert by_agreement["agreement"]["dan"] < by_agreement["agreement"][by_agreement["student"]]
    with pytest.raises(ConfigError, match="student='loudest': choose one of info_max, agreement"):
        plan(probs, im, student="loudest")


def test_the_cut_margin_is_the_distance_of_the_nearest_model_to_the_outlier_cut():
    agree = {"dann": 0.82, "dan": 0.86, "coral": 0.87, "cdan": 0.84, "mcc": 0.61}
    # median 0.84, cut 0.69: mcc is 8 points below it, dann 13 above
    assert cut_margin(agree) == pytest.approx(0.08)
    assert cut_margin({**agree, "mcc": 0.70}) == pytest.approx(0.01)
    assert cut_margin({"a": float("nan")}) == 0.0


def test_a_teacher_pulls_the_student_towards_its_labels_on_the_target():
    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    kw = {"method": "source_only", "strategy": "head_only", "head": "mlp", "epochs": 30,
          "batch_size": 8, "lr": 1e-2, "backbone_options": OPTS}
    alone = Adapter(**kw).fit(xs, ys, target=xt).predict(xt)
    teacher = np.eye(2)[1 - alone]  # says the opposite of what source training predicts
    taught = Adapter(**kw, pseudo_fraction=1.0, pseudo_weight=3.0).fit(
        xs, ys, target=xt, teacher_proba=teacher).predict(xt)
    assert (taught == 1 - alone).mean() >= 0.9
    assert (Adapter(**kw).fit(xs, ys, target=xt).predict(xt) == alone).all()  # seeded


def test_a_teacher_of_the_wrong_shape_is_explained():
    xs, ys = _squares()
    xt, _ = _squares(dark=True, seed=1)
    with pytest.raises(DataError, match=r"teacher_proba has shape \(3, 2\).*16 samples"):
        Adapter(method="mcc", **KW).fit(xs, ys, target=xt, teacher_proba=np.ones((3, 2)) / 2)


def test_run_adapt_keeps_the_refined_student_by_default():
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann", "mcc"], guard=False,
                  target_holdout=0, **KW)  # the whole target adapted to, and scored
    assert r["keep"] == "auto" and r["kept"] == "refined" and r["shown"] == "refined"
    (run,) = r["refined"]
    assert run["student"] in run["members"] and set(run["members"]) | set(run["outliers"]) == \
        {"coral", "dann", "mcc"}
    assert run["student_by"] == "info_max"  # round 2's choice (BENCHMARKS.md)
    assert 0 < run["pseudo_labels"] <= len(target)
    assert 0 <= run["target_accuracy"] <= 1 and 0 <= run["teacher_accuracy"] <= 1
    student = r["_models"]["refined"]
    assert run["target_accuracy"] == pytest.approx(
        float((student.predict(target) == target.labels).mean()))
    assert r["distances"]["after"]["model"] == "refined"
    kept = run_adapt(source, target, methods=["coral", "dann"], keep="average", guard=False,
                     **KW)
    assert kept["kept"] == "average" and kept["refined"] == []  # only trained when kept


def test_adapt_command_saves_the_refined_student_as_one_model(tmp_path):
    from typer.testing import CliRunner

    from graftlab import Grafter
    from graftlab.cli import app

    _, target = image_folders(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "adapt", "--source", str(tmp_path / "light"), "--target", str(tmp_path / "dark"),
        "--method", "coral,dann", "--no-guard", "--no-map", "--epochs", "1",
        "--batch-size", "8", "--image-size", "32", "--pseudo-fraction", "0.3",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["kept"] == "refined" and saved["model"]["method"] == "refined"
    assert saved["model"]["student"] in ("coral", "dann")
    assert saved["config"]["pseudo_fraction"] == 0.3
    assert "refined" in (out / "report.md").read_text() and "Kept:" in result.output
    assert "half of the consensus" in result.output  # two methods: the outlier test is weak
    model = Grafter.load(out / "model")
    assert model.predict(target.inputs).shape == (len(target.inputs),)


def test_run_adapt_teaches_the_student_with_the_consensus_of_its_members(monkeypatch):
    seen = []
    fit = Adapter.fit

    def spy(self, X, y, *, target, teacher_proba=None, progress=None, sample_weight=None):
        seen.append((self.method, teacher_proba))
        return fit(self, X, y, target=target, teacher_proba=teacher_proba, progress=progress,
                   sample_weight=sample_weight)

    monkeypatch.setattr(Adapter, "fit", spy)
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann", "mcc"], guard=False,
                  target_holdout=0, **KW)
    (run,) = r["refined"]
    assert [m for m, t in seen if t is None] == ["source_only", "coral", "dann", "mcc"]
    (student, teacher), = [(m, t) for m, t in seen if t is not None]
    assert student == run["student"]
    models = r["_models"]
    expected = np.mean([models[m].predict_proba(target) for m in run["members"]], axis=0)
    np.testing.assert_allclose(teacher, expected, atol=1e-5)


def test_the_guard_rejects_a_student_that_loses_source_accuracy(monkeypatch):
    import graftlab.workflows.adapt as run_module

    real = run_module._refine

    def worse(*args, **kwargs):
        run, student = real(*args, **kwargs)
        return {**run, "source_accuracy": 0.0}, student

    monkeypatch.setattr(run_module, "_refine", worse)
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann"], **KW)
    assert r["guard"]["refined_rejected"] and r["guard"]["refined_source_drop"] > 0.05
    assert r["kept"] == r["selected"] != "refined"
    from graftlab.report.adapt import verdict

    assert "the guard keeps" in verdict(r)
    free = run_adapt(source, target, methods=["coral", "dann"], guard=False, **KW)
    assert free["kept"] == "refined"  # --no-guard keeps it all the same


def test_bad_pseudo_options_are_refused_before_any_training():
    source, target = _domains()
    with pytest.raises(ConfigError, match=r"pseudo_fraction=1.5 must be in \(0, 1\]"):
        run_adapt(source, target, methods=["coral", "dann"], pseudo_fraction=1.5, **KW)
    with pytest.raises(ConfigError, match="pseudo_weight=-1"):
        run_adapt(source, target, methods=["coral", "dann"], pseudo_weight=-1, **KW)


def test_every_run_checkpoints_into_its_own_folder(tmp_path):
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann"], guard=False,
                  checkpoint_dir=str(tmp_path / "ckpt"), **KW)
    folders = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    student = r["refined"][0]["student"]
    assert folders == sorted(["source_only_seed0", "coral_seed0", "dann_seed0",
                              f"refined_{student}_seed0"])
    # a student of the same method as a finished run still trains: it has its own folder
    assert len(r["_models"]["refined"].history_) == KW["epochs"]


def test_plan_refuses_when_every_adapted_model_diverged():
    nan = np.full((4, 2), np.nan)
    with pytest.raises(DataError, match="every adapted model's target predictions diverged") \
            as err:
        plan({"dann": nan, "mcc": nan}, {"dann": 0.1, "mcc": 0.2})
    assert "--lambda" in str(err.value.hint)


def test_collapsed_compares_the_students_snd_with_source_onlys():
    from graftlab.evaluate.selection import collapsed

    def results(student_snd):
        return {"runs": [{"method": "source_only", "validators": {"snd": s}} for s in (1.0, 1.2)]
                + [{"method": "dann", "validators": {"snd": 9.0}}],
                "refined": [{"validators": {"snd": s}} for s in student_snd], "guard": {}}

    denser = results([1.3, 1.2])  # mean 1.25 against source_only's 1.1
    assert collapsed(denser, guard=True) and denser["guard"]["refined_collapsed"]
    assert denser["guard"]["refined_snd_rise"] == pytest.approx(0.15)
    off = results([1.3, 1.2])
    assert not collapsed(off, guard=False) and off["guard"]["refined_snd_rise"] > 0
    looser = results([1.0, 1.1])
    assert not collapsed(looser, guard=True) and looser["guard"]["refined_snd_rise"] < 0


@pytest.mark.parametrize("snd, kept", [(1e6, "source_only"), (-1e6, "refined")])
def test_the_guard_keeps_source_only_when_the_student_collapses(monkeypatch, snd, kept):
    import graftlab.workflows.adapt as run_module
    from graftlab.evaluate.selection import select
    from graftlab.report.adapt import verdict

    real = run_module._refine

    def student(*args, **kwargs):  # the student's SND set far above or below source_only's
        run, model = real(*args, **kwargs)
        return {**run, "validators": {**run["validators"], "snd": snd}}, model

    monkeypatch.setattr(run_module, "_refine", student)
    # the vote's own guard off, so only the collapse check can keep source_only
    monkeypatch.setattr(run_module, "select", lambda runs, chosen, guard: select(runs, chosen,
                                                                                  False))
    source, target = _domains()
    r = run_adapt(source, target, methods=["coral", "dann"], **KW)
    assert r["kept"] == kept and r["guard"]["refined_collapsed"] == (kept == "source_only")
    assert (r["guard"]["refined_snd_rise"] > 0) == (snd > 0)
    assert ("SND rose" in verdict(r)) == (kept == "source_only")
    if kept == "source_only":
        assert r["shown"] == "source_only"
        free = run_adapt(source, target, methods=["coral", "dann"], guard=False, **KW)
        assert free["kept"] == "refined"  # --no-guard keeps the student
