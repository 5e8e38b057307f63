"""Hyper-parameter search on cached MiniLM-L6 features of VADER movie reviews: a 50-trial TPE
study (median pruning, 3 seeds) against a 200-point grid over the same box, and trials per
minute of one vs two ``Tuner`` workers sharing a study on a throw-away PostgreSQL server.
Writes the "Tuning" section of BENCHMARKS.md and ``benchmarks/results/tune.json``.

    .venv/bin/python benchmarks/tune.py            # the protocol (~4-6 min on 2 free cores)
    .venv/bin/python benchmarks/tune.py --quick    # a smoke run (~1-2 min); writes nothing
    .venv/bin/python benchmarks/tune.py --render   # the section again from the stored JSON

Every trial trains a linear head (``head_only``, no augmentation) on features extracted once
through the feature cache, with 3-fold CV. Compute is counted in epochs trained (folds x
epochs; a pruned trial counts the epochs it ran). The best parameters of each search are
refitted on the whole training split and scored on a held-out test split nobody searched on.
The throughput rounds use TPE without pruning (every trial costs the same), one thread per
worker; each worker warms up (imports, a first fit) before a shared start, and zero lost or
duplicated trials means: every finished trial of the study was run by exactly one worker, and
no trial is left running, waiting or failed. The PostgreSQL server is started with the tests'
helper (tests/tune/_postgres.py: initdb + pg_ctl, unprivileged, a temporary folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "tune"))
import sections  # noqa: E402
from sections import publish, table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "tune.json"
PROTOCOL = {"n_train": 2000, "n_test": 1000, "max_length": 128, "cv": 3, "epochs": 4,
            "batch_size": 64, "tpe_trials": 50, "seeds": 3, "worker_trials": 30,
            "grid": {"lr": [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1],
                     "weight_decay": [0.0, 1e-4, 1e-3, 1e-2, 1e-1],
                     "label_smoothing": [0.0, 0.05, 0.1, 0.2]}}
QUICK = {**PROTOCOL, "n_train": 300, "n_test": 200, "epochs": 2, "tpe_trials": 8, "seeds": 1,
         "worker_trials": 6, "grid": {"lr": [1e-3, 1e-2], "weight_decay": [0.0, 1e-2],
                                      "label_smoothing": [0.0, 0.1]}}


def space(p: dict) -> dict:
    """The box both searches cover (the grid's points lie inside it)."""
    g = p["grid"]
    return {"params": {"lr": {"type": "float", "low": min(g["lr"]), "high": max(g["lr"]),
                              "log": True},
                       "weight_decay": {"type": "float", "low": 0.0,
                                        "high": max(g["weight_decay"])},
                       "label_smoothing": {"type": "float", "low": 0.0,
                                           "high": max(g["label_smoothing"])}}}


def split(p: dict):
    """Fixed training and held-out test splits of VADER movies, each a data set of its own (so
    the cache extracts those texts, not all 10,072)."""
    import numpy as np

    from graftlab.data import load_dataset

    domain = load_dataset("vader:movies")
    order = np.random.default_rng(0).permutation(len(domain))
    parts = order[:p["n_train"]], order[p["n_train"]:p["n_train"] + p["n_test"]]
    return [dataclasses.replace(domain.subset(np.sort(i)), origin=None) for i in parts]


def estimator(p: dict, seed: int = 0):
    from graftlab import Grafter

    return Grafter(backbone="minilm_l6", strategy="head_only", augment=False,
                   epochs=p["epochs"], batch_size=p["batch_size"], seed=seed,
                   backbone_options={"max_length": p["max_length"]})


def search(p: dict, train, test, sampler, pruner: str, seed: int, trials: int) -> dict:
    """One study in memory: its best CV accuracy, the refitted model's test accuracy, its
    compute (epochs) and time."""
    from graftlab.tune import Tuner

    t0 = time.perf_counter()
    tuner = Tuner(estimator=estimator(p), space=space(p), n_trials=trials, cv=p["cv"],
                  sampler=sampler, pruner=pruner, seed=seed).fit(train, train.labels)
    res = tuner.cv_results_
    return {"seed": seed, "trials": len(res["trial"]), "best_cv": 100 * tuner.best_score_,
            "test": 100 * tuner.score(test, test.labels),
            "epochs": int(sum(res["epochs_run"])),
            "pruned": res["state"].count("pruned"), "best_params": tuner.best_params_,
            "seconds": time.perf_counter() - t0}


def searches(p: dict, train, test) -> dict:
    import optuna

    grid = optuna.samplers.GridSampler(p["grid"], seed=0)
    n_grid = len(p["grid"]["lr"]) * len(p["grid"]["weight_decay"]) * len(
        p["grid"]["label_smoothing"])
    out = {"grid": search(p, train, test, grid, "none", 0, n_grid), "tpe": []}
    print(f"grid: {out['grid']}", flush=True)
    for seed in range(p["seeds"]):
        out["tpe"].append(search(p, train, test, "tpe", "median", seed, p["tpe_trials"]))
        print(f"tpe seed {seed}: {out['tpe'][-1]}", flush=True)
    return out


# ------------------------------------------------------------------ workers on PostgreSQL
def worker(args: argparse.Namespace) -> None:
    """One worker process: warm up, wait for its peers, run its share, record what it ran."""
    import numpy as np
    import torch

    from graftlab.tune import Tuner

    torch.set_num_threads(1)
    p = QUICK if args.quick else PROTOCOL
    train, _ = split(p)
    first = np.arange(64)
    estimator(p, seed=1).set_params(epochs=1).fit(train.subset(first), train.labels[first])
    folder, ran = Path(args.folder), []

    class Tracker:  # records the trials this worker ran
        def nested(self, name):
            ran.append(int(name.removeprefix("trial-")))
            return _Quiet()

    (folder / f"ready.{os.getpid()}").write_text("")
    while len(list(folder.glob("ready.*"))) < args.peers:
        time.sleep(0.01)
    t0 = time.time()
    Tuner(estimator=estimator(p), space=space(p), n_trials=args.trials, cv=p["cv"],
          storage=args.url, study_name=args.study, pruner="none", refit=False,
          heartbeat_interval=2, tracker=Tracker()).fit(train, train.labels)
    (folder / f"done.{os.getpid()}.json").write_text(json.dumps(
        {"start": t0, "end": time.time(), "ran": ran}))


class _Quiet:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def workers_round(url: str, study: str, n: int, trials: int, quick: bool) -> dict:
    """``n`` worker processes on one study of ``trials`` trials: trials per minute (from the
    shared start to the last worker's end), and whether any trial was lost or duplicated."""
    import optuna

    folder = Path(tempfile.mkdtemp(prefix=f"graftlab-tune-{study}-"))
    cmd = [sys.executable, __file__, "--worker", "--url", url, "--study", study,
           "--trials", str(trials), "--folder", str(folder), "--peers", str(n)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd + (["--quick"] if quick else []), env=env) for _ in range(n)]
    if any(proc.wait() for proc in procs):
        raise SystemExit(f"a worker of {study} failed")
    done = [json.loads(f.read_text()) for f in folder.glob("done.*.json")]
    ran = sorted(t for d in done for t in d["ran"])
    trials_ = optuna.load_study(study_name=study, storage=url).trials
    finished = sorted(t.number for t in trials_ if t.state.is_finished()
                      and t.state != optuna.trial.TrialState.FAIL)
    minutes = (max(d["end"] for d in done) - min(d["start"] for d in done)) / 60
    return {"workers": n, "trials": len(finished), "per_minute": len(finished) / minutes,
            "lost": len(set(finished) - set(ran)), "duplicated": len(ran) - len(set(ran)),
            "left_over": len(trials_) - len(finished), "per_worker": [len(d["ran"]) for d in done]}


