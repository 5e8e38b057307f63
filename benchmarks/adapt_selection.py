"""Label-free selection over every subset of the adaptation methods: the kept model's target
accuracy against source-only's when a user runs only some of the methods (the README's
example runs three). Reads the target probabilities and validator scores that
``benchmarks/adapt.py`` stores (``results/adapt*.json`` in git; ``results/adapt_probs/``, 7 MB,
is not, and a fresh clone rebuilds it by running that benchmark); trains nothing, so it runs
in seconds:

    .venv/bin/python benchmarks/adapt_selection.py

For each stored (pair, seed) and each non-empty subset S of the five methods, the candidates
are source_only + S; ensemble agreement is recomputed with S as the ensemble (it is not
scored for a single method); each rule selects and the guard applies; `--keep average` keeps
the mean of the adapted models' probabilities unless the guard's vote keeps source-only.
"Gain" is the kept model's target accuracy minus source-only's, in points; "share of best" is
the mean gain over the mean gain of the best candidate in S (the oracle, which needs target
labels).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from adapt import METHODS, PROBS  # noqa: E402
from extraction import table, write_section  # noqa: E402

AVERAGE = ("average", "info_max", "snd", "ensv")  # --keep average: the guard's vote, then
RULES = {                                           # the mean of the adapted models
    "vote: IM, SND, ensv (graftlab)": ("info_max", "snd", "ensv"),
    "--keep average (guarded by the vote)": AVERAGE,
    "vote: entropy, IM, SND, ensv": ("entropy", "info_max", "snd", "ensv"),
    "vote: all five": ("entropy", "info_max", "snd", "iwv", "ensv"),
    "ensv alone": ("ensv",),
    "SND alone": ("snd",),
    "IM alone": ("info_max",),
}


def stored() -> list[tuple[str, int, list[dict], dict]]:
    """(pair, seed, runs, probabilities) for every stored seed that has probabilities."""
    out = []
    results = ROOT / "benchmarks" / "results"
    for path in [results / "adapt.json", *sorted(results.glob("adapt_holdout_*.json"))]:
        for pair, seeds in (json.loads(path.read_text()) if path.exists() else {}).items():
            for s in seeds:
                seed = s["runs"][0]["seed"]
                npz = PROBS / f"{pair.replace(':', '_')}_{seed}.npz"
                if npz.exists():
                    out.append((pair, seed, s["runs"], dict(np.load(npz))))
                else:
                    print(f"skipped {pair} seed {seed}: no stored probabilities ({npz.name})",
                          file=sys.stderr)
    return out


def gains(runs: list[dict], probs: dict, rule: tuple[str, ...]
          ) -> list[tuple[int, float, float]]:
    """(subset size, kept gain, oracle gain) in points for every non-empty subset of METHODS."""
    from graftlab.evaluate.selection import select as _select
    from graftlab.evaluate.validators import ensemble_agreement

    acc = {r["method"]: r["target_accuracy"] for r in runs}
    out = []
    for k in range(1, len(METHODS) + 1):
        for subset in itertools.combinations(METHODS, k):
            chosen = ["source_only", *subset]
            trial = [{**r, "validators": {v: x for v, x in r["validators"].items()
                                          if v != "ensv"}}
                     for r in runs if r["method"] in chosen]
            if k > 1:
                agree = ensemble_agreement([probs[m].astype(np.float32) for m in chosen],
                                           list(range(1, len(chosen))))
                for r in trial:
                    r["validators"]["ensv"] = agree[chosen.index(r["method"])]
            if not any(v in trial[0]["validators"] for v in rule) or \
                    (rule == AVERAGE and k == 1):
                continue  # e.g. ensv alone with one method: the rule cannot choose
            kept = _select(trial, chosen, guard=True, vote=rule[1:] if rule == AVERAGE
                           else rule)["selected"]
            if rule == AVERAGE and kept != "source_only":
                mean = np.mean([probs[m].astype(np.float32) for m in subset], axis=0)
                acc["average"] = float((mean.argmax(1) == probs["labels"]).mean())
                kept = "average"
            best = max(chosen, key=acc.get)
            out.append((k, 100 * (acc[kept] - acc["source_only"]),
                        100 * (acc[best] - acc["source_only"])))
    return out


def main() -> None:
    data = stored()
    if not data:
        raise SystemExit("no stored probabilities: run benchmarks/adapt.py (or --holdout) first.")
    for pair, seed, runs, probs in data:  # the stored probabilities are the scored models'
        for r in runs:
            pred = probs[r["method"]].astype(np.float32).argmax(1)
            if abs((pred == probs["labels"]).mean() - r["target_accuracy"]) > 1e-3:
                raise SystemExit(f"{pair} seed {seed} {r['method']}: stored probabilities do "
                                 "not match the stored accuracy; re-run that pair.")
    pairs = sorted({p for p, *_ in data}, key=[p for p, *_ in data].index)
    rows = []
    for name, rule in RULES.items():
        for pair in pairs:
            g = [x for p, _, runs, probs in data if p == pair for x in gains(runs, probs, rule)]
            seeds = sorted({s for p, s, *_ in data if p == pair})
            row = [name, pair, ",".join(map(str, seeds))]
            for sizes in ((5,), (2, 3, 4), (1,)):
                kept = [a for k, a, _ in g if k in sizes]
                best = [b for k, _, b in g if k in sizes]
                if not kept:
                    row += ["—"] * 4
                    continue
                row += [f"{statistics.mean(kept):+.1f}", f"{min(kept):+.1f}",
                        f"{sum(x < 0 for x in kept)}/{len(kept)}",
                        f"{statistics.mean(kept) / max(statistics.mean(best), 1e-9):.0%}"]
            rows.append(row)
    body = ("Command: `.venv/bin/python benchmarks/adapt_selection.py` (re-selects from the "
            "stored runs of `benchmarks/adapt.py`; trains nothing). " +
            __doc__.split("\n\n")[2].replace("\n", " ") + "\n\n" +
            table(rows, ["rule", "pair", "seeds", "all 5 methods: gain", "worst", "lost",
                         "share of best", "2-4 methods: gain", "worst", "lost",
                         "share of best", "1 method: gain", "worst", "lost",
                         "share of best"]))
    print(body)
    write_section("adapt-selection", "Domain adaptation: selection over subsets of the methods",
                  body)


if __name__ == "__main__":
    main()
