"""Domain adaptation: target accuracy of every method on four domain pairs, mean ± std over
seeds, beside source-only and the published reference numbers; how often each label-free
validator picks the oracle's method; wall time per run. Each (pair, seed) runs in a fresh
process (all methods of a pair share its cached activations); parts are stored in
``benchmarks/results/adapt.json`` and the table is rebuilt from whatever is stored.

    .venv/bin/python benchmarks/adapt.py                          # the whole protocol
    .venv/bin/python benchmarks/adapt.py --pairs mnist:mnist_m    # one pair, keep the rest
    .venv/bin/python benchmarks/adapt.py --quick                  # a smoke run, not stored
    .venv/bin/python benchmarks/adapt.py --holdout 6              # seeds 6-8, stored apart

Which validators vote in the selection was decided on stored seeds; ``--holdout FIRST`` runs
seeds FIRST.. into ``adapt_holdout_FIRST.json`` and a table of their own, so that a rule is
also judged on runs it was not chosen on (BENCHMARKS.md says which seeds chose what). Every
table re-selects from the stored validator scores with the current rule.

Protocol (images): EfficientNet-Lite0, `last_k` with k=2 trained from cached activations of
both domains, batch 64; MNIST -> MNIST-M at 224 px for 8 epochs, MNIST -> digits at 64 px for 5;
2,000 labelled source and 2,000 unlabelled target images (target accuracy on those same
target images, whose labels training never sees). Text: MiniLM-L6 (max 64 tokens) frozen,
`head_only` with an MLP bottleneck (256, what the methods align) trained on cached pooled
features of both domains, batch 64, 10 epochs, lr 1e-3, 2,000 + 2,000 snippets; in-domain: the
same model trained on the target's labels, 5-fold cross-validated. Kept by default: the refined
student (`graftlab.adapt.refine`: one more run on top of the six); seeds stored before it existed
had it trained afterwards from their stored target probabilities, with the same source split and
seed (`--refine-stored`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from extraction import table, write_section  # noqa: E402

METHODS = ["dann", "dan", "coral", "cdan", "mcc"]
PAIRS = {
    "mnist:mnist_m": ("mnist", "mnist_m", "image"),
    "mnist:digits": ("mnist", "digits", "image"),
    "movies:tweets": ("vader:movies", "vader:tweets", "text"),
    "amazon:movies": ("vader:amazon", "vader:movies", "text"),
}
REFERENCES = {
    "mnist:mnist_m": "Ganin & Lempitsky 2015: source-only 52.3, DANN 76.7",
    "mnist:digits": "TLlib MNIST->USPS (LeNet): source-only 82.1, DANN 91.7, CDAN 96.0, MCC 95.1",
    "movies:tweets": "by hand here: MiniLM features + logistic regression 0.77 (movies), "
                     "0.91 in-domain",
    "amazon:movies": "",
}


PROBS = ROOT / "benchmarks" / "results" / "adapt_probs"  # not in git: rebuilt by the runs
TEXT_ADAPTER = {"backbone": "minilm_l6", "strategy": "head_only", "head": "mlp",
                "head_options": {"hidden": [256]}, "batch_size": 64, "epochs": 10, "lr": 1e-3,
                "backbone_options": {"max_length": 64}}


# MNIST-M's colour textures need the backbone's own input size (frozen features + logistic
# regression, MNIST -> MNIST-M: 36% at 64 px, 55% at 128, 61% at 224); the 8x8 UCI digits do
# not gain from it, and 64 px is 12x cheaper.
IMAGE = {"mnist:mnist_m": {"size": 224, "epochs": 8}, "mnist:digits": {"size": 64, "epochs": 5}}


def protocol(kind: str, quick: bool, pair: str = "mnist:digits") -> dict:
    if kind == "image":
        size = 64 if quick else IMAGE[pair]["size"]
        return {"n": 300 if quick else 2000, "adapter": {
            "backbone": "efficientnet_lite0", "strategy": "last_k", "k": 2,
            "batch_size": 64, "epochs": 1 if quick else IMAGE[pair]["epochs"],
            "backbone_options": {"image_size": size}}}
    return {"n": 200 if quick else 2000,
            "adapter": {**TEXT_ADAPTER, "epochs": 1 if quick else TEXT_ADAPTER["epochs"]}}


def in_domain(target, adapter: dict, seed: int) -> float:
    """Target accuracy of the same model trained on target labels (5-fold cross-validated
    predictions): the ceiling adaptation is measured against."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from graftlab import Grafter

    pred = np.empty(len(target), dtype=target.labels.dtype)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    for train, test in folds.split(np.zeros(len(target)), target.labels):
        g = Grafter(seed=seed, **adapter).fit(target.subset(train), target.labels[train])
        pred[test] = g.predict(target.subset(test))
    return float((pred == target.labels).mean())


