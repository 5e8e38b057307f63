"""Augmentation ops, plain torch (graftlab.augment) against kornia 0.9, on a batch of 256
RGB images at 64 px, on 2 threads: paired rounds (each round times both, the order
alternating), medians, and the median of the per-round ratios. Which implementation graftlab
keeps per op follows from the table. Writes the "Augmentation ops" section of BENCHMARKS.md.

    .venv/bin/python benchmarks/augment_ops.py            # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/augment_ops.py --threads 1   # on a shared machine
    .venv/bin/python benchmarks/augment_ops.py --quick    # a smoke run; writes nothing

The machine is shared with other jobs: read the ratios (both sides of a round share the
load), not single times.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from extraction import table, write_section  # noqa: E402


def pairs():
    """(op, ours, kornia's or None): callables on a (256, 3, 64, 64) batch in [0, 1]."""
    import kornia.augmentation as K
    import torch
    from kornia.augmentation.auto import TrivialAugment as KTrivial

    from graftlab.augment import AUGMENTATIONS, build_preset
    from graftlab.augment.trivial import OPS

    def op(name):
        return lambda x: OPS[name](x, torch.rand(len(x)))

    y = torch.eye(10)[torch.arange(256) % 10]
    expand = build_preset("expand", "image").inputs

    def run_expand(x):
        for aug in expand:
            x = aug(x)
        return x

    ours_mixup, ours_cutmix = AUGMENTATIONS.create("mixup"), AUGMENTATIONS.create("cutmix")
    k_mixup, k_cutmix = K.RandomMixUpV2(p=1.0), K.RandomCutMixV2(p=1.0)
    labels = torch.arange(256) % 10
    return [
        ("brightness", op("brightness"), K.ColorJiggle(brightness=0.9, p=1.0)),
        ("contrast", op("contrast"), K.ColorJiggle(contrast=0.9, p=1.0)),
        ("saturation", op("saturation"), K.ColorJiggle(saturation=0.9, p=1.0)),
        ("channel_shuffle", op("channel_shuffle"), K.RandomChannelShuffle(p=1.0)),
        ("invert", op("invert"), K.RandomInvert(p=1.0)),
        ("solarize", op("solarize"), K.RandomSolarize(p=1.0)),
        ("posterize", op("posterize"), K.RandomPosterize(p=1.0)),
        ("autocontrast (kornia: equalize)", op("autocontrast"), K.RandomEqualize(p=1.0)),
        ("rotate", op("rotate"), K.RandomRotation(30.0, p=1.0)),
        ("shear", op("shear"), K.RandomAffine(degrees=0.0, shear=16.7, p=1.0)),
        ("translate (kornia: pad-8 random crop)", op("translate"),
         K.RandomCrop((64, 64), padding=8, p=1.0)),
        ("affine (`light`)", AUGMENTATIONS.create("affine"),
         K.RandomAffine(degrees=10.0, translate=(0.08, 0.08), scale=(0.9, 1.1), p=0.8)),
        ("TrivialAugment", AUGMENTATIONS.create("trivial"), KTrivial()),
        ("mixup", lambda x: ours_mixup(x, y), lambda x: k_mixup(x, labels)),
        ("CutMix", lambda x: ours_cutmix(x, y), lambda x: k_cutmix(x, labels)),
        ("photo_blend", AUGMENTATIONS.create("photo_blend"), None),
        ("`expand` preset", run_expand, None),
    ]


def seconds(fn, x, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return (time.perf_counter() - start) / reps


def measure(rounds: int, base_reps: int, threads: int) -> list[dict]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.rand(256, 3, 64, 64)
    rows = []
    for name, ours, theirs in pairs():
        single = max(seconds(ours, x, 1), seconds(theirs, x, 1) if theirs else 0.0)
        reps = max(base_reps, math.ceil(0.05 / max(single, 1e-4)))  # >= 50 ms a timing
        t_ours, t_theirs = [], []
        for r in range(rounds):
            order = [("o", ours), ("k", theirs)] if r % 2 == 0 else [("k", theirs), ("o", ours)]
            for who, fn in order:
                if fn is not None:
                    (t_ours if who == "o" else t_theirs).append(seconds(fn, x, reps))
        ratio = statistics.median(k / o for o, k in zip(t_ours, t_theirs)) if t_theirs else None
        rows.append({"op": name, "ours_ms": 1000 * statistics.median(t_ours),
                     "kornia_ms": 1000 * statistics.median(t_theirs) if t_theirs else None,
                     "kornia_over_ours": ratio})
    return rows


def body(rows: list[dict], rounds: int, reps: int, threads: int, load: float) -> str:
    out = []
    for r in rows:
        kornia = "—" if r["kornia_ms"] is None else f"{r['kornia_ms']:.1f}"
        ratio = "—" if r["kornia_over_ours"] is None else f"{r['kornia_over_ours']:.2f}"
        kept = "torch" if r["kornia_over_ours"] is None or r["kornia_over_ours"] >= 1 else \
            "kornia"
        out.append([r["op"], f"{r['ours_ms']:.1f}", kornia, ratio,
                    f"{256 / (r['ours_ms'] / 1000):,.0f}", kept])
    expand = next(r for r in rows if r["op"] == "`expand` preset")
    rate = 256 / (expand["ours_ms"] / 1000)
    return (
        f"Command: `.venv/bin/python benchmarks/augment_ops.py --threads {threads}`. One batch of 256 RGB images, "
        f"64 x 64, float in [0, 1]; {threads} thread(s); {rounds} paired rounds of at least {reps} calls "
        "and 50 ms each (the order of the two sides alternates), medians; *ratio* is the median of the "
        "per-round ratios kornia / torch (> 1: graftlab's plain-torch op is faster). The "
        "machine is shared with other jobs (load average "
        f"{load:.1f} when this ran): read the ratios, not single times. Where kornia's op is "
        "not the same op, the row says which one it is. On a shared machine run it with "
        "`--threads 1`: two threads on busy cores wait on each other (under a load of 10 the "
        "`expand` preset ran 20-40x slower on 2 threads than on 1).\n\n"
        + table(out, ["op", "torch ms", "kornia ms", "ratio", "torch images/s", "faster"])
        + f"\n\nThe `expand` preset (TrivialAugment + photo blending) runs at {rate:,.0f} "
        f"images/s on {threads} thread(s) (goal: 2,000 images/s at 64 px; the network itself is "
        f"far slower). {_verdict(rows)}\n")


def _verdict(rows: list[dict]) -> str:
    """Which side is kept, from the ratios."""
    ratios = {r["op"]: r["kornia_over_ours"] for r in rows if r["kornia_over_ours"] is not None}
    slower = [op for op, ratio in ratios.items() if ratio < 0.9]
    ties = [op for op, ratio in ratios.items() if 0.9 <= ratio < 1]
    text = ("Within 10% counts as a tie on a shared machine"
            + (f" (kornia ahead by less on {', '.join(ties)})" if ties else "") + ". ")
    if not slower:
        return text + "No kornia op is clearly faster: graftlab keeps its plain-torch ops."
    return text + (f"kornia is clearly faster on {', '.join(slower)}: graftlab should switch "
                   "those ops to kornia.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 2)),
                        help="torch threads (2 on a free machine; 1 where it is shared)")
    args = parser.parse_args()
    rounds, reps, threads = (2, 1, args.threads) if args.quick else (9, 3, args.threads)
    rows = measure(rounds, reps, threads)
    text = body(rows, rounds, reps, threads, os.getloadavg()[0])
    print(text)
    if not args.quick:
        write_section("augment-ops", "Augmentation ops (torch vs kornia)", text)


if __name__ == "__main__":
    main()
