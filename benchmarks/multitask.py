"""Multi-task grafting, side by side: one MiniLM trunk with a sentiment head and a rating head
against one single-task model per task (same trunk, same shared layer, same training), with
equal, uncertainty and PCGrad loss weighting; parameters to ship and latency of one forward
pass against two. Then the rating regression under domain shift: in-domain on tweets, and
movies -> tweets without and with adaptation (coral, dan, dann). Writes the "Multi-task"
section of BENCHMARKS.md and ``benchmarks/results/multitask.json``.

    .venv/bin/python benchmarks/multitask.py            # the protocol (~5-8 min on 2 cores)
    .venv/bin/python benchmarks/multitask.py --quick    # a smoke run (~1 min); writes nothing
    .venv/bin/python benchmarks/multitask.py --render   # the section again from the stored JSON

Data: VADER tweets (Hutto & Gilbert 2014) from two files joined by text (``join_tasks``): the
binary sentiment set (``vader:tweets``, mean rating >= 0.5 or <= -0.5) and the rating set
(``vader_ratings:tweets``, every tweet's mean rating, -4..+4), so a quarter of the tweets carry
a rating but no sentiment label. Per seed, one random split of the joined tweets (75% train,
25% test), the same for every model. Every model trains ``head_only`` on cached MiniLM
features (the frozen trunk is shared exactly; what the weighting acts on is the shared hidden
layer of ``shared`` units) and is scored on the test tweets carrying its task's label. The
settings (epochs, lr, shared width) were checked on VADER amazon (design data), not on tweets.

NER (the third head of issue #17) is not here yet: it needs the ``tokens`` task type (branch
``ner``). To add it, register that type, add an entry to ``TASKS`` and its data to
``tweet_tasks`` (``join_tasks`` merges by text), and its metric to ``SCORES``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from sections import publish, table  # noqa: E402

PROTOCOL = {"backbone": "minilm_l6", "max_length": 64, "shared": 256, "epochs": 15,
            "batch_size": 64, "lr": 1e-3, "seeds": 3, "test_fraction": 0.25,
            "n_tweets": None, "n_movies": 4000, "weightings": ["equal", "uncertainty", "pcgrad"],
            "adapt_methods": ["source_only", "coral", "dan", "dann"], "latency_batch": 32,
            "rounds": 10, "threads": 2, "strategies": ["head_only"], "last_k_epochs": 3,
            "last_k_weightings": ["equal", "pcgrad"]}
QUICK = {**PROTOCOL, "epochs": 2, "seeds": 1, "n_tweets": 400, "n_movies": 300,
         "weightings": ["equal", "pcgrad"], "adapt_methods": ["source_only", "coral"],
         "rounds": 2}
TASKS = {"sentiment": "classification", "rating": "regression"}  # NER: "entities": "tokens"
# the metric each task is judged on, and whether higher is better
SCORES = {"sentiment": ("accuracy", True), "rating": ("rmse", False)}


def tweet_tasks(n: int | None):
    """The joined tweets (texts, {task: labels}): sentiment from one file, ratings from the
    other (``n``: the first n of them, for a smoke run)."""
    from graftlab.data import load_dataset
    from graftlab.multitask import join_tasks

    texts, labels = join_tasks({"sentiment": (load_dataset("vader:tweets"), None),
                                "rating": (load_dataset("vader_ratings:tweets"), None)})
    if n:
        texts, labels = texts[:n], {t: v[:n] for t, v in labels.items()}
    return texts, labels


def _split(texts: list, labels: dict, seed: int, fraction: float):
    """Train and test parts of the joined tweets, as subsets of one Domain (the feature cache
    then extracts the tweets once for every model and seed)."""
    import numpy as np

    from graftlab.data import Domain

    whole = Domain("vader:tweets+ratings", "text", texts)
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = int(len(texts) * (1 - fraction))
    parts = []
    for idx in (np.sort(order[:cut]), np.sort(order[cut:])):
        parts.append((whole.subset(idx), {t: [v[i] for i in idx] for t, v in labels.items()}))
    return parts


def _estimator(p: dict, tasks: dict, weighting: str, seed: int, strategy: str):
    from graftlab.multitask import MultiTaskGrafter

    moving = strategy == "last_k"  # the top MiniLM block trains: what the weighting shares
    return MultiTaskGrafter(tasks=tasks, backbone=p["backbone"], strategy=strategy, k=1,
                            weighting=weighting, shared=p["shared"],
                            epochs=p["last_k_epochs"] if moving else p["epochs"],
                            batch_size=p["batch_size"], lr=p["lr"], seed=seed,
                            backbone_options={"max_length": p["max_length"]})


def run_seed(seed: int, p: dict, texts: list, labels: dict) -> tuple[dict, dict]:
    """Per strategy: single-task models and one multi-task model per weighting, scored on
    the test part. Names: ``single:<task>``, ``multi:<weighting>``, ``@last_k`` appended for
    the rows that train the top block."""
    (train, y_train), (test, y_test) = _split(texts, labels, seed, p["test_fraction"])
    out, models = {}, {}
    for strategy in p["strategies"]:
        at = "" if strategy == "head_only" else f"@{strategy}"
        for task, kind in TASKS.items():
            keep = [i for i, v in enumerate(y_train[task]) if v is not None]
            t = time.perf_counter()
            est = _estimator(p, {task: kind}, "equal", seed, strategy).fit(
                train.subset(keep), {task: [y_train[task][i] for i in keep]})
            out[f"single:{task}{at}"] = {**est.score(test, {task: y_test[task]}),
                                         "fit_seconds": time.perf_counter() - t}
            models[f"single:{task}{at}"] = est
        for weighting in p["weightings"] if not at else p["last_k_weightings"]:
            t = time.perf_counter()
            est = _estimator(p, TASKS, weighting, seed, strategy).fit(train, y_train)
            out[f"multi:{weighting}{at}"] = {**est.score(test, y_test),
                                             "fit_seconds": time.perf_counter() - t}
            models[f"multi:{weighting}{at}"] = est
    print(f"seed {seed}: {json.dumps(out)}", flush=True)
    return out, models


def adapt_seed(seed: int, p: dict, movies, tweets_train, tweets_test, y_test: list) -> dict:
    """Movies -> tweets rating regression: source_only and the adaptation methods (head_only,
    an mlp head whose hidden layer is what the methods align), scored on the test tweets."""
    import numpy as np

    from graftlab.adapt import AdapterRegressor

    y = np.asarray(y_test, dtype=float)
    out = {}
    for method in p["adapt_methods"]:
        a = AdapterRegressor(backbone=p["backbone"], method=method, strategy="head_only",
                             head="mlp", head_options={"hidden": [p["shared"]]},
                             epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                             seed=seed, backbone_options={"max_length": p["max_length"]})
        a.fit(movies, None, target=tweets_train)
        pred = a.predict(tweets_test)
        out[method] = {"rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
                       "pearson_r": float(np.corrcoef(pred, y)[0, 1])}
    print(f"seed {seed} movies->tweets: {json.dumps(out)}", flush=True)
    return out


def latency(models: dict, texts: list, p: dict) -> dict:
    """Seconds to predict every task for ``latency_batch`` raw tweets (tokenising included),
    medians over rounds: one multi-task model (one forward pass) against the single-task
    models run one after the other. The two take turns within each round."""
    import torch

    torch.set_num_threads(p["threads"])
    batch = list(texts[:p["latency_batch"]])
    singles = [m for name, m in models.items() if name.startswith("single:") and "@" not in name]
    multi = models["multi:equal"]
    times: dict = {"multi": [], "singles": []}
    for r in range(-2, p["rounds"]):  # two rounds of warm-up
        t = time.perf_counter()
        multi.predict(batch)
        t1 = time.perf_counter()
        for m in singles:
            m.predict(batch)
        t2 = time.perf_counter()
        if r >= 0:
            times["multi"].append(t1 - t)
            times["singles"].append(t2 - t1)
    params = {"multi": _params(multi), "singles": sum(_params(m) for m in singles)}
    return {k: {"ms": 1000 * statistics.median(v), "params": params[k],
                "forward_passes": 1 if k == "multi" else len(singles)}
            for k, v in times.items()}


def _params(est) -> int:
    return sum(t.numel() for t in est.model_.parameters())


def measure(p: dict) -> dict:
    """Every seed's models and scores, the adaptation rows, and seed 0's latency."""
    import torch

    from graftlab.data import load_dataset

    torch.set_num_threads(p["threads"])
    os.environ.setdefault("GRAFTLAB_CACHE", tempfile.mkdtemp(prefix="graftlab-mt-cache-"))
    t0 = time.perf_counter()
    texts, labels = tweet_tasks(p["n_tweets"])
    movies = load_dataset("vader_ratings:movies")
    movies = movies.subset(__import__("numpy").random.default_rng(0).permutation(
        len(movies))[:p["n_movies"]])
    runs, shift, speed = [], [], None
    for seed in range(p["seeds"]):
        result, models = run_seed(seed, p, texts, labels)
        runs.append(result)
        (train, _), (test, y_test) = _split(texts, labels, seed, p["test_fraction"])
        shift.append(adapt_seed(seed, p, movies, train, test, y_test["rating"]))
        if seed == 0:
            speed = latency(models, list(test.inputs), p)
    return {"protocol": p, "runs": runs, "shift": shift, "speed": speed,
            "n": {"tweets": len(texts), "movies": len(movies),
                  **{t: sum(v is not None for v in labels[t]) for t in TASKS}},
            "load": os.getloadavg()[0], "seconds": time.perf_counter() - t0}


def _stat(values: list[float], scale: float = 1.0) -> str:
    values = [scale * v for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{3 if scale == 1 else 1}f} ± {std:.{3 if scale == 1 else 1}f}"


def _task_table(result: dict) -> tuple[str, list[str]]:
    """Per model, every task's metrics (mean ± std over seeds), and the verdict lines."""
    runs, rows, verdicts = result["runs"], [], []
    names = list(runs[0])
    for name in names:
        cells = [_display(name)]
        for task in TASKS:
            got = [r[name][task] for r in runs] if task in runs[0][name] else None
            if got is None:
                cells += ["-", "-"]
                continue
            if "accuracy" in got[0]:
                cells += [_stat([g["accuracy"] for g in got], 100),
                          _stat([g["macro_f1"] for g in got], 100)]
            else:
                cells += [_stat([g["rmse"] for g in got]), _stat([g["pearson_r"] for g in got])]
        cells.append(f"{statistics.median(r[name]['fit_seconds'] for r in runs):.1f}")
        rows.append(cells)
    for name in [n for n in names if n.startswith("multi:")]:
        verdicts.append(_verdict(runs, name))
    header = ["model", "sentiment accuracy %", "sentiment macro-F1 %", "rating RMSE",
              "rating Pearson r", "fit s"]
    return table(rows, header), verdicts


