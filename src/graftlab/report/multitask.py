"""The report of a multi-task run or comparison (``graftlab multitask``, ``graftlab compare``
on a multi-task config): the per-task table (a row per model, a column per task metric, mean ±
std over seeds) and a figure of each task's first metric per model, as summary.md and a
self-contained report.html."""

from __future__ import annotations

import html
from pathlib import Path

from graftlab import _atomic
from graftlab.report import plots
from graftlab.report.compare import _table_html, html_page
from graftlab.report.run import interrupt_deferred


def table(results: dict) -> tuple[list[str], list[list[str]]]:
    """The per-task table: a row per model, a column per task metric (mean ± std)."""
    columns = list(dict.fromkeys(k for row in results["summary"] for k in row["metrics"]))
    head = ["model", *[c.replace(".", " ") for c in columns], "parameters"]
    rows = []
    for row in results["summary"]:
        cells = [row["model"]]
        for c in columns:
            v = row["metrics"].get(c)
            scored = v.get("seeds", row["seeds"]) if v is not None else 0
            cells.append("-" if v is None else (f"{v['mean']:.4f} ± {v['std']:.4f}"
                         if scored > 1 else f"{v['mean']:.4f}")
                         + (f" ({scored} of {row['seeds']} seeds)" if scored < row["seeds"]
                            else ""))
        rows.append([*cells, f"{row['total_params']:,}"])
    return head, rows


def _setup(results: dict) -> str:
    seeds = results["summary"][0]["seeds"]
    labelled = ", ".join(f"{n:,} labelled for {t}" for t, n in results["labelled"].items())
    return (f"{results['samples']:,} samples ({labelled}); each task scored on its test "
            "samples that carry its label; "
            f"{f'mean ± std over {seeds} seeds' if seeds > 1 else 'one seed'}.")


def summary_markdown(results: dict) -> str:
    head, rows = table(results)
    lines = ["# graftlab multitask", "", _setup(results),
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def figure(results: dict) -> str:
    """Per task, its first metric per model that scores it (mean ± std over seeds)."""
    plt = plots._plt()
    summary = results["summary"]
    tasks = list(dict.fromkeys(k.split(".")[0] for row in summary for k in row["metrics"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        metric = next(k for row in summary for k in row["metrics"] if k.split(".")[0] == task)
        rows = [(row["model"], row["metrics"][metric]) for row in summary
                if metric in row["metrics"]]
        for i, (name, v) in enumerate(rows):
            ax.barh(i, v["mean"], xerr=v["std"], color=plots.color(i), capsize=3)
        ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(metric.replace(".", " "))
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("each task's score per model (mean ± std over seeds)")
    return plots.to_svg(fig)


def write_report(folder: Path, results: dict) -> dict[str, Path]:
    """summary.md, report.html and figures/tasks.svg, each written atomically."""
    fig = figure(results)
    head, rows = table(results)
    title = "graftlab multitask"
    page = html_page(title, [f"<h1>{title}</h1>", f"<p>{html.escape(_setup(results))}</p>",
                             _table_html(head, [[(h, v, v) for h, v in zip(head, r)]
                                                for r in rows]),
                             f"<figure>{fig}</figure>"])
    paths = {"md": folder / "summary.md", "html": folder / "report.html"}
    with interrupt_deferred():
        _atomic.write_text(folder / "figures" / "tasks.svg", fig)
        _atomic.write_text(paths["md"], summary_markdown(results)
                           + "\n![each task's score per model](figures/tasks.svg)\n")
        _atomic.write_text(paths["html"], page)
    return paths
