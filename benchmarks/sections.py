"""What every benchmark script shares: its Markdown tables, its section of BENCHMARKS.md, and
the stored-or-measured run that writes both (``--quick`` writes nothing; ``--render`` rewrites
the section from the stored JSON)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def remeasure(stored: Path, threads: int, measure: Callable[[], dict]) -> tuple[dict, dict]:
    """A re-measure of one part of a benchmark, the rest kept as stored: the stored result
    and ``measure()``'s new part stamped with its ``seconds`` and the date (``rerun``), on
    ``threads`` torch threads."""
    import time

    import torch

    torch.set_num_threads(threads)
    old = json.loads(stored.read_text())
    t0 = time.perf_counter()
    part = measure()
    return old, {**part, "seconds": time.perf_counter() - t0,
                 "rerun": time.strftime("%Y-%m-%d")}


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


def parser(doc: str, results: str) -> argparse.ArgumentParser:
    """A benchmark script's parser with the two options they all take: ``--quick`` (a smoke
    run that writes nothing) and ``--render`` (the section again from ``results``'s JSON)."""
    out = argparse.ArgumentParser(description=doc.splitlines()[0])
    out.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    out.add_argument("--render", action="store_true",
                     help=f"rewrite the section from benchmarks/results/{results} only")
    return out


def publish(key: str, title: str, *, quick: bool, render_only: bool,
            measure: Callable[[], dict], render: Callable[[dict], str],
            stored: Path | None = None) -> dict:
    """Measure (or, with ``render_only``, read ``stored``), print the section, and unless
    ``quick`` store the result as JSON and write the section into BENCHMARKS.md."""
    stored = stored or ROOT / "benchmarks" / "results" / f"{key}.json"
    result = json.loads(stored.read_text()) if render_only else measure()
    text = render(result)
    print(text)
    if not quick:
        if not render_only:
            stored.write_text(json.dumps(result, indent=2) + "\n")
        write_section(key, title, text)
    return result