def child(pair: str, seed: int, quick: bool) -> dict:
    import numpy as np
    import torch

    from graftlab.workflows.adapt import _check_labels, run_adapt

    torch.set_num_threads(2)
    kind = PAIRS[pair][2]
    source, target, spec = _domains(pair, quick)
    t = time.perf_counter()
    result = run_adapt(source, target, methods=METHODS, seeds=1, **spec["adapter"],
                       first_seed=seed)
    models = result.pop("_models")
    if not quick:  # target probabilities, to re-run selection over subsets of the methods
        PROBS.mkdir(parents=True, exist_ok=True)
        _save_probs(PROBS / f"{pair.replace(':', '_')}_{seed}.npz",
                    labels=np.searchsorted(models["source_only"].classes_,
                                           _check_labels(source, target).labels),
                    **{m: a.predict_proba(target.unlabelled()).astype(np.float32)
                       for m, a in models.items()})
    out = {"runs": result["runs"], "picks": result["validator_picks"],
           "rank_pick": result["rank_pick"], "oracle": result.get("oracle"),
           "selected": result["selected"], "seconds": time.perf_counter() - t,
           "distances": result["distances"], "average": result["average"],
           "refined": result["refined"]}
    if kind == "text":
        out["in_domain"] = in_domain(target, spec["adapter"], seed)
    return out


def _store(path: Path, results: dict) -> None:
    from graftlab import _atomic

    _atomic.write_text(path, json.dumps(results, indent=1))


def _save_probs(path: Path, **arrays) -> None:
    """Target probabilities as one compressed .npz, written atomically."""
    import io

    import numpy as np

    from graftlab import _atomic

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _atomic.write_bytes(path, buffer.getvalue())


def _domains(pair: str, quick: bool = False):
    import numpy as np

    from graftlab.data import load_dataset

    src_name, tgt_name, kind = PAIRS[pair]
    spec = protocol(kind, quick, pair)
    rng = np.random.default_rng(1234)  # the same samples for every seed and method
    source, target = load_dataset(src_name), load_dataset(tgt_name)
    source = source.subset(np.sort(rng.permutation(len(source))[:spec["n"]]))
    target = target.subset(np.sort(rng.permutation(len(target))[:spec["n"]]))
    return source, target, spec


def refine_child(pair: str, seed: int, store: str) -> dict:
    """The refinement step alone for a stored (pair, seed) that ran before it existed: the
    stored target probabilities of the adapted models teach a fresh student, exactly as
    ``run_adapt`` does after a seed's methods (same source split, same student seed)."""
    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split

    from graftlab.workflows.adapt import _check_labels, _refine, _shared_weights

    torch.set_num_threads(2)
    source, target, spec = _domains(pair)
    stored = next(s for s in json.loads(Path(store).read_text())[pair]
                  if s["runs"][0]["seed"] == seed)
    y_t = _check_labels(source, target).labels
    target_in = target.unlabelled()
    target_in = target_in.subset(np.arange(len(target_in)))
    tr, va = train_test_split(np.arange(len(source)), test_size=0.1, random_state=seed,
                              stratify=source.labels)
    src_train, src_val = source.subset(tr), source.subset(va)
    weights = _shared_weights(src_train, src_val, target_in, spec["adapter"])
    npz = PROBS / f"{pair.replace(':', '_')}_{seed}.npz"
    probs = dict(np.load(npz))
    run, student = _refine({"runs": stored["runs"]}, METHODS, {m: probs[m] for m in METHODS},
                           seed, src_train, src_val, target_in, y_t, weights, spec["adapter"],
                           None, 0)
    probs["refined"] = student.predict_proba(target_in).astype(np.float32)
    _save_probs(npz, **probs)
    return run


def refine_stored() -> None:
    """Backfill the refinement for every stored seed that lacks it (one process each)."""
    results = ROOT / "benchmarks" / "results"
    for store in [results / "adapt.json", *sorted(results.glob("adapt_holdout_*.json"))]:
        for pair in json.loads(store.read_text()):
            for i, s in enumerate(json.loads(store.read_text())[pair]):
                if s.get("refined"):
                    continue
                seed = s["runs"][0]["seed"]
                out = subprocess.run([sys.executable, __file__, "--refine-child", pair,
                                      str(seed), str(store)], capture_output=True, text=True,
                                     cwd=ROOT, env=os.environ)
                lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if out.returncode or not lines:
                    raise SystemExit(f"refine {pair} seed {seed} failed:\n{out.stderr[-3000:]}")
                run = json.loads(lines[-1][7:])
                data = json.loads(store.read_text())  # re-read: one write per seed
                data[pair][i]["refined"] = [run]
                _store(store, data)
                print(f"  {store.name} {pair} seed {seed}: refined {run['student']} "
                      f"{run['target_accuracy']:.3f} (teacher {run['teacher_accuracy']:.3f}, "
                      f"outliers {run['outliers']}, {run['seconds']:.0f} s)", flush=True)


