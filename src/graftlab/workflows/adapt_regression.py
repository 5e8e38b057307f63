"""``graftlab adapt`` for a numeric target (a source with targets and no class labels, e.g.
``vader_ratings:movies`` -> ``vader_ratings:tweets``).

Every run trains ``source_only`` beside the methods (:class:`~graftlab.adapt.AdapterRegressor`:
dann, dan, coral; cdan and mcc need class probabilities and are refused). The validators
that apply to regression score each model without target labels: ``iwv``, the importance-
weighted squared error on held-out source (Sugiyama et al. 2007, who defined it for
regression), and ``snd`` on the adapted target features (reported; it measures how clustered
the features are, a notion made for classes). Entropy, information maximisation and ensemble
agreement read class probabilities and do not apply; neither do the refined student and the
average of probabilities. The pick is the best mean ``iwv``; the guard keeps ``source_only``
when that is the pick, or when the pick's held-out source RMSE is more than
:data:`MAX_SOURCE_RMSE_RISE` above source_only's. Target targets, when present, only score.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from graftlab import _atomic
from graftlab.adapt.regressor import check_regression_method, regression_methods
from graftlab.data.domain import Domain
from graftlab.errors import DataError
from graftlab.evaluate.validators import iwv_squared_error, snd

MAX_SOURCE_RMSE_RISE = 0.10  # relative: the pick may not be more than 10% worse on the source
VALIDATORS = ("iwv", "snd")  # the label-free scores that apply to regression


def is_regression(source: Domain) -> bool:
    """A source to regress on: numeric targets and no class labels."""
    return not source.labelled and source.targets is not None


def regression_methods_from(methods: list[str], default: list[str]) -> list[str]:
    """source_only first, then ``methods``; the default list loses those that need class
    probabilities (a note says which), an explicit one that names them is refused."""
    from graftlab.workflows.adapt_checks import check_methods

    chosen = check_methods(methods)
    if list(methods) == list(default):
        return [m for m in chosen if m in regression_methods()]
    for method in chosen:
        check_regression_method(method)
    return chosen


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(y, dtype=float)) ** 2)))


def _pearson(pred: np.ndarray, y: np.ndarray) -> float:
    y = np.asarray(y, dtype=float)
    return float(np.corrcoef(pred, y)[0, 1]) if len(y) > 1 and y.std() and np.std(pred) \
        else float("nan")


def run_adapt_regression(source: Domain, target: Domain, *, methods: list[str], seeds: int = 1,
                         first_seed: int = 0, holdout: float = 0.1,
                         target_holdout: float = 0.2, guard: bool = True,
                         progress=None, **adapter_kw: Any) -> dict:
    """Train source_only and ``methods`` per seed; score with the validators that apply to
    regression; pick by iwv; guard. Returns the results (models under ``_models``)."""
    from graftlab.adapt import AdapterRegressor
    from graftlab.workflows.adapt import _shared_weights

    if target.targets is not None and len(target.targets) != len(target):
        raise DataError(f"target {target.name!r}: its targets do not match its inputs.")
    y_t = target.targets
    target_in = target.unlabelled()  # its targets, where it has them, only score
    results: dict[str, Any] = {"format": "graftlab.adapt/2", "task": "regression",
                               "status": "running", "source": source.describe(),
                               "target": target_in.describe(), "methods": methods,
                               "validators": list(VALIDATORS), "runs": []}
    models, t0 = {}, time.perf_counter()
    for seed in range(first_seed, first_seed + seeds):
        tr, va = train_test_split(np.arange(len(source)), test_size=holdout, random_state=seed)
        src_train, src_val = source.subset(np.sort(tr)), source.subset(np.sort(va))
        adapt_idx, held_idx = _target_split(len(target_in), y_t, target_holdout, seed)
        tgt, held = target_in.subset(adapt_idx), target_in.subset(held_idx) \
            if len(held_idx) else None
        weights = _shared_weights(src_train, src_val, tgt, adapter_kw)
        for method in methods:
            if progress:
                progress(f"{method} seed {seed}", len(results["runs"]), seeds * len(methods))
            t = time.perf_counter()
            a = AdapterRegressor(method=method, seed=seed, **adapter_kw)
            a.fit(src_train, src_train.targets, target=tgt)
            run = _score(a, src_val, tgt, weights)
            if y_t is not None:
                run["target_rmse"] = _rmse(a.predict(tgt), y_t[adapt_idx])
                run["target_pearson_r"] = _pearson(a.predict(tgt), y_t[adapt_idx])
                if held is not None:
                    run["heldout_target_rmse"] = _rmse(a.predict(held), y_t[held_idx])
                    run["heldout_target_pearson_r"] = _pearson(a.predict(held), y_t[held_idx])
            run.update(method=method, seed=seed, seconds=time.perf_counter() - t,
                       trainable_params=int(a.trainable_params_))
            results["runs"].append(run)
            if seed == first_seed:
                models[method] = a
    results.update(select_regression(results["runs"], methods, guard))
    results.update(status="complete", seconds_total=time.perf_counter() - t0, _models=models)
    return results


def _target_split(n: int, y_t: np.ndarray | None, fraction: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    if y_t is None or not fraction:
        return np.arange(n), np.arange(0)
    adapt, held = train_test_split(np.arange(n), test_size=fraction, random_state=seed)
    return np.sort(adapt), np.sort(held)


def _score(a: Any, src_val: Domain, tgt: Domain, weights: np.ndarray) -> dict:
    pred_v = a.predict(src_val)
    return {"validators": {"iwv": iwv_squared_error(pred_v, src_val.targets, weights),
                           "snd": snd(a.transform(tgt))},
            "source_rmse": _rmse(pred_v, src_val.targets)}


def select_regression(runs: list[dict], methods: list[str], guard: bool) -> dict:
    """The pick (best mean iwv), each validator's pick, and the guard, as data."""
    def mean(method: str, key: str, validator: bool = False) -> float:
        values = [(r["validators"] if validator else r)[key] for r in runs
                  if r["method"] == method]
        return float(np.mean(values))

    picks = {v: max(methods, key=lambda m: np.nan_to_num(mean(m, v, True), nan=-np.inf))
             for v in VALIDATORS}
    pick = picks["iwv"]
    rise = mean(pick, "source_rmse") / max(mean("source_only", "source_rmse"), 1e-12) - 1
    kept_source_only = guard and (pick == "source_only" or rise > MAX_SOURCE_RMSE_RISE)
    return {"selected": pick, "picks": picks, "kept": "source_only" if kept_source_only
            else pick, "guard": {"enabled": guard, "kept_source_only": kept_source_only,
                                 "source_rmse_rise": rise,
                                 "max_source_rmse_rise": MAX_SOURCE_RMSE_RISE}}