def _verdict(runs: list[dict], name: str) -> str:
    """Issue #17's bar: no task more than 1 point (accuracy, F1) or 2% RMSE worse than its
    single-task model, on the mean over seeds."""
    parts = []
    for task, (metric, higher) in SCORES.items():
        multi = statistics.mean(r[name][task][metric] for r in runs)
        at = name[name.index("@"):] if "@" in name else ""
        single = statistics.mean(r[f"single:{task}{at}"][task][metric] for r in runs)
        if higher:
            gap = 100 * (multi - single)
            ok = gap >= -1.0
            parts.append(f"{task} {metric} {gap:+.1f} points ({'within' if ok else 'outside'} "
                         "the 1-point bar)")
        else:
            gap = 100 * (multi - single) / single
            ok = gap <= 2.0
            parts.append(f"{task} {metric} {gap:+.1f}% ({'within' if ok else 'outside'} the "
                         "2% bar)")
    return f"- {_display(name)}: " + "; ".join(parts) + "."


def _display(name: str) -> str:
    return name.replace("single:", "single-task: ").replace("multi:", "multi-task, ").replace(
        "@last_k", " (last_k, k=1)")


def _shift_table(result: dict) -> str:
    in_domain = [r["single:rating"]["rating"] for r in result["runs"]]
    rows = [["tweets -> tweets (in-domain, single-task)",
             _stat([g["pearson_r"] for g in in_domain]), _stat([g["rmse"] for g in in_domain])]]
    for method in result["protocol"]["adapt_methods"]:
        got = [s[method] for s in result["shift"]]
        label = "movies -> tweets, no adaptation" if method == "source_only" else \
            f"movies -> tweets, {method}"
        rows.append([label, _stat([g["pearson_r"] for g in got]),
                     _stat([g["rmse"] for g in got])])
    return table(rows, ["rating regression", "Pearson r on test tweets", "RMSE"])