def throughput(p: dict, quick: bool) -> list[dict]:
    from _postgres import INSTALL, binaries, postgres_server

    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit(INSTALL)
    with postgres_server(bin_dir) as url:
        one = workers_round(url, "one", 1, p["worker_trials"], quick)
        two = workers_round(url, "two", 2, 2 * p["worker_trials"], quick)
    print(f"workers: {one} {two}", flush=True)
    return [one, two]


# ------------------------------------------------------------------ the section
def _mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def body(result: dict) -> str:
    """The section's Markdown: set-up, the search table, the workers table, what they show."""
    p, grid, tpe = result["protocol"], result["searches"]["grid"], result["searches"]["tpe"]
    rows = [["grid", str(grid["trials"]), f"{grid['best_cv']:.2f}", f"{grid['test']:.2f}",
             f"{grid['epochs']:,}", "1.00", "0", f"{grid['seconds']:.0f}"]]
    for r in tpe:
        rows.append([f"TPE seed {r['seed']}", str(r["trials"]), f"{r['best_cv']:.2f}",
                     f"{r['test']:.2f}", f"{r['epochs']:,}",
                     f"{r['epochs'] / grid['epochs']:.2f}", str(r["pruned"]),
                     f"{r['seconds']:.0f}"])
    cv_gap = statistics.mean(r["best_cv"] for r in tpe) - grid["best_cv"]
    test_gap = statistics.mean(r["test"] for r in tpe) - grid["test"]
    share = max(r["epochs"] for r in tpe) / grid["epochs"]
    one, two = result["workers"]
    speedup = two["per_minute"] / one["per_minute"]
    wrows = [[str(w["workers"]), str(w["trials"]), f"{w['per_minute']:.1f}",
              " / ".join(map(str, w["per_worker"])), str(w["lost"]), str(w["duplicated"]),
              str(w["left_over"])] for w in result["workers"]]
    g = p["grid"]
    return (
        f"Command: `.venv/bin/python benchmarks/tune.py`. VADER movie reviews, MiniLM-L6 "
        f"({p['max_length']} tokens) features extracted once through the cache; "
        f"{p['n_train']} training reviews searched by {p['cv']}-fold CV, {p['n_test']} held-out "
        f"reviews scored once per search with the refitted best parameters. Each trial trains "
        f"a linear head (head_only, {p['epochs']} epochs, batch {p['batch_size']}). Box: lr "
        f"{min(g['lr']):g}-{max(g['lr']):g} (log), weight decay 0-{max(g['weight_decay']):g}, "
        f"label smoothing 0-{max(g['label_smoothing']):g}; the grid is "
        f"{len(g['lr'])} x {len(g['weight_decay'])} x {len(g['label_smoothing'])} points of "
        f"it, TPE draws {p['tpe_trials']} trials with median pruning. Compute: epochs "
        "trained over all folds and trials. Optuna's defaults were kept (TPE: 10 random start "
        "trials; median pruner: 5 start trials, 1 warm-up step), not chosen on this data.\n\n"
        + table(rows, ["search", "trials", "best CV acc. %", "held-out acc. %",
                       "compute (epochs)", "of grid's", "pruned", "s"])
        + f"\n\nTPE over {len(tpe)} seeds: best CV accuracy "
        f"{_mean_std([r['best_cv'] for r in tpe])} % ({cv_gap:+.2f} points against the grid's "
        f"best), held-out {_mean_std([r['test'] for r in tpe])} % ({test_gap:+.2f}), at most "
        f"{share:.0%} of the grid's compute.\n\n"
        f"Workers on one PostgreSQL 15 study (one thread each, TPE without pruning, "
        f"{p['worker_trials']} trials per worker):\n\n"
        + table(wrows, ["workers", "trials", "trials / min", "per worker", "lost",
                        "duplicated", "left running/failed"])
        + f"\n\nTwo workers ran {speedup:.2f}x the trials per minute of one.\n")


def render(result: dict) -> str:
    return body(result) + (f"\nTotal run time: {result['seconds']:.0f} s; load average at the "
                           f"end: {result['load']:.1f} (2 cores).\n")


def measure(p: dict, quick: bool) -> dict:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("GRAFTLAB_CACHE", tempfile.mkdtemp(prefix="graftlab-tune-cache-"))
    t0 = time.perf_counter()
    train, test = split(p)
    result = {"protocol": p, "searches": searches(p, train, test),
              "workers": throughput(p, quick)}
    return {**result, "seconds": time.perf_counter() - t0, "load": os.getloadavg()[0]}


def main() -> None:
    parser = sections.parser(__doc__, "tune.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("url", "study", "folder"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("trials", "peers"):
        parser.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    publish("tune", "Tuning", quick=args.quick, render_only=args.render, stored=RESULTS,
            measure=lambda: measure(QUICK if args.quick else PROTOCOL, args.quick),
            render=render)


if __name__ == "__main__":
    main()
