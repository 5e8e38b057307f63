"""Target augmentation, side by side with the simple baselines: expansion (TrivialAugment +
photo blending) for source-only training, VAT / VADA beside the alignment methods, mixup /
CutMix at full data and at 100 labels per class, and, for text, feature-space mixup and token
edits on 500 labelled tweets. Writes the "Augmentation" section of BENCHMARKS.md and
``benchmarks/results/augment.json``.

    .venv/bin/python benchmarks/augment.py            # the protocol (~12-15 min, 2 free cores)
    .venv/bin/python benchmarks/augment.py --quick    # a smoke run; writes nothing
    .venv/bin/python benchmarks/augment.py --mixing-design  # mixing set-ups on Fashion-MNIST
    .venv/bin/python benchmarks/augment.py --mixing   # MNIST's mixing rows in the chosen set-up
    .venv/bin/python benchmarks/augment.py --vat-design  # VADA's set-ups on MNIST -> digits
    .venv/bin/python benchmarks/augment.py --vat      # VADA on MNIST -> MNIST-M in the chosen one

Images: EfficientNet-Lite0 at 64 px, ``head_only`` with an MLP head (input-space augmentation
runs the frozen network per step; the other rows read cached features). MNIST -> MNIST-M:
the source is MNIST less the digits MNIST-M was made from; the target is split at random into
a part adaptation sees (unlabelled) and a held-out part that scores every row. Mixing: MNIST
alone (in-domain), a held-out test set. Text: MiniLM-L6 on VADER tweets, ``head_only`` on
cached features, 500 labelled tweets per seed, the rest of a fixed test set held out.

No default was chosen by looking at these results: the presets' magnitudes and VAT's radius
were fixed before this script first ran (there is no design round to report).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import sections  # noqa: E402
from sections import publish, remeasure, table  # noqa: E402

PROTOCOL = {"image_size": 64, "n_source": 1000, "n_target": 1000, "n_test": 1000,
            "n_full": 2000, "per_class_low": 100, "epochs": 5, "batch_size": 64, "seeds": 3,
            "text_labels": 500, "text_test": 1500, "text_seeds": 5, "threads": 2,
            "strategy": "head_only"}
QUICK = {**PROTOCOL, "n_source": 100, "n_target": 100, "n_test": 100, "n_full": 100,
         "per_class_low": 5, "epochs": 1, "seeds": 2, "text_labels": 40, "text_test": 60,
         "text_seeds": 2}
HEAD = {"strategy": "head_only", "head": "mlp", "head_options": {"hidden": [256]}, "lr": 1e-3}
SOURCE_ROWS = {"source only": False, "source only + light": "light",
               "source only + expand": "expand"}
ADAPT_ROWS = {"dann": ("dann", None), "mcc": ("mcc", None), "vat": ("vat", None),
              "vada (dann + VAT + entropy)": ("vada", None),
              "dann + source-target mixing": ("dann", "feature_domain_mix"),
              "vada + expand": ("vada", "expand")}
MIX_ROWS = {"none": False, "mixup": "mixup", "cutmix": "cutmix",
            "feature_mixup": "feature_mixup"}
TEXT_ROWS = {"none": False, "feature_mixup": "feature_mixup", "token_edits": "token_edits"}


def _opts(p: dict) -> dict:
    """The image rows' estimator options (``--strategy last_k`` trains the top 2 blocks too)."""
    return {**HEAD, "strategy": p["strategy"], "k": 2, "epochs": p["epochs"],
            "batch_size": p["batch_size"], "backbone_options": {"image_size": p["image_size"]}}