def render(result: dict) -> str:
    p, n, speed = result["protocol"], result["n"], result["speed"]
    tasks, verdicts = _task_table(result)
    return (
        "Command: `.venv/bin/python benchmarks/multitask.py` (CPU, fp32, "
        f"{p['threads']} threads; a shared machine: read the timings as ratios). "
        f"VADER tweets from two files joined by text: {n['tweets']:,} tweets, "
        f"{n['sentiment']:,} with a sentiment label (binary), {n['rating']:,} with a mean rating; "
        f"per seed one random 75/25 split, seeds {', '.join(map(str, range(len(result['runs']))))}"
        f". Every model: `{p['backbone']}` frozen (max_length {p['max_length']}), `head_only` on "
        f"cached features, a shared hidden layer of {p['shared']} units, then one linear head "
        f"per task; {p['epochs']} epochs, batch {p['batch_size']}, lr {p['lr']:g} (checked on "
        "VADER amazon, the design data: the tweets measured here did not choose them). A "
        "single-task "
        "model is the same network with one head, trained on the tweets that carry its label; "
        "the multi-task model trains on all of them, a missing label masked out of its task's "
        "loss. Mean ± std over seeds; scores on the test tweets that carry the task's label."
        + (f" Rows marked (last_k, k=1) also train MiniLM's top block (from the cached input "
           f"of that block; backbone lr MiniLM's default), {p['last_k_epochs']} epochs: there "
           "the weighting acts on a shared transformer block."
           if "last_k" in p.get("strategies", []) else "") + "\n\n"
        + tasks + "\n\nAgainst the single-task models (mean over seeds):\n\n"
        + "\n".join(verdicts) + "\n\n"
        + table([["one multi-task model", f"{speed['multi']['params']:,}",
                  str(speed['multi']['forward_passes']), f"{speed['multi']['ms']:.0f}"],
                 ["single-task models, one per task", f"{speed['singles']['params']:,}",
                  str(speed['singles']['forward_passes']), f"{speed['singles']['ms']:.0f}"]],
                ["to predict every task", "parameters to ship", "forward passes",
                 f"ms per {p['latency_batch']} raw tweets (median of {p['rounds']})"])
        + "\n\nRating regression under domain shift: the rating model trained on tweets "
        f"(above) against one trained on {n['movies']:,} VADER movie snippets "
        "(`vader_ratings:movies`) and applied to the same test tweets, without adaptation "
        "(`source_only`) and with `AdapterRegressor` (the training tweets as unlabelled "
        f"target; `head_only`, an mlp head of {p['shared']} hidden units, what the methods "
        "align). cdan and mcc need class probabilities and do not apply to regression.\n\n"
        + _shift_table(result)
        + f"\n\nNER (the third head of #17) is not in this table yet: it needs the token task "
        "type. Total run time: "
        f"{result['seconds']:.0f} s; load average at the end: {result['load']:.1f} (2 cores).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    parser.add_argument("--last-k", action="store_true",
                        help="also train MiniLM's top block (last_k, k=1): single-task, "
                        "equal and pcgrad rows (~+15 min on 2 cores)")
    parser.add_argument("--render", action="store_true",
                        help="rewrite the section from benchmarks/results/multitask.json only")
    args = parser.parse_args()
    protocol = QUICK if args.quick else PROTOCOL
    if args.last_k:
        protocol = {**protocol, "strategies": ["head_only", "last_k"]}
    publish("multitask", "Multi-task", quick=args.quick, render_only=args.render,
            measure=lambda: measure(protocol), render=render)


if __name__ == "__main__":
    main()
