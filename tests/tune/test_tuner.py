"""Tuner: scikit-learn-style results, pruning reports, tracking, SQLite resume, refusals."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from _postgres import free_port
from _tune_data import SPACE, tiny_backbone, tiny_data, tiny_grafter

from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.tune import Tuner


def _tuner(**kw) -> Tuner:
    return Tuner(**{"estimator": tiny_grafter(), "space": SPACE, "cv": 2, "n_trials": 6, **kw})


def test_fit_gives_scikit_learn_style_results():
    x, y = tiny_data()
    t = _tuner(n_trials=8, pruner="none").fit(x, y)
    res = t.cv_results_
    assert res["trial"] == list(range(8)) and set(res["state"]) == {"complete"}
    assert {"param_lr", "param_strategy", "param_batch_size"} <= set(res)
    assert all(len(f) == 2 and np.mean(f) == pytest.approx(s)
               for f, s in zip(res["fold_scores"], res["mean_test_score"], strict=True))
    assert t.best_score_ == max(res["mean_test_score"])
    # scikit-learn's keys, as GridSearchCV names them
    assert res["params"][0] == {k: res[f"param_{k}"][0] for k in res["params"][0]}
    assert res["split0_test_score"] == [f[0] for f in res["fold_scores"]]
    assert res["std_test_score"][0] == pytest.approx(np.std(res["fold_scores"][0]))
    assert res["rank_test_score"][t.best_trial_] == 1
    assert min(res["rank_test_score"]) == 1 and max(res["rank_test_score"]) <= 8
    assert t.best_params_ == {k: res[f"param_{k}"][t.best_trial_] for k in t.best_params_}
    assert t.best_estimator_.get_params()["lr"] == t.best_params_["lr"]
    assert t.best_estimator_.epochs == 3  # the space's fixed settings hold
    assert t.score(x, y) == pytest.approx((t.predict(x) == y).mean())
    # a solved linear probe counts one step per fold, head_only one per epoch
    for strategy, epochs in zip(res["param_strategy"], res["epochs_run"], strict=True):
        assert epochs == (2 if strategy == "linear_probe" else 6)


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_every_epoch_is_reported_so_a_pruner_can_stop_a_trial(pruner):
    import optuna

    x, y = tiny_data()
    t = _tuner(n_trials=12, pruner=pruner, refit=False).fit(x, y)
    trials = t.study_.trials
    head_only = [tr for tr in trials if tr.params["strategy"] == "head_only"]
    finished = [tr for tr in head_only if tr.state == optuna.trial.TrialState.COMPLETE]
    assert all(sorted(tr.intermediate_values) == list(range(6)) for tr in finished)
    pruned = [tr for tr in trials if tr.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "no trial pruned: the median pruner saw no reports"
    assert all(tr.user_attrs["epochs_run"] < 6 for tr in pruned)
    assert len(t.cv_results_["trial"]) == 12


def test_a_tracker_gets_one_nested_run_per_trial():
    runs = {}

    class Run:
        def __init__(self):
            self.params, self.metrics = None, []

        def log_params(self, params):
            self.params = params

        def log_metrics(self, metrics, step):
            self.metrics.append((step, metrics))

    class Tracker:
        @contextmanager
        def nested(self, name):
            runs[name] = Run()
            yield runs[name]

    x, y = tiny_data()
    _tuner(n_trials=3, pruner="none", tracker=Tracker()).fit(x, y)
    assert sorted(runs) == ["trial-0", "trial-1", "trial-2"]
    for run in runs.values():
        assert set(run.params) == {"lr", "strategy", "batch_size"}
        steps = [s for s, m in run.metrics if "val_accuracy" in m]
        assert steps == sorted(steps) and steps[-1] == 5  # 2 folds x 3 epochs, last step
        assert run.metrics[-1][1].keys() == {"cv_accuracy"}


def test_a_study_on_sqlite_resumes_under_its_name(tmp_path):
    x, y = tiny_data()
    db = tmp_path / "study.db"
    first = _tuner(n_trials=3, storage=str(db), study_name="s", refit=False).fit(x, y)
    again = _tuner(n_trials=5, storage=f"sqlite:///{db}", study_name="s", refit=False).fit(x, y)
    assert again.cv_results_["trial"] == [0, 1, 2, 3, 4]
    assert again.cv_results_["param_lr"][:3] == first.cv_results_["param_lr"]
    same = _tuner(n_trials=5, storage=str(db), study_name="s", refit=False).fit(x, y)
    assert len(same.study_.trials) == 5  # already done: no trial more


def test_a_study_with_another_space_is_refused(tmp_path):
    x, y = tiny_data()
    db = str(tmp_path / "study.db")
    _tuner(n_trials=1, storage=db, study_name="s", refit=False).fit(x, y)
    other = {**SPACE, "params": {"lr": {"type": "float", "low": 0.01, "high": 0.1}}}
    with pytest.raises(ConfigError) as exc:
        Tuner(estimator=tiny_grafter(), space=other, cv=2, storage=db, study_name="s").fit(x, y)
    message = str(exc.value)
    assert "study 's' already exists with another set-up" in message
    assert "space.params.lr.high: stored 1.0, now 0.1" in message
    assert "space.params.strategy: stored {'type': 'categorical'" in message
    assert "give a new --study name" in str(exc.value)
    with pytest.raises(ConfigError, match="another set-up: cv: stored 2, now 3"):
        _tuner(cv=3, storage=db, study_name="s").fit(x, y)
    with pytest.raises(ConfigError, match=r"another set-up: data: other samples than the "
                       r"study's \(content hash \w+ stored, \w+ now: another file, or another "
                       r"--limit\)"):
        _tuner(n_trials=1, storage=db, study_name="s", refit=False).fit(x[:-2], y[:-2])


def test_a_storage_that_cannot_connect_names_host_and_port():
    port = free_port()
    with pytest.raises(ConfigError) as exc:
        _tuner(storage=f"postgresql://someone@127.0.0.1:{port}/db").fit(*tiny_data())
    message = str(exc.value)
    assert f"cannot connect to the postgresql server at 127.0.0.1:{port}" in message
    assert "pg_ctl" in message and "--storage study.db" in message


def test_a_sqlite_file_in_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match="the folder .*nowhere of the SQLite file"):
        _tuner(storage=str(tmp_path / "nowhere" / "s.db")).fit(*tiny_data())


@pytest.mark.parametrize("kw, words", [
    ({"cv": 1}, "cv must be a whole number >= 2"),
    ({"n_trials": 0}, "n_trials must be a whole number >= 1"),
    ({"pruner": "medain"}, "pruner must be one of median, hyperband, none"),
    ({"sampler": "grid"}, "sampler must be one of tpe, random"),
    ({"space": None}, "Tuner needs space="),
])
def test_bad_settings_are_named(kw, words):
    with pytest.raises(ConfigError, match=words):
        _tuner(**kw).fit(*tiny_data())


def test_too_few_samples_per_class_for_the_folds():
    x, y = tiny_data()
    with pytest.raises(DataError, match="cv=5 folds need 5 samples of each class; the "
                                        "smallest class has 4"):
        _tuner(cv=5).fit(x[:24:2], y[:24:2])


def test_not_fitted():
    with pytest.raises(NotFittedError, match="Tuner is not fitted yet"):
        _tuner().predict(tiny_data()[0])


def test_storage_urls():
    from graftlab.tune.storage import storage_url

    assert storage_url(None) is None
    assert storage_url("study.db").startswith("sqlite:////") and storage_url(
        "study.db").endswith("/study.db")
    import importlib.util

    driver = "postgresql" if importlib.util.find_spec("psycopg2") else "postgresql+psycopg"
    assert storage_url("postgresql://u@h:5432/d") == f"{driver}://u@h:5432/d"
    assert storage_url("sqlite:///x.db") == "sqlite:///x.db"


def test_an_unknown_database_kind_is_named():
    with pytest.raises(ConfigError, match="unknown database kind 'mongodb'"):
        _tuner(storage="mongodb://localhost/x").fit(*tiny_data())


def test_domain_adaptation_is_scored_without_target_labels():
    from graftlab.adapt import Adapter

    x, y = tiny_data()
    target = 255 - x  # the same squares, inverted: a shifted domain, no labels given
    space = {"params": {"transfer_weight": {"type": "float", "low": 0.1, "high": 1.0},
                        "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
             "fixed": {"epochs": 2, "batch_size": 16}}
    t = Tuner(estimator=Adapter(backbone=tiny_backbone(), method="coral", strategy="full"),
              space=space, n_trials=3, scoring="info_max").fit(x, y, target=target)
    res = t.cv_results_
    assert len(res["trial"]) == 3 and all(len(f) == 1 for f in res["fold_scores"])
    assert all(0 <= s <= np.log(3) + 1e-6 for s in res["mean_test_score"])  # info_max range
    assert t.best_estimator_.predict(target).shape == (48,)
    assert t.study_.user_attrs["graftlab"]["metric"] == "info_max"


@pytest.mark.parametrize("kw, target, words", [
    ({"scoring": "info_max"}, None, "scoring 'info_max' scores predictions on an unlabelled"),
    ({"scoring": "accuracy"}, 1, "scoring must be one of info_max, entropy, snd"),
    ({"scoring": "entropi"}, 1, "Did you mean 'entropy'?"),
])
def test_the_scoring_must_fit_the_labels_there_are(kw, target, words):
    x, y = tiny_data()
    with pytest.raises(ConfigError, match=words):
        _tuner(**kw).fit(x, y, target=None if target is None else x)


def test_an_interrupted_study_keeps_its_trials_and_retries_the_stopped_one(tmp_path,
                                                                           monkeypatch):
    import graftlab.tune.tuner as tuner_module
    from graftlab.tune.tuner import TuneInterrupted

    real, calls = tuner_module.cross_validate, []

    def stopping(est, **kw):
        calls.append(est.lr)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(est, **kw)

    monkeypatch.setattr(tuner_module, "cross_validate", stopping)
    x, y = tiny_data()
    db = tmp_path / "study.db"
    with pytest.raises(TuneInterrupted) as stop:
        _tuner(n_trials=6, storage=str(db), study_name="s", pruner="none").fit(x, y)
    assert isinstance(stop.value, KeyboardInterrupt)
    assert stop.value.tuner.cv_results_["trial"] == [0, 1]  # the finished ones, readable
    monkeypatch.setattr(tuner_module, "cross_validate", real)
    again = _tuner(n_trials=3, storage=str(db), study_name="s", pruner="none",
                   refit=False).fit(x, y)
    # the stopped trial (2, failed) runs again first, with its parameters
    assert again.cv_results_["param_lr"][2] == calls[2]
    assert again.cv_results_["retry_of"][2] == 2


def test_a_from_scratch_trial_leaves_the_shared_backbone_pretrained():
    """pretrained=False re-draws a copy: the folds' shared backbone (and the feature cache
    keyed on its weights) keep the pretrained weights for the trials after it."""
    import torch

    from graftlab.train.build import build_model

    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = build_model(backbone, pretrained=False, num_outputs=3, seed=1)
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


def test_a_pruned_trial_ends_its_tracked_run_as_pruned_not_failed(monkeypatch):
    import optuna

    import graftlab.tune.tuner as tuner_module

    ended, real = {}, tuner_module.cross_validate

    class Run:
        params = {}

        def log_params(self, params):
            self.params = {**self.params, **params}

        def log_metrics(self, metrics, step):
            pass

    class Tracker:
        @contextmanager
        def nested(self, name):
            run = Run()
            try:
                yield run
            except BaseException:
                ended[name] = "failed"
                raise
            ended[name] = run.params.get("trial_state", "finished")

    def pruning(est, **kw):
        if len(ended) == 1:
            raise optuna.TrialPruned
        return real(est, **kw)

    monkeypatch.setattr(tuner_module, "cross_validate", pruning)
    x, y = tiny_data()
    t = _tuner(n_trials=3, pruner="none", tracker=Tracker(), refit=False).fit(x, y)
    assert t.cv_results_["state"] == ["complete", "pruned", "complete"]
    assert ended == {"trial-0": "finished", "trial-1": "pruned", "trial-2": "finished"}


def test_each_fold_reports_from_the_same_step_whatever_a_trials_epochs():
    """With epochs searched, fold 1 of a 1-epoch trial reports where fold 1 of the longest
    trial starts, so the pruner never compares one trial's fold 1 with another's fold 0."""
    from sklearn.model_selection import StratifiedKFold

    from graftlab.data import Domain
    from graftlab.tune.cv import Folds, Reporter, cross_validate

    class Trial:
        steps: list = []

        def report(self, value, step):
            self.steps.append(step)

        def should_prune(self):
            return False

    x, y = tiny_data()
    splits = list(StratifiedKFold(2, shuffle=True, random_state=0).split(x, y))
    folds = Folds(Domain("d", "image", x, labels=y, classes=["a", "b", "c"]), y, splits,
                  tiny_backbone())
    trial = Trial()
    cross_validate(tiny_grafter(strategy="head_only", epochs=1, batch_size=8), folds=folds,
                   reporter=Reporter(trial), stride=4)
    assert trial.steps == [0, 4]
    space = {"params": {"epochs": {"type": "int", "low": 1, "high": 4}}}
    from graftlab.tune.space import load_space
    from graftlab.tune.tuner import _most_epochs

    assert _most_epochs(load_space(space), tiny_grafter(epochs=2)) == 4


def test_early_stopping_picks_its_epoch_inside_each_folds_training_part(monkeypatch):
    from graftlab import Grafter

    calls, fit = [], Grafter.fit

    def spy(self, X, y, **kw):
        calls.append("validation_data" in kw)
        return fit(self, X, y, **kw)

    monkeypatch.setattr(Grafter, "fit", spy)
    x, y = tiny_data()
    space = {"params": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
             "fixed": {"epochs": 3, "augment": False, "strategy": "head_only",
                       "early_stopping": 1}}
    _tuner(space=space, n_trials=1, pruner="none", refit=False).fit(x, y)
    assert calls == [False, False]  # the fold's validation part only scores


def test_a_preset_only_grafter_fit_applies_trains_each_fold_through_it(monkeypatch):
    """feature_mixup (or token_edits, mixup, l2sp) is not on the cached-features fast path:
    each fold trains through Grafter.fit, so the trial measures what the refit will do."""
    from graftlab import Grafter

    calls, fit = [], Grafter.fit

    def spy(self, X, y, **kw):
        calls.append(self.augment)
        return fit(self, X, y, **kw)

    monkeypatch.setattr(Grafter, "fit", spy)
    x, y = tiny_data()
    space = {"params": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
             "fixed": {"epochs": 2, "strategy": "head_only", "augment": "feature_mixup"}}
    _tuner(space=space, n_trials=1, pruner="none", refit=False).fit(x, y)
    assert calls == ["feature_mixup", "feature_mixup"]


def test_an_adapter_without_a_target_and_inputs_without_labels_are_named():
    from graftlab.adapt import Adapter

    x, y = tiny_data()
    with pytest.raises(ConfigError, match=r"an Adapter is tuned on a source and a target"):
        _tuner(estimator=Adapter(backbone=tiny_backbone())).fit(x, y)
    with pytest.raises(DataError, match=r"Tuner.fit\(X\) needs labels"):
        _tuner().fit(x)


def test_a_setting_the_refit_would_refuse_stops_the_study_at_its_first_trial():
    x, y = tiny_data()
    space = {"params": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
             "fixed": {"strategy": "linear_probe", "label_smoothing": 0.1}}
    with pytest.raises(ConfigError, match="linear_probe solves its head in closed form"):
        _tuner(space=space, n_trials=3, pruner="none").fit(x, y)