def digit_domains(p: dict, seed: int, target_name: str = "mnist_m"):
    """MNIST (less the target's own digits, ``n_source`` stratified) and the target (MNIST-M;
    UCI digits for the VAT design round) split at random into the adaptation part and the
    held-out test part (what is left, at most ``n_test``)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from graftlab.data import load_dataset, without_shared

    source, target, _ = without_shared(load_dataset("mnist"), load_dataset(target_name))
    keep, _ = train_test_split(np.arange(len(source)), train_size=p["n_source"],
                               random_state=seed, stratify=source.labels)
    order = np.random.default_rng(1000 + seed).permutation(len(target))
    return (source.subset(np.sort(keep)), target.subset(np.sort(order[:p["n_target"]])),
            target.subset(np.sort(order[p["n_target"]:p["n_target"] + p["n_test"]])))


def _acc(model, domain) -> float:
    import numpy as np

    return 100.0 * float(np.mean(model.predict(domain) == np.asarray(domain.classes)[
        domain.labels]))


def expansion(p: dict, seed: int) -> dict:
    """Source-only rows (and the grayscale baseline), then the adaptation rows."""
    from graftlab import Grafter
    from graftlab.adapt import Adapter
    from graftlab.data import to_grayscale

    source, target, test = digit_domains(p, seed)
    y = [source.classes[i] for i in source.labels]
    out = {name: _acc(Grafter(**_opts(p), augment=aug, seed=seed).fit(source, y), test)
           for name, aug in SOURCE_ROWS.items()}
    grey = Grafter(**_opts(p), augment=False, seed=seed).fit(to_grayscale(source), y)
    out["source only, both domains grayscale"] = _acc(grey, to_grayscale(test))
    for name, (method, aug) in ADAPT_ROWS.items():
        if aug == "feature_domain_mix" and p["strategy"] != "head_only":
            aug = "domain_mix"  # cached features are read with head_only only: mix pixels
        model = Adapter(**_opts(p), method=method, augment=aug, seed=seed)
        out[name] = _acc(model.fit(source, y, target=target.unlabelled()), test)
    return out


def mixing(p: dict, seed: int, dataset: str = "mnist", augments: dict | None = None) -> dict:
    """``dataset`` in-domain (MNIST; Fashion-MNIST for the design round), at ``n_full`` labels
    and at ``per_class_low`` per class."""
    import numpy as np

    from graftlab import Grafter
    from graftlab.data import load_dataset

    mnist = load_dataset(dataset)
    order = np.random.default_rng(seed).permutation(len(mnist))
    test, pool = mnist.subset(np.sort(order[:p["n_test"]])), order[p["n_test"]:]
    low = np.concatenate([pool[mnist.labels[pool] == c][:p["per_class_low"]]
                          for c in range(10)])
    out = {}
    for size, rows in (("full", pool[:p["n_full"]]), ("low", low)):
        train = mnist.subset(np.sort(rows))
        y = [train.classes[i] for i in train.labels]
        for name, aug in (augments or MIX_ROWS).items():
            model = Grafter(**_opts(p), augment=aug, seed=seed).fit(train, y)
            out[f"{size}: {name}"] = _acc(model, test)
    return out


# The mixing rows' training set-ups (strategy, epochs) tried on design data, Fashion-MNIST
# in-domain at the same sizes, before MNIST: the protocol's 5 epochs of a head on a frozen
# backbone are few for a regulariser, and mixup and CutMix usually train longer and deeper.
MIX_SETUPS = [("head_only", 5), ("last_k", 5), ("last_k", 15), ("last_k", 30)]
DESIGN_ROWS = {"none": False, "mixup": "mixup", "cutmix": "cutmix"}
MIX_DESIGN = ROOT / "benchmarks" / "results" / "augment_mixing_design.json"
MIX_GOALS = [("full", "within ±0.5", lambda g: abs(g) <= 0.5), ("low", "≥ +1", lambda g: g >= 1.0)]


def mix_score(runs: list[dict]) -> tuple[int, float]:
    """The rule that picks the mixing set-up on the design data, written before it ran: the
    most of the four mixing goals met (mixup and CutMix, full and low), then the larger mean
    gain of the two at 100 labels per class."""
    met = sum(ok(_gain(runs, f"{size}: {name}", f"{size}: none")["mean"])
              for name in ("mixup", "cutmix") for size, _, ok in MIX_GOALS)
    low = statistics.fmean(_gain(runs, f"low: {name}", "low: none")["mean"]
                           for name in ("mixup", "cutmix"))
    return met, low


def design_round(p: dict, setups: list, rows, judge, out: Path, quick: bool) -> None:
    """Every (strategy, epochs) in ``setups``: ``rows(q, seed)`` per seed, then ``judge(runs)``
    -> (the rule's score, what the set-up's record adds); prints each score and the set-up
    with the highest (then the ``--mixing`` / ``--vat`` re-measure reads it from ``out``).
    Writes ``out`` (not BENCHMARKS.md) unless ``quick``."""
    import torch

    torch.set_num_threads(p["threads"])
    t0, got, scores = time.perf_counter(), [], []
    for strategy, epochs in setups:
        q = {**p, "strategy": strategy, "epochs": epochs}
        runs = [rows(q, seed) for seed in range(p["seeds"])]
        score, record = judge(runs)
        got.append({"strategy": strategy, "epochs": epochs, "runs": runs, **record})
        scores.append(score)
        print(strategy, epochs, score, flush=True)
    best = got[max(range(len(got)), key=scores.__getitem__)]
    print("chosen:", best["strategy"], best["epochs"])
    if quick:  # a smoke run writes nothing
        return
    out.write_text(json.dumps({"protocol": p, "setups": got, "chosen": [
        best["strategy"], best["epochs"]], "seconds": time.perf_counter() - t0}, indent=1))


def mixing_design(p: dict, quick: bool = False) -> None:
    """Every set-up in ``MIX_SETUPS`` on Fashion-MNIST, picked by ``mix_score``."""
    def judge(runs: list[dict]) -> tuple:
        score = mix_score(runs)
        return score, {"score": list(score)}

    design_round(p, MIX_SETUPS, lambda q, seed: mixing(q, seed, "fashion_mnist", DESIGN_ROWS),
                 judge, MIX_DESIGN, quick)


# VADA's training set-ups (strategy, epochs) tried on a design pair, MNIST -> UCI digits,
# before MNIST -> MNIST-M: VAT perturbs the input of the trained part, which with head_only
# is a frozen feature vector; the paper perturbs pixels and trains the whole network.
VAT_SETUPS = [("head_only", 5), ("last_k", 5), ("last_k", 15)]
VAT_ROWS = {"source only": ("source_only", None), "dann": ("dann", None),
            "mcc": ("mcc", None), "vada (dann + VAT + entropy)": ("vada", None)}
VAT_DESIGN = ROOT / "benchmarks" / "results" / "augment_vat_design.json"


def vat_gain(runs: list[dict]) -> tuple[str, dict]:
    """VADA's paired gain over the better (by mean) of DANN and MCC: the issue's VAT goal,
    and the rule that picks VADA's set-up on the design pair (the largest mean gain)."""
    best = max(("dann", "mcc"), key=lambda m: statistics.fmean(r[m] for r in runs))
    return best, _gain(runs, "vada (dann + VAT + entropy)", best)