def summary(results: dict) -> str:
    """The run's table in Markdown: per method, means over seeds."""
    keys = ["source_rmse", "target_rmse", "target_pearson_r", "heldout_target_rmse",
            "heldout_target_pearson_r"]
    keys = [k for k in keys if k in results["runs"][0]]
    lines = [f"# graftlab adapt (regression): {results['source']['name']} -> "
             f"{results['target']['name']}", "",
             "| method | " + " | ".join(["iwv", "snd", *keys]) + " |",
             "|---" * (3 + len(keys)) + "|"]
    for method in results["methods"]:
        runs = [r for r in results["runs"] if r["method"] == method]
        cells = [np.mean([r["validators"][v] for r in runs]) for v in VALIDATORS]
        cells += [np.mean([r[k] for r in runs]) for k in keys]
        mark = " (kept)" if method == results["kept"] else ""
        lines.append(f"| {method}{mark} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    lines += ["", f"Picked by iwv: {results['selected']}; kept: {results['kept']}"
              + (" (the guard kept source_only)" if results["guard"]["kept_source_only"]
                 else "") + ". cdan, mcc, entropy, info_max, ensemble agreement, the refined "
              "student and the average need class probabilities: not for regression."]
    return "\n".join(lines) + "\n"


def write_regression(folder: Path, results: dict) -> dict:
    """results.json, report.md and the kept model (a GrafterRegressor) into ``folder``."""
    models = results.pop("_models")
    models[results["kept"]].grafter_.save(folder / "model")
    results["model"] = {"method": results["kept"], "folder": "model",
                        "load_with": "graftlab.GrafterRegressor.load"}
    results["run_folder"] = str(folder)
    _atomic.write_json(folder / "results.json", results)
    _atomic.write_text(folder / "report.md", summary(results))
    return results


# adapt_to_folder's options that are about class probabilities: left at their defaults
_CLASSIFICATION_ONLY = {"keep": "auto", "label_map": None, "select_epoch": None,
                        "pseudo_fraction": 0.5}
_WORKFLOW = ("seeds", "first_seed", "holdout", "target_holdout", "guard")


def adapt_regression_to_folder(source: Domain, target: Domain, *, methods: list[str],
                               runs_dir: str | Path = "runs", out: str | Path | None = None,
                               overwrite: bool = False, progress=None, **kw: Any) -> dict:
    """:func:`run_adapt_regression`, then the run folder (results.json, report.md, model/).
    ``graftlab adapt`` comes here for a source with numeric targets and no labels; it takes
    adapt_to_folder's options and refuses those about classes."""
    from graftlab.config import METHODS
    from graftlab.errors import ConfigError
    from graftlab.workflows.common import run_folder

    for key, default in _CLASSIFICATION_ONLY.items():
        value = kw.pop(key, default)
        if value not in (default, {}, "selected"):
            raise ConfigError(f"{key}={value!r} applies to class labels; a regression target "
                              "has none.", hint=f"leave {key} out for a regression source.")
    kw.pop("feature_map", None)
    kw.pop("limit", None)
    if kw.pop("track", None) is not None:
        raise ConfigError("--track is not wired into adaptation of a numeric target yet.",
                          hint="leave --track out; the run folder's results.json and "
                          "report.md hold every method's scores.")
    chosen = regression_methods_from(methods, METHODS)
    workflow = {k: kw.pop(k) for k in _WORKFLOW if k in kw}
    with run_folder(out, runs_dir, overwrite, "adapt") as folder:
        results = run_adapt_regression(source, target, methods=chosen, progress=progress,
                                       **workflow, **kw)
        return write_regression(folder, results)
