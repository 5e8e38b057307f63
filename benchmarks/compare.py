"""`graftlab compare` over the default strategies in one run, against the sum of running each
strategy alone (what a user without compare would do: one script per strategy), each in a
fresh process with an empty feature cache. The one run shares the process, the loaded data,
the feature cache (one extraction of the whole data set per layer, reused by every split,
strategy, seed and prediction) and the t-SNE map's features.

    .venv/bin/python benchmarks/compare.py            # the protocol below (~15 min)
    .venv/bin/python benchmarks/compare.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from extraction import table, write_section  # noqa: E402

STRATEGIES = ["linear_probe", "head_only", "last_k", "full", "lora", "scratch"]


def child(strategies: list[str], kw: dict) -> dict:
    import torch

    from graftlab.workflows.compare import run_compare

    torch.set_num_threads(2)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = run_compare("mnist", strategies=[s for s in strategies if s != "scratch"],
                             scratch="scratch" in strategies, out=Path(out) / "run", **kw)
    return {"seconds": time.perf_counter() - t,
            "accuracy": {r["strategy"]: r["accuracy_mean"] for r in result["summary"]}}


def measure(strategies: list[str], kw: dict) -> dict:
    """A fresh process and an empty feature cache; wall time includes start-up and imports."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GRAFTLAB_CACHE": cache, "GRAFTLAB_ONNX": cache + "/onnx"}
        t = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child",
                              json.dumps({"strategies": strategies, "kw": kw})],
                             capture_output=True, text=True, cwd=ROOT, env=env)
        wall = time.perf_counter() - t
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{strategies} failed:\n{out.stderr[-3000:]}")
    result = {**json.loads(lines[-1][7:]), "wall": wall}
    print(f"  {strategies}: {wall:.0f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print("RESULT " + json.dumps(child(spec["strategies"], spec["kw"])))
        return
    kw = {"limit": 300 if args.quick else 1000, "image_size": 64, "batch_size": 64,
          "epochs": 1 if args.quick else 3, "seeds": 1 if args.quick else 2,
          "feature_map": False}
    whole = measure(STRATEGIES, kw)
    alone = {s: measure([s], kw) for s in STRATEGIES}
    total = sum(r["wall"] for r in alone.values())
    rows = [[s, f"{alone[s]['wall']:.0f}", f"{alone[s]['accuracy'][s] * 100:.1f}",
             f"{whole['accuracy'][s] * 100:.1f}"] for s in STRATEGIES]
    rows.append(["**sum of the runs alone**", f"**{total:.0f}**", "", ""])
    rows.append(["**one `compare` run**", f"**{whole['wall']:.0f}**", "", ""])
    body = "\n\n".join([
        f"Command: `.venv/bin/python benchmarks/compare.py{' --quick' if args.quick else ''}` "
        f"(2 threads, CPU). MNIST, {kw['limit']:,} images (stratified), EfficientNet-Lite0 at "
        f"64 px, batch 64, {kw['epochs']} epochs, {kw['seeds']} seed(s) (80/20 splits), no "
        "t-SNE map. Each measurement is a fresh process with an empty feature cache; wall "
        "time includes start-up, imports and loading the data.",
        table(rows, ["strategy", "alone: wall s", "alone: accuracy %",
                     "in compare: accuracy %"]),
        f"One `compare` run over all {len(STRATEGIES)} takes **{whole['wall'] / total:.2f}x** "
        f"the sum of the runs alone ({whole['wall']:.0f} s vs {total:.0f} s). Accuracies agree "
        "between the two columns: the same splits and seeds, so sharing the cache changes "
        "cost, not results. The saving is one process start-up, data load and backbone load "
        "instead of six, and predictions read from the cached features; strategies that train "
        "different layers cannot share activations, so the ratio stays well above 1/6.",
    ])
    print("\n" + body)
    if not (args.quick or args.no_write):
        write_section("compare", "compare: one run vs each strategy alone", body)


if __name__ == "__main__":
    main()