def adapt_rows(p: dict, seed: int, target_name: str = "mnist_m") -> dict:
    """``VAT_ROWS`` on MNIST -> ``target_name``, scored on the target's held-out part."""
    from graftlab.adapt import Adapter

    source, target, test = digit_domains(p, seed, target_name)
    y = [source.classes[i] for i in source.labels]
    return {name: _acc(Adapter(**_opts(p), method=method, augment=aug, seed=seed).fit(
        source, y, target=target.unlabelled()), test) for name, (method, aug) in VAT_ROWS.items()}


def vat_design(p: dict, quick: bool = False) -> None:
    """Every set-up in ``VAT_SETUPS`` on MNIST -> UCI digits, picked by VADA's mean gain."""
    def judge(runs: list[dict]) -> tuple:
        best, gain = vat_gain(runs)
        return gain["mean"], {"best_align": best, "gain": gain}

    design_round(p, VAT_SETUPS, lambda q, seed: adapt_rows(q, seed, "digits"), judge,
                 VAT_DESIGN, quick)


def text(p: dict, seed: int) -> dict:
    """VADER tweets: ``text_labels`` labelled per seed, a fixed held-out test set."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from graftlab import Grafter
    from graftlab.data import load_dataset

    tweets = load_dataset("vader:tweets")
    order = np.random.default_rng(0).permutation(len(tweets))
    test, pool = tweets.subset(np.sort(order[:p["text_test"]])), order[p["text_test"]:]
    keep, _ = train_test_split(pool, train_size=p["text_labels"], random_state=seed,
                               stratify=tweets.labels[pool])
    train = tweets.subset(np.sort(keep))
    y = [train.classes[i] for i in train.labels]
    opts = {**HEAD, "epochs": max(p["epochs"], 10), "batch_size": 32, "backbone": "minilm_l6",
            "backbone_options": {"max_length": 64}}
    return {name: _acc(Grafter(**opts, augment=aug, seed=seed).fit(train, y), test)
            for name, aug in TEXT_ROWS.items()}


def throughput(threads: int, rounds: int = 5) -> float:
    """Images/s of the ``expand`` preset on a batch of 256 at 64 px on ``threads`` threads
    (median of rounds)."""
    import torch

    from graftlab.augment import build_preset

    torch.set_num_threads(threads)
    ops = build_preset("expand", "image").inputs
    x = torch.rand(256, 3, 64, 64)
    times = []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        y = x
        for op in ops:
            y = op(y)
        times.append(time.perf_counter() - start)
    return 256 / statistics.median(times[1:])


def summary(values: list[float]) -> dict:
    """Mean, std and the 95% t-interval half-width over seeds."""
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "ci95": half, "n": n}


def _cell(s: dict, ci: bool = False) -> str:
    text = f"{s['mean']:.1f} ± {s['std']:.1f}"
    return text + (f" (95% CI ± {s['ci95']:.1f})" if ci else "")


def _gain(runs: list[dict], row: str, base: str) -> dict:
    return summary([r[row] - r[base] for r in runs])


def goals(res: dict) -> list[list[str]]:
    """Each of the issue's goals with what was measured."""
    ex, mix, tx = res["expansion"], res["mixing"], res["text"]
    best_align = max(("dann", "mcc"), key=lambda m: statistics.fmean(r[m] for r in ex))
    rows = [("expand lifts source-only target accuracy", "≥ +15",
             _gain(ex, "source only + expand", "source only"), 15.0),
            (f"VADA on top of the best alignment method ({best_align})", "≥ +3",
             _gain(ex, "vada (dann + VAT + entropy)", best_align), 3.0)]
    for name in ("mixup", "cutmix"):
        rows.append((f"{name} at full data", "within ±0.5",
                     _gain(mix, f"full: {name}", "full: none"), None))
        rows.append((f"{name} at 100 labels per class", "≥ +1",
                     _gain(mix, f"low: {name}", "low: none"), 1.0))
    vat = _new_setup(res, "vat_chosen")
    if vat:  # the VAT goal in the set-up the design pair chose
        best, gain = vat_gain(vat["runs"])
        rows.append((f"VADA on top of the best alignment method ({best}; {vat['strategy']}, "
                     f"{vat['epochs']} epochs)", "≥ +3", gain, 3.0))
    chosen = res.get("mixing_chosen")
    if chosen:  # the same goals in the set-up the design data chose
        tag = f" ({chosen['strategy']}, {chosen['epochs']} epochs)"
        for name in ("mixup", "cutmix"):
            rows.append((f"{name} at full data{tag}", "within ±0.5",
                         _gain(chosen["runs"], f"full: {name}", "full: none"), None))
            rows.append((f"{name} at 100 labels per class{tag}", "≥ +1",
                         _gain(chosen["runs"], f"low: {name}", "low: none"), 1.0))
    for name in ("feature_mixup", "token_edits"):
        rows.append((f"text: {name} at 500 labels", "(reported)",
                     _gain(tx, name, "none"), None))
    out = []
    for what, goal, s, floor in rows:
        met = (abs(s["mean"]) <= 0.5 or ("above the band: a gain" if s["mean"] > 0.5
                                          else False)) if goal == "within ±0.5" else \
            ("—" if floor is None else s["mean"] >= floor)
        out.append([what, goal, f"{s['mean']:+.1f} ± {s['std']:.1f} (95% CI ± {s['ci95']:.1f})",
                    met if isinstance(met, str) else ("met" if met else "not met")])
    return out


