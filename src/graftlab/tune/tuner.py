"""``Tuner``: a hyper-parameter search over a Grafter, shaped like scikit-learn's searches.

    Tuner(estimator=Grafter(backbone="minilm_l6", epochs=5), space="space.yaml",
          n_trials=50, cv=3).fit(texts, labels).best_params_

Optuna's TPE sampler (Bergstra et al. 2011, https://papers.nips.cc/paper/4443) proposes each
trial's parameters; a median or Hyperband pruner (Li et al. 2018,
https://arxiv.org/abs/1603.06560) stops trials whose per-epoch validation accuracy trails.
The score is the mean k-fold validation accuracy (:mod:`graftlab.tune.cv`). ``n_trials`` is
the study's total: with a shared ``storage`` several processes (``graftlab tune`` workers on
any machines) fill one study together, and a second run under the same ``study_name``
resumes it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold

from graftlab.adapt import Adapter
from graftlab.backbones import create_backbone
from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.features.extract import as_domain
from graftlab.grafter import Grafter
from graftlab.train.build import backbone_modality
from graftlab.tune.adapt import check_scoring, label_free_score
from graftlab.tune.cv import Folds, Reporter, cross_validate
from graftlab.tune.space import SearchSpace, load_space
from graftlab.tune.storage import open_storage, open_study

logger = logging.getLogger(__name__)
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during :meth:`Tuner.fit`: ``tuner`` holds the study and, where a
    trial had completed, its ``cv_results_`` and best trial (nothing was refitted). The trial
    that was stopped is queued again, so the next run of the study draws it first."""

    def __init__(self, tuner: Tuner) -> None:
        self.tuner = tuner
        super().__init__("tuning interrupted")