def measure(pair: str, seed: int, quick: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", pair, str(seed)]
                         + (["--quick"] if quick else []),
                         capture_output=True, text=True, cwd=ROOT, env=os.environ)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{pair} seed {seed} failed:\n{out.stderr[-3000:]}")
    result = json.loads(lines[-1][7:])
    accs = {r["method"]: round(r.get("target_accuracy", float("nan")), 3)
            for r in result["runs"]}
    print(f"  {pair} seed {seed}: {accs} ({result['seconds']:.0f} s)", flush=True)
    return result


def _target(s: dict, method: str) -> float:
    """Target accuracy (a fraction) of ``method`` in one stored seed."""
    return next(r["target_accuracy"] for r in s["runs"] if r["method"] == method)


def _acc(seeds: list[dict], method: str) -> list[float]:
    return [r["target_accuracy"] * 100 for s in seeds for r in s["runs"] if r["method"] == method]


def _cell(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def reselect(results: dict) -> None:
    """Apply the current selection rule to the stored validator scores of every seed."""
    from graftlab.evaluate.selection import select as _select

    for seeds in results.values():
        for s in seeds:
            picked = _select(s["runs"], ["source_only", *METHODS], guard=True)
            s.update(picks=picked["validator_picks"], rank_pick=picked["rank_pick"],
                     selected=picked["selected"], oracle=picked.get("oracle"))


def _average(s: dict) -> float | None:
    """Target accuracy (%) that --keep average keeps for this seed: the adapted models' mean,
    or source-only's where the guard keeps it; None where the run stored no average."""
    if not s.get("average"):
        return None
    if s["selected"] == "source_only":
        return _target(s, "source_only") * 100
    return s["average"][0]["target_accuracy"] * 100


def _refined(s: dict) -> float | None:
    """Target accuracy (%) of the default kept model for this seed: the refined student, or
    source-only's where the guard keeps it, or the pick's where the student loses more than
    the guard allows of held-out source accuracy; None where the run stored no refinement."""
    from graftlab.evaluate.selection import MAX_SOURCE_DROP

    if not s.get("refined"):
        return None
    if s["selected"] == "source_only":
        return _target(s, "source_only") * 100
    source_only = next(r for r in s["runs"] if r["method"] == "source_only")
    refined = s["refined"][0]
    if source_only["source_accuracy"] - refined["source_accuracy"] > MAX_SOURCE_DROP:
        return _target(s, s["selected"]) * 100  # the guard's fallback
    return refined["target_accuracy"] * 100


def render(results: dict, command: str) -> str:
    reselect(results)
    methods = ["source_only", *METHODS]
    rows, picks_total = [], {}
    for pair, seeds in results.items():
        kept = [_target(s, s["selected"]) * 100 for s in seeds]
        average = [_average(s) for s in seeds]
        refined = [_refined(s) for s in seeds]
        ceiling = [s["in_domain"] * 100 for s in seeds if "in_domain" in s]
        per_run = [r["seconds"] for s in seeds for r in s["runs"]]
        rows.append([pair, *[_cell(_acc(seeds, m)) for m in methods],
                     _cell(refined) if None not in refined else "—", _cell(kept),
                     _cell(average) if None not in average else "—",
                     _cell(ceiling) if ceiling else "—", str(len(seeds)),
                     f"{statistics.median(per_run):.0f}", REFERENCES[pair] or "—"])
        for s in seeds:
            for v, pick in [*s["picks"].items(), ("rank vote", s.get("rank_pick"))]:
                if pick is None:
                    continue
                hit = picks_total.setdefault(v, [0, 0])
                hit[0] += pick == s["oracle"]
                hit[1] += 1
    parts = [f"Command: `{command}` (2 threads, CPU). Protocol " + __doc__.split("Protocol ")[1]
             .split("\n\n")[0].replace("\n", " "),
             table(rows, ["pair", *methods, "kept: refined (default)",
                          "--keep selected", "--keep average", "in-domain",
                          "seeds", "s per run (median)", "reference"])]
    gains = []
    for pair, seeds in results.items():
        mean = {m: statistics.mean(_acc(seeds, m)) for m in methods}
        best = max(METHODS, key=mean.get)
        kept = sum(s["selected"] == "source_only" for s in seeds)
        gain = [100 * (_target(s, s["selected"]) - _target(s, "source_only")) for s in seeds]
        ref = [_refined(s) - _target(s, "source_only") * 100 for s in seeds] \
            if all(s.get("refined") for s in seeds) else []
        line = (f"{pair}: best {best} {mean[best]:.1f}% vs source-only "
                f"{mean['source_only']:.1f}% ({mean[best] - mean['source_only']:+.1f} points); "
                f"the guard kept source-only in {kept}/{len(seeds)} runs; ")
        if ref:
            line += (f"the kept model (refined) {statistics.mean(ref):+.1f} points (worst run "
                     f"{min(ref):+.1f}), lost to source-only in {sum(g < 0 for g in ref)}/"
                     f"{len(seeds)}; ")
        line += (f"--keep selected {statistics.mean(gain):+.1f} points (worst run "
                 f"{min(gain):+.1f}), lost in {sum(g < 0 for g in gain)}/{len(seeds)}")
        if all(s.get("average") for s in seeds):
            avg = [_average(s) - _target(s, "source_only") * 100 for s in seeds]
            line += (f"; --keep average {statistics.mean(avg):+.1f} (worst run "
                     f"{min(avg):+.1f}), lost in {sum(g < 0 for g in avg)}/{len(seeds)}")
        ceiling = [s["in_domain"] * 100 for s in seeds if "in_domain" in s]
        if ceiling:
            gap = statistics.mean(ceiling) - mean["source_only"]
            line += (f"; {best} closes {(mean[best] - mean['source_only']) / gap:.0%} of the "
                     f"gap to in-domain ({statistics.mean(ceiling):.1f}%)"
                     + (f", the refined model {statistics.mean(ref) / gap:.0%}" if ref else "")
                     + f", --keep selected {statistics.mean(gain) / gap:.0%}")
            if all(s.get("average") for s in seeds):
                line += f", --keep average {statistics.mean(avg) / gap:.0%}"
        gains.append(line)
    parts.append("Best method against source-only, target accuracy: " + "; ".join(gains) + ".")
    if picks_total:
        from graftlab.evaluate.selection import VOTERS

        parts.append("How often each label-free validator picks the method with the best "
                     "target accuracy (per pair and seed; the rank vote of "
                     f"{', '.join(VOTERS)} selects): " + "; ".join(
                         f"{v} {a}/{b}" for v, (a, b) in picks_total.items()) + ".")
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=",".join(PAIRS),
                        help="comma-separated pairs to (re-)run; 'none' re-renders the stored")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--holdout", type=int, metavar="FIRST",
                        help="run seeds FIRST.. and store them apart from seeds 0..")
    parser.add_argument("--refine-stored", action="store_true",
                        help="backfill the refinement step for stored seeds that lack it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--refine-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child[0], int(args.child[1]), args.quick)))
        return
    if args.refine_child:
        pair, seed, store = args.refine_child
        print("RESULT " + json.dumps(refine_child(pair, int(seed), store)))
        return
    if args.refine_stored:
        refine_stored()
        return
    first = args.holdout or 0
    store = ROOT / "benchmarks" / "results" / (f"adapt_holdout_{first}.json" if args.holdout
                                               else "adapt.json")
    results = {} if args.quick or not store.exists() else json.loads(store.read_text())
    for pair in ([] if args.pairs == "none" else args.pairs.split(",")):
        if pair not in PAIRS:
            raise SystemExit(f"unknown pair {pair!r}; choose from {', '.join(PAIRS)}.")
        results[pair] = [measure(pair, seed, args.quick)
                         for seed in range(first, first + (1 if args.quick else args.seeds))]
        if not args.quick:
            store.parent.mkdir(exist_ok=True)
            _store(store, results)
    body = render(results, ".venv/bin/python benchmarks/adapt.py"
                  + (" --quick" if args.quick else "")
                  + (f" --holdout {first}" if args.holdout else ""))
    print("\n" + body)
    if args.quick:
        return
    if args.holdout:
        seeds = sorted({s["runs"][0]["seed"] for runs in results.values() for s in runs})
        write_section(f"adapt-holdout-{first}", "Domain adaptation: seeds "
                      f"{seeds[0]}-{seeds[-1]}", body)
    else:
        write_section("adapt", "Domain adaptation", body)


if __name__ == "__main__":
    main()