def body(res: dict) -> str:
    p = res["protocol"]
    blocks = [("MNIST -> MNIST-M, target accuracy on held-out MNIST-M", res["expansion"], False),
              ("MNIST in-domain, test accuracy", res["mixing"], False),
              ("VADER tweets, test accuracy", res["text"], True)]
    flags = "".join(f" --{k} {p[k]}" for k, v in (("threads", 2), ("strategy", "head_only"))
                    if p[k] != v)
    text = (f"Command: `.venv/bin/python benchmarks/augment.py{flags}`. EfficientNet-Lite0 at "
            f"{p['image_size']} px, `{p['strategy']}` with an MLP head (256), {p['epochs']} epochs, "
            f"{p['seeds']} seeds (text: MiniLM-L6, {p['text_seeds']} seeds); mean ± std over "
            "seeds in accuracy points. Source: "
            f"{p['n_source']} MNIST digits MNIST-M was not made from; target: "
            f"{p['n_target']} unlabelled MNIST-M images for adaptation, {p['n_test']} others "
            "held out to score. The photo blend draws its patches from the two photos MNIST-M "
            "was made from, so on this target expansion knows the target's textures: an "
            "optimistic case. Source-target mixing mixes the cached features with `head_only`, "
            "the pixels otherwise. No default was chosen from these results.\n")
    chosen = res.get("mixing_chosen")
    if chosen:
        blocks.insert(2, (f"MNIST in-domain, test accuracy, `{chosen['strategy']}` for "
                          f"{chosen['epochs']} epochs (the set-up chosen on Fashion-MNIST; "
                          f"measured on {chosen['rerun']} with `--mixing`, "
                          f"{chosen['seconds']:.0f} s)", chosen["runs"], False))
    vat = _new_setup(res, "vat_chosen")
    if res.get("vat_chosen") and not vat:
        text = text.rstrip("\n") + (" VADA's design round (MNIST -> UCI digits, below) chose "
                                     "the protocol's own set-up, so the MNIST -> MNIST-M rows "
                                     "that follow are its evaluation.\n")
    if vat:
        blocks.insert(1, (f"MNIST -> MNIST-M, target accuracy on held-out MNIST-M, "
                          f"`{vat['strategy']}` for {vat['epochs']} epochs (VADA's set-up, "
                          f"chosen on MNIST -> UCI digits; measured on {vat['rerun']} with "
                          f"`--vat`, {vat['seconds']:.0f} s)", vat["runs"], False))
    for title, runs, ci in blocks:
        rows = [[name, _cell(summary([r[name] for r in runs]), ci)] for name in runs[0]]
        text += f"\n**{title}**\n\n" + table(rows, ["row", "accuracy %"]) + "\n"
    if VAT_DESIGN.exists():
        text += "\n" + vat_design_table(json.loads(VAT_DESIGN.read_text())) + "\n"
    if MIX_DESIGN.exists():
        text += "\n" + design_table(json.loads(MIX_DESIGN.read_text())) + "\n"
    text += "\n**Goals** (gains are paired per seed)\n\n" + table(
        goals(res), ["goal", "target", "measured (points)", ""]) + "\n"
    speeds = (f"{p['threads']} threads, {res['throughput_1_thread']:,.0f} on one"
              if p["threads"] != 1 else "one thread (measured twice: "
              f"{res['throughput_1_thread']:,.0f} the second time)")
    text += (f"\nThe `expand` preset augments {res['throughput']:,.0f} images/s at 64 px on "
             f"{speeds} (goal: ≥ 2,000 on 2 cores; load average {res['load']:.1f} at the end). "
             "Back-translation and synonym "
             "replacement are not measured: both are impossible offline as graftlab is "
             "installed (no translation models, no lexicon in any installed package).\n")
    return text + f"\nTotal run time: {res['seconds']:.0f} s.\n"


