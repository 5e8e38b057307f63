"""Knowledge distillation, EfficientNet-Lite2 -> Lite0, side by side: the teacher, the student
trained alone and the student distilled from the teacher (same strategy, epochs and split),
with accuracy (mean ± std over seeds), size and CPU speed. Writes the "Distillation" section
of BENCHMARKS.md and ``benchmarks/results/distill.json``.

    .venv/bin/python benchmarks/distill.py            # the protocol (~5-10 min on 2 cores)
    .venv/bin/python benchmarks/distill.py --quick    # a smoke run; writes nothing
    .venv/bin/python benchmarks/distill.py --render   # the section again from the stored JSON

Per seed: the teacher is fitted and saved, and the distilled student reads it from its folder
(``distill_from=FOLDER``, what ``graftlab fit --distill-from`` does). Speed is the eager model
on model-ready tensors (preprocessing excluded), 2 threads, after warm-up: latency at batch 1
and throughput at batch 32, medians of repeats.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import sections  # noqa: E402
from sections import publish, table  # noqa: E402

PROTOCOL = {"n_train": 2000, "n_test": 1000, "image_size": 64, "epochs": 5, "seeds": 3,
            "strategy": "last_k", "k": 4, "teacher_k": 12, "batch_size": 64, "lr": 3e-3, "lr_backbone": 3e-4,
            "train_threads": 1}
QUICK = {**PROTOCOL, "n_train": 200, "n_test": 200, "epochs": 1, "seeds": 1}
ROLES = ("teacher", "student alone", "student distilled")


def _split(n_train: int, n_test: int):
    """One fixed stratified-by-chance split of MNIST, the same for every seed and model."""
    import numpy as np

    from graftlab.data import load_dataset

    domain = load_dataset("mnist")
    order = np.random.default_rng(0).permutation(len(domain))
    return domain.subset(order[:n_train]), domain.subset(order[n_train:n_train + n_test])


def speeds(models: dict, images, threads: int, rounds: int = 30) -> dict:
    """Per model: eager latency at batch 1 (ms) and throughput at batch 32 (images/s) on
    ``threads`` threads, medians over ``rounds`` (batch 32: every third round). The models take
    turns within each round, so a busy spell on the shared machine slows them all, not one."""
    import torch

    torch.set_num_threads(threads)
    batches = {role: (m.backbone.preprocess(images[:1]), m.backbone.preprocess(images[:32]))
               for role, m in models.items()}
    times: dict = {role: ([], []) for role in models}
    with torch.inference_mode():
        for r in range(-3, rounds):  # three rounds of warm-up
            for role, model in models.items():
                for size, batch in enumerate(batches[role]):
                    if size and r % 3:
                        continue
                    t = time.perf_counter()
                    model(batch)
                    if r >= 0:
                        times[role][size].append(time.perf_counter() - t)
    return {role: {f"latency_ms_{threads}": 1000 * statistics.median(one),
                   f"throughput_{threads}": 32 / statistics.median(many)}
            for role, (one, many) in times.items()}


def run_seed(seed: int, p: dict, train, test, folder: Path) -> tuple[dict, dict]:
    """Teacher, student alone and student distilled, fitted on ``train`` with ``seed``: their
    results, and the fitted models."""
    from sklearn.metrics import accuracy_score

    from graftlab import Grafter

    common = {"strategy": p["strategy"], "k": p["k"], "epochs": p["epochs"], "seed": seed,
              "batch_size": p["batch_size"], "lr": p["lr"], "lr_backbone": p["lr_backbone"],
              "backbone_options": {"image_size": p["image_size"]}}
    teacher_dir = folder / f"teacher-{seed}"
    models = {"teacher": Grafter(backbone="efficientnet_lite2", **{**common, "k": p["teacher_k"]}),
              "student alone": Grafter(backbone="efficientnet_lite0", **common),
              "student distilled": Grafter(backbone="efficientnet_lite0",
                                           distill_from=str(teacher_dir), **common)}
    out = {}
    for role, est in models.items():
        t = time.perf_counter()
        est.fit(train, train.labels)
        seconds = time.perf_counter() - t
        saved = est.save(teacher_dir if role == "teacher" else folder / f"{role}-{seed}")
        out[role] = {"accuracy": float(accuracy_score(test.labels, est.predict(test))),
                     "fit_seconds": seconds, "params": int(est.total_params_),
                     "mb": (saved / "model.safetensors").stat().st_size / 1e6,
                     "teacher_outputs": (est.record_.get("distillation") or {}).get(
                         "teacher_outputs")}
        print(f"seed {seed} {role}: {out[role]}", flush=True)
    return out, {role: est.model_ for role, est in models.items()}


def summarise(runs: list[dict], speed: dict) -> list[dict]:
    """Per role: accuracy mean ± std over seeds; size; speed (seed 0's models); fit time as a
    median over seeds."""
    rows = []
    for role in ROLES:
        acc = [100 * r[role]["accuracy"] for r in runs]
        row = {"role": role, "accuracy": statistics.mean(acc),
               "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
               "params": runs[0][role]["params"], "mb": runs[0][role]["mb"],
               "teacher_outputs": runs[0][role]["teacher_outputs"], **speed[role],
               "fit_seconds": statistics.median(r[role]["fit_seconds"] for r in runs)}
        row["per_seed"] = acc
        rows.append(row)
    return rows


def body(rows: list[dict], p: dict, runs: list[dict]) -> str:
    """The section's Markdown: the set-up, the table, and what it shows."""
    names = {"teacher": f"teacher: EfficientNet-Lite2, k={p['teacher_k']}",
             "student alone": f"student: Lite0 alone, k={p['k']}",
             "student distilled": f"student: Lite0 distilled from the Lite2, k={p['k']}"}
    cells = [[names[r["role"]], f"{r['accuracy']:.1f} ± {r['std']:.1f}", f"{r['params']:,}",
              f"{r['mb']:.1f}", f"{r['latency_ms_2']:.1f}", f"{r['throughput_2']:.0f}",
              f"{r['latency_ms_1']:.1f}", f"{r['throughput_1']:.0f}",
              f"{r['fit_seconds']:.0f}"] for r in rows]
    teacher, alone, taught = rows
    wins = sum(r["student distilled"]["accuracy"] > r["student alone"]["accuracy"]
               for r in runs)
    gap = taught["accuracy"] - alone["accuracy"]
    spread = max(alone["std"], taught["std"])
    verdict = ("helps" if gap > spread else "hurts" if gap < -spread else
               "makes no difference beyond the seed-to-seed spread")
    return (
        "Command: `.venv/bin/python benchmarks/distill.py` (CPU, fp32, one process; training on "
        f"{p['train_threads']} thread{'s' if p['train_threads'] > 1 else ''}, speed on 2 "
        "threads and on 1). The machine was shared "
        "with other jobs while this ran: the speed and fit-time columns are noisy, the 2-thread "
        "ones most (two threads that wait on each other lose most when the cores are busy, "
        "which is also why training used one), so the 1-thread columns are given too; read them "
        "as ratios within a column. "
        f"MNIST, {p['n_train']:,} labelled images for training and {p['n_test']:,} held out "
        f"(one fixed split), {p['image_size']} px; every model `{p['strategy']}`, "
        f"{p['epochs']} epochs, batch {p['batch_size']}, head lr {p['lr']:g}, backbone lr "
        f"{p['lr_backbone']:g}; the students train their last k={p['k']} blocks, the teacher "
        f"its last {p['teacher_k']} (of 21, to make it a teacher worth learning from: the table "
        "shows whether it is); seeds "
        f"{', '.join(map(str, range(len(runs))))}. "
        "The distilled student learns from its seed's teacher, read from the folder the "
        "teacher was saved to, with the defaults T = 4 and alpha = 0.9 (0.1 on the labels); "
        f"the teacher's outputs were {taught['teacher_outputs']} (`{p['strategy']}` does not "
        "augment). Size: parameters and the saved `model.safetensors`; speed: seed 0's eager "
        "models on model-ready tensors (preprocessing excluded), taking turns, median of 30 "
        "calls at batch 1 and 10 at batch 32; fit s: median "
        "wall time of a fit, the cached activations of the frozen prefix reused after the "
        "first seed.\n\n"
        + table(cells, ["model", "accuracy %", "parameters", "weights MB",
                        "latency batch 1 ms (2 threads)", "batch 32 img/s (2 threads)",
                        "latency batch 1 ms (1 thread)", "batch 32 img/s (1 thread)", "fit s"])
        + f"\n\nDistillation {verdict} here: the distilled Lite0 scores "
        f"{taught['accuracy']:.1f}% against {alone['accuracy']:.1f}% alone "
        f"({gap:+.1f} points; better on {wins} of {len(runs)} seeds; per seed "
        f"{', '.join(f'{a:.1f}' for a in taught['per_seed'])} vs "
        f"{', '.join(f'{a:.1f}' for a in alone['per_seed'])}), with the Lite2 teacher at "
        f"{teacher['accuracy']:.1f}%. The student is {teacher['params'] / alone['params']:.1f}x "
        f"smaller than the teacher ({alone['mb']:.1f} vs {teacher['mb']:.1f} MB); at batch 1 it "
        f"is {teacher['latency_ms_2'] / alone['latency_ms_2']:.1f}x faster on 2 threads and "
        f"{teacher['latency_ms_1'] / alone['latency_ms_1']:.1f}x on 1, at batch 32 it gives "
        f"{alone['throughput_2'] / teacher['throughput_2']:.1f}x and "
        f"{alone['throughput_1'] / teacher['throughput_1']:.1f}x the throughput.\n")


def measure(p: dict) -> dict:
    """Fit every model on every seed, then time seed 0's models; everything the section says."""
    import torch

    torch.set_num_threads(p["train_threads"])
    os.environ.setdefault("GRAFTLAB_CACHE", tempfile.mkdtemp(prefix="graftlab-distill-cache-"))
    train, test = _split(p["n_train"], p["n_test"])
    t0 = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="graftlab-distill-") as tmp:
        for seed in range(p["seeds"]):
            result, models = run_seed(seed, p, train, test, Path(tmp))
            runs.append(result)
            if seed == 0:
                first = models
    load = os.getloadavg()[0]
    two, one = speeds(first, test.inputs, 2), speeds(first, test.inputs, 1)
    rows = summarise(runs, {role: {**two[role], **one[role]} for role in ROLES})
    return {"protocol": p, "rows": rows, "runs": runs, "load": load,
            "seconds": time.perf_counter() - t0}


def render(result: dict) -> str:
    return body(result["rows"], result["protocol"], result["runs"]) + (
        f"\nTotal run time: {result['seconds']:.0f} s; load average when speed was measured: "
        f"{result['load']:.1f} (2 cores).\n")


def main() -> None:
    parser = sections.parser(__doc__, "distill.json")
    args = parser.parse_args()
    publish("distill", "Distillation", quick=args.quick, render_only=args.render,
            measure=lambda: measure(QUICK if args.quick else PROTOCOL), render=render)


if __name__ == "__main__":
    main()