class Tuner(BaseEstimator):
    """Search ``space`` (a YAML file, a mapping or a :class:`SearchSpace`) for the parameters
    of ``estimator`` (default ``Grafter()``) that score best in ``cv``-fold cross-validation.

    ``storage``: None (in memory), a SQLite file path or any SQLAlchemy URL; ``study_name``
    names the study there. With ``fit(X, y, target=T)`` (domain adaptation; the estimator an
    ``Adapter``, the default then) a trial is scored without target labels by ``scoring``, a
    label-free validator (:mod:`graftlab.tune.adapt`), instead of by CV accuracy. ``tracker`` (optional) gets a nested run per trial:
    ``tracker.nested(name)`` -> a context manager whose value has ``log_params(dict)`` and
    ``log_metrics(dict, step=)``. ``refit`` fits ``best_estimator_`` on all the data.
    """

    def __init__(self, *, estimator: Grafter | None = None,
                 space: str | Path | dict | SearchSpace | None = None, n_trials: int = 20,
                 cv: int = 3, storage: str | None = None, study_name: str | None = None,
                 sampler: Any = "tpe", pruner: str = "median", scoring: str = "accuracy",
                 seed: int = 0,
                 refit: bool = True, tracker: Any = None, heartbeat_interval: int = 10,
                 grace_period: int | None = None, max_retry: int = 3) -> None:
        self.estimator, self.space, self.n_trials, self.cv = estimator, space, n_trials, cv
        self.storage, self.study_name, self.sampler = storage, study_name, sampler
        self.pruner, self.seed, self.refit, self.tracker = pruner, seed, refit, tracker
        self.scoring = scoring
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.max_retry = max_retry

    # ------------------------------------------------------------------ set-up
    def _check(self, target: Any = None) -> tuple[SearchSpace, Any]:
        if self.space is None:
            raise ConfigError("Tuner needs space=: a YAML file or a mapping with 'params:'.")
        for name, value, low in (("n_trials", self.n_trials, 1), ("cv", self.cv, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}.")
        if isinstance(self.sampler, str) and self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)} (or an Optuna "
                              f"sampler), got {self.sampler!r}.")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)}, got "
                              f"{self.pruner!r}.")
        check_scoring(self.scoring, target)
        space = load_space(self.space)
        base = clone(self.estimator) if self.estimator is not None else (
            Grafter() if target is None else Adapter())
        space.check_names(list(base.get_params(deep=False)))
        if isinstance(base, Adapter) and target is None:
            raise ConfigError("an Adapter is tuned on a source and a target: call "
                              "fit(x_source, y_source, target=x_target).",
                              hint="without a target, tune a Grafter instead.")
        return space, base.set_params(**space.fixed)

    def _sampler(self) -> Any:
        import optuna

        if not isinstance(self.sampler, str):
            return self.sampler
        # workers sharing a study draw different points: each seeds with its process id
        seed = self.seed if self.storage is None else hash((self.seed, os.getpid())) % 2**31
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, self.n_trials))

    def _pruner(self, steps: int) -> Any:
        import optuna

        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps)
        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        return optuna.pruners.NopPruner()

    def _folds(self, base: Grafter, X: Any, y: Any) -> Folds:
        domain = as_domain(X, backbone_modality(base.backbone, base.backbone_options))
        if y is None and not domain.labelled:
            raise DataError("Tuner.fit(X) needs labels: give y (one per input), or a Domain "
                            "that holds them.", hint="e.g. tuner.fit(texts, labels).")
        y = np.asarray(y if y is not None else domain.labels)
        if len(y) != len(domain):
            raise DataError(f"{len(domain)} inputs but {len(y)} labels; give one per input.")
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < self.cv:
            raise DataError(f"cv={self.cv} folds need {self.cv} samples of each class; the "
                            f"smallest class has {counts.min()}.",
                            hint="lower cv (--cv) or add samples.")
        kfold = StratifiedKFold(self.cv, shuffle=True, random_state=self.seed)
        splits = list(kfold.split(np.zeros(len(y)), y))
        backbone = None
        if base.pretrained:  # frozen strategies train on its cached features
            backbone = create_backbone(base.backbone, **(base.backbone_options or {})).eval()
        return Folds(domain, y, splits, backbone)

    def _identity(self, space: SearchSpace, base: Any, data: str) -> dict:
        """What a study under this name must keep: the space, the estimator's fixed settings,
        the folds and the data (``data``: its fingerprint)."""
        params = {k: v for k, v in base.get_params(deep=False).items() if k != "callbacks"}
        settings = json.loads(json.dumps(params, default=lambda v: getattr(v, "name",
                                                                          type(v).__name__)))
        return {"space": space.record(), "estimator": settings, "cv": self.cv,
                "seed": self.seed, "data": data, "metric": self.scoring}

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None, *, target: Any = None,
            progress: Callable[[str, int, int], None] | None = None) -> Tuner:
        """Run trials until the study holds ``n_trials`` finished (complete or pruned) ones;
        then read the results and, with ``refit``, fit the best parameters on all the data.
        ``target``: unlabelled target inputs (domain adaptation, scored label-free).
        ``progress(description, done, total)`` hears the study's finished trials."""
        space, base = self._check(target)
        self.space_ = space  # the loaded space (a file or mapping given), for the record
        if target is None:
            folds = self._folds(base, X, y)
            stride = _most_epochs(space, base)
            data, steps = folds.domain.fingerprint(), self.cv * stride
            score = partial(cross_validate, folds=folds, stride=stride)
        else:
            modality = backbone_modality(base.backbone, base.backbone_options)
            data = "+".join(as_domain(d, modality).fingerprint() for d in (X, target))
            steps = 1
            score = partial(_label_free, X=X, y=y, target=target, scoring=self.scoring)
        storage = open_storage(self.storage, heartbeat_interval=self.heartbeat_interval,
                               grace_period=self.grace_period, max_retry=self.max_retry)
        study = open_study(storage, self.study_name, self._identity(space, base, data),
                           sampler=self._sampler(), pruner=self._pruner(steps))
        self._running = None
        try:
            run_trials(study, self._objective(space, base, score), self.n_trials,
                       poll=max(1, self.heartbeat_interval // 2), progress=progress)
        except KeyboardInterrupt:
            self.study_ = study
            self._requeue(study)
            try:
                self._read(study)
            except ConfigError:  # no trial completed: nothing to read
                pass
            raise TuneInterrupted(self) from None
        self.study_ = study
        self._read(study)
        if self.refit:
            best = clone(base).set_params(**self.best_params_)
            self.best_estimator_ = (best.fit(folds.domain, folds.y) if target is None
                                    else best.fit(X, y, target=target))
        return self

    def _objective(self, space: SearchSpace, base: Any, score: Callable):
        """A trial: draw parameters, ``score(est, reporter)`` -> per-fold scores, the mean."""
        metric = "cv_accuracy" if self.scoring == "accuracy" else f"target_{self.scoring}"

        def objective(trial: Any) -> float:
            import optuna

            self._running = trial.number
            params = space.suggest(trial)
            est = clone(base).set_params(**params)
            run = self.tracker.nested(f"trial-{trial.number}") if self.tracker else nullcontext()
            t0, pruned = time.perf_counter(), None
            with run as tracked:
                if tracked is not None:
                    tracked.log_params(params)
                reporter = Reporter(trial, tracked)
                try:
                    scores = score(est, reporter=reporter)
                except optuna.TrialPruned as stop:  # a tracked run that ends as planned
                    pruned = stop
                    if tracked is not None:
                        tracked.log_params({"trial_state": "pruned"})
                finally:  # a pruned trial's compute counts too
                    trial.set_user_attr("epochs_run", reporter.epochs_run)
                    trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
                if pruned is None:
                    value = float(np.mean(scores))
                    if tracked is not None:
                        tracked.log_metrics({metric: value}, step=len(scores) * est.epochs)
            if pruned is not None:
                raise pruned
            trial.set_user_attr("fold_scores", scores)
            return value
        return objective

    def _requeue(self, study: Any) -> None:
        """Queue the trial a Ctrl-C stopped (Optuna marks it failed) with its parameters, so
        that the study's next run retries it, as a worker killed outright is retried."""
        from optuna.trial import TrialState

        stopped = next((t for t in study.get_trials(deepcopy=False)
                        if t.number == self._running), None)
        if stopped is not None and stopped.state == TrialState.FAIL and stopped.params:
            study.enqueue_trial(stopped.params, user_attrs={"retry_of": stopped.number})

    def _read(self, study: Any) -> None:
        """``cv_results_`` (one entry per finished trial, as lists), the best trial."""
        import optuna

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        trials = [t for t in study.trials if t.state in states]
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise ConfigError(f"study {self.study_name!r}: no trial completed ({len(trials)} "
                              "pruned).", hint="run more trials, or use --pruner none.")
        names = sorted({k for t in trials for k in t.params})
        self.cv_results_ = {
            "trial": [t.number for t in trials],
            "state": [t.state.name.lower() for t in trials],
            **{f"param_{n}": [t.params.get(n) for t in trials] for n in names},
            "mean_test_score": [t.value if t.state == optuna.trial.TrialState.COMPLETE
                                else float("nan") for t in trials],
            "fold_scores": [t.user_attrs.get("fold_scores") for t in trials],
            "epochs_run": [t.user_attrs.get("epochs_run") for t in trials],
            "seconds": [t.user_attrs.get("seconds") for t in trials],
            "retry_of": [t.system_attrs.get("failed_trial", t.user_attrs.get("retry_of"))
                         for t in trials],
        }
        # scikit-learn's keys too (GridSearchCV.cv_results_): params, per-split scores, the
        # spread and the rank (a pruned trial, unscored, ranks last)
        folds = [t.user_attrs.get("fold_scores") or [] for t in trials]
        means = np.asarray(self.cv_results_["mean_test_score"], dtype=float)
        rank = rankdata(-np.nan_to_num(means, nan=-np.inf), method="min").astype(int)  # ties
        # share the best rank, as in scikit-learn
        self.cv_results_.update(
            params=[dict(t.params) for t in trials],
            std_test_score=[float(np.std(f)) if f else float("nan") for f in folds],
            rank_test_score=rank.tolist(),
            **{f"split{i}_test_score": [f[i] if len(f) > i else float("nan") for f in folds]
               for i in range(max((len(f) for f in folds), default=0))})
        best = max(complete, key=lambda t: t.value)
        self.best_trial_, self.best_params_, self.best_score_ = best.number, best.params, \
            best.value

    def _check_fitted(self) -> None:
        if not hasattr(self, "best_estimator_"):
            raise NotFittedError("this Tuner is not fitted yet (or refit=False); call "
                                 "fit(X, y) first.")

    def predict(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self.best_estimator_.predict(X)

    def score(self, X: Any, y: Any) -> float:
        self._check_fitted()
        return self.best_estimator_.score(X, y)


def _label_free(est: Any, *, reporter: Reporter, X: Any, y: Any, target: Any,
                scoring: str) -> list[float]:
    """One fit on source and target, scored by a label-free validator (no pruning: it reports
    once, at the end)."""
    value = label_free_score(est, X, y, target, scoring)
    reporter.epochs_run += est.epochs
    return [value]


def _most_epochs(space: SearchSpace, base: Any) -> int:
    """The most epochs a trial of ``space`` trains (a searched ``epochs``' top)."""
    param = space.params.get("epochs")
    if param is None:
        return int(base.epochs)
    values = param.choices if param.type == "categorical" else [param.high]
    return max(int(base.epochs), *(int(v) for v in values if isinstance(v, int | float)))


def run_trials(study: Any, objective: Any, n_trials: int, poll: float = 1.0,
               progress: Callable[[str, int, int], None] | None = None) -> None:
    """Run trials until the study holds ``n_trials`` finished ones. Trials another worker is
    running count; while they are the only thing between here and ``n_trials`` this worker
    waits (one that dies is failed by its heartbeat and re-enqueued, then run here). Workers
    that check at the same instant can finish a trial or two beyond ``n_trials``."""
    import optuna
    from optuna.trial import TrialState

    while True:
        with warnings.catch_warnings():  # experimental in some Optuna versions
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)  # a no-op without a heartbeat
        trials = study.get_trials(deepcopy=False, states=(
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))
        count = {s: sum(t.state == s for t in trials) for s in TrialState}
        finished = count[TrialState.COMPLETE] + count[TrialState.PRUNED]
        if progress is not None:
            progress("trials", min(finished, n_trials), n_trials)
        if finished >= n_trials:
            return
        if not count[TrialState.WAITING] and finished + count[TrialState.RUNNING] >= n_trials:
            time.sleep(poll)  # others' trials finish the study, unless they die
            continue
        # a failed trial's error is raised here and told once (Optuna would also log it
        # with its traceback at WARNING, a Ctrl-C's included)
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            study.optimize(objective, n_trials=1)
        finally:
            optuna.logging.set_verbosity(level)