def _new_setup(res: dict, key: str) -> dict | None:
    """The re-measure under ``key`` when its set-up differs from the protocol's (the same
    set-up repeats the protocol's own rows: nothing new to show)."""
    got, p = res.get(key), res["protocol"]
    return got if got and (got["strategy"], got["epochs"]) != (p["strategy"], p["epochs"]) \
        else None


def vat_design_table(design: dict) -> str:
    """VADA's set-ups on MNIST -> UCI digits: each row's accuracy and VADA's paired gain."""
    rows = []
    for got in design["setups"]:
        mark = " (chosen)" if [got["strategy"], got["epochs"]] == design["chosen"] else ""
        rows.append([f"`{got['strategy']}`, {got['epochs']} epochs{mark}",
                     *(_cell(summary([r[name] for r in got["runs"]])) for name in VAT_ROWS),
                     f"{got['gain']['mean']:+.1f} ± {got['gain']['std']:.1f} "
                     f"(over {got['best_align']})"])
    return ("**Design round: VADA's set-ups on MNIST -> UCI digits** (held-out digits score; "
            f"{design['protocol']['seeds']} seeds; `--vat-design`, {design['seconds']:.0f} s; "
            "the rule, written before it ran: the largest mean gain of VADA over the better "
            "of DANN and MCC)\n\n"
            + table(rows, ["set-up", *VAT_ROWS, "VADA's gain"]))


