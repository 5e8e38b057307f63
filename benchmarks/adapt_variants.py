"""Domain adaptation on MNIST -> MNIST-M at 64 px: what a bottleneck head and domain-aligning
preprocessing (greyscale) buy over the plain 64-px protocol of benchmarks/adapt.py (one seed
each). Each variant runs source_only and the five methods on the same
2,000 + 2,000 images as adapt.py, in its own process; results are stored in
``benchmarks/results/adapt_variants.json``.

    .venv/bin/python benchmarks/adapt_variants.py                 # every variant
    .venv/bin/python benchmarks/adapt_variants.py --variants grey # some, keep the rest
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from adapt import METHODS, protocol  # noqa: E402
from extraction import table, write_section  # noqa: E402

MLP = {"head": "mlp", "head_options": {"hidden": [256]}}
VARIANTS = {  # name: (what changes from the adapt.py image protocol, grayscale)
    "protocol": ({}, False),
    "grey": ({}, True),
    "mlp": (MLP, False),
    "mlp+grey": (MLP, True),
}


def child(name: str) -> dict:
    import numpy as np
    import torch

    from graftlab.workflows.adapt import run_adapt
    from graftlab.data import load_dataset, to_grayscale

    torch.set_num_threads(2)
    change, grey = VARIANTS[name]
    spec = protocol("image", quick=False, pair="mnist:digits")  # the 64-px protocol
    rng = np.random.default_rng(1234)  # the samples of benchmarks/adapt.py
    source, target = load_dataset("mnist"), load_dataset("mnist_m")
    source = source.subset(np.sort(rng.permutation(len(source))[:spec["n"]]))
    target = target.subset(np.sort(rng.permutation(len(target))[:spec["n"]]))
    if grey:
        source, target = to_grayscale(source), to_grayscale(target)
    t = time.perf_counter()
    result = run_adapt(source, target, methods=METHODS, **{**spec["adapter"], **change})
    return {"accuracy": {r["method"]: r["target_accuracy"] for r in result["runs"]},
            "selected": result["selected"], "seconds": time.perf_counter() - t}


def render(results: dict) -> str:
    methods = ["source_only", *METHODS]
    rows = [[name, *[f"{r['accuracy'][m] * 100:.1f}" for m in methods],
             r["selected"], f"{r['seconds'] / 60:.1f}"] for name, r in results.items()]
    return ("Command: `.venv/bin/python benchmarks/adapt_variants.py` (2 threads, CPU; seed 0; "
            "target accuracy %). Variants of the 64-px image protocol: `grey` turns both domains "
            "to luminance (`to_grayscale`, `--grayscale`), `mlp` aligns a 256-wide bottleneck "
            "head.\n\n"
            + table(rows, ["variant", *methods, "selected", "minutes (all six)"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child)))
        return
    store = ROOT / "benchmarks" / "results" / "adapt_variants.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for name in args.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}.")
        out = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True,
                             text=True, cwd=ROOT)
        lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode or not lines:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(lines[-1][7:])
        print(f"  {name}: {results[name]['accuracy']}", flush=True)
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(store)
    body = render({k: results[k] for k in VARIANTS if k in results})
    print("\n" + body)
    write_section("adapt-variants", "Domain adaptation: MNIST -> MNIST-M variants", body)


if __name__ == "__main__":
    main()