def design_table(design: dict) -> str:
    """The mixing set-ups on Fashion-MNIST: each gain over none (points, mean ± std over
    seeds), the goals met, and which the rule picked."""
    rows = []
    for got in design["setups"]:
        gains = [_gain(got["runs"], f"{size}: {name}", f"{size}: none")
                 for name in ("mixup", "cutmix") for size in ("full", "low")]
        mark = " (chosen)" if [got["strategy"], got["epochs"]] == design["chosen"] else ""
        rows.append([f"`{got['strategy']}`, {got['epochs']} epochs{mark}",
                     *(f"{g['mean']:+.1f} ± {g['std']:.1f}" for g in gains),
                     f"{got['score'][0]}/4"])
    return ("**Design round: mixing set-ups on Fashion-MNIST in-domain** (the same sizes, "
            f"{design['protocol']['seeds']} seeds; `--mixing-design`, "
            f"{design['seconds']:.0f} s; the rule, written before it ran: the most goals met, "
            "then the larger mean gain at 100 labels per class)\n\n"
            + table(rows, ["set-up", "mixup, full", "mixup, 100/class", "cutmix, full",
                           "cutmix, 100/class", "goals met"]))


def rerun_chosen(p: dict, key: str, design: Path, rows) -> dict:
    """The stored result with ``rows(p, seed)`` measured again in the set-up ``design``'s
    rule chose (its JSON, committed before this runs), stored under ``key``."""
    strategy, epochs = json.loads(design.read_text())["chosen"]
    q = {**p, "strategy": strategy, "epochs": epochs}
    stored, got = remeasure(ROOT / "benchmarks" / "results" / "augment.json", p["threads"],
                            lambda: {"runs": [rows(q, seed) for seed in range(p["seeds"])]})
    return {**stored, key: {"strategy": strategy, "epochs": epochs, **got}}


def measure(p: dict) -> dict:
    import torch

    torch.set_num_threads(p["threads"])
    t0 = time.perf_counter()
    res = {"protocol": p, "throughput": throughput(p["threads"]),
           "throughput_1_thread": throughput(1)}
    torch.set_num_threads(p["threads"])
    res["expansion"] = [expansion(p, s) for s in range(p["seeds"])]
    res["mixing"] = [mixing(p, s) for s in range(p["seeds"])]
    res["text"] = [text(p, s) for s in range(p["text_seeds"])]
    res["seconds"] = time.perf_counter() - t0
    res["load"] = os.getloadavg()[0]
    return res


def main() -> None:
    parser = sections.parser(__doc__, "augment.json")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 2)),
                        help="torch threads (2: the protocol; 1 where the machine is shared, "
                        "since 2 threads on busy cores wait on each other)")
    parser.add_argument("--strategy", choices=("head_only", "last_k"), default="head_only",
                        help="the image rows' strategy (last_k: the top 2 blocks train too; "
                        "slower)")
    parser.add_argument("--mixing-design", action="store_true",
                        help="the mixing set-ups on Fashion-MNIST (design data) only; writes "
                        "benchmarks/results/augment_mixing_design.json")
    parser.add_argument("--vat-design", action="store_true",
                        help="VADA's set-ups on MNIST -> UCI digits (design pair) only; writes "
                        "benchmarks/results/augment_vat_design.json")
    parser.add_argument("--vat", action="store_true",
                        help="VADA beside DANN and MCC on MNIST -> MNIST-M again in the set-up "
                        "the design pair chose; the rest as stored")
    parser.add_argument("--mixing", action="store_true",
                        help="the MNIST mixing rows again in the set-up the design round chose; "
                        "the rest as stored")
    args = parser.parse_args()
    p = {**(QUICK if args.quick else PROTOCOL), "threads": args.threads}
    if args.mixing_design:
        return mixing_design(p, quick=args.quick)
    if args.vat_design:
        return vat_design(p, quick=args.quick)
    publish("augment", "Augmentation", quick=args.quick, render_only=args.render, render=body,
            measure=(lambda: rerun_chosen(p, "mixing_chosen", MIX_DESIGN, mixing))
            if args.mixing else
            (lambda: rerun_chosen(p, "vat_chosen", VAT_DESIGN, adapt_rows)) if args.vat else
            (lambda: measure({**p, "strategy": args.strategy})))


if __name__ == "__main__":
    main()
