"""The report of a token-tagger comparison (``graftlab compare`` on tagged sentences):
entity-level scores per strategy, each entity type's F1 per strategy, and a figure of the
latter, as report.md and a self-contained report.html (figures inlined, nothing fetched)."""

from __future__ import annotations

import html
from pathlib import Path

from graftlab import _atomic
from graftlab.report import plots
from graftlab.report.compare import _table_html, bold_html, html_page, md_table
from graftlab.report.run import interrupt_deferred


def _pm(row: dict, key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    return f"{mean:.1f} ± {std:.1f}" if row["seeds"] > 1 else f"{mean:.1f}"


def tables(results: dict) -> dict[str, tuple[list[str], list[list[str]]]]:
    """``strategies``: micro scores, macro F1, cost; ``types``: each type's F1 (a column per
    strategy) with its support in the test set."""
    summary = results["summary"]
    head = ["strategy", "entity F1 (micro)", "precision", "recall", "macro F1",
            "trainable parameters", "fit s (median)"]
    rows = [[r["strategy"], _pm(r, "f1"), _pm(r, "precision"), _pm(r, "recall"),
             _pm(r, "macro_f1"), f"{r['trainable_params']:,}", f"{r['fit_seconds_median']:.1f}"]
            for r in summary]
    types = sorted({k for r in summary for k in r["per_type"]})
    support = {k: v for r in summary for k, v in r["support"].items()}
    type_rows = [[k, str(support.get(k, 0)),
                  *[f"{r['per_type'].get(k, 0.0):.1f}" for r in summary]] for k in types]
    return {"strategies": (head, rows),
            "types": (["type", "support", *[r["strategy"] for r in summary]], type_rows)}


def verdict(results: dict) -> str:
    """The best strategy by mean micro F1, and whether it is clearly ahead of the next one
    (the paired test by seed that `compare`'s verdict uses)."""
    from graftlab.evaluate.summary import _clearly_better, paired

    rows = sorted(results["summary"], key=lambda r: -r["f1_mean"])
    best = rows[0]
    seeds = best["seeds"]
    text = (f"**{best['strategy']}** finds entities best: micro F1 {_pm(best, 'f1')} on "
            f"{results['test']} held-out sentences"
            + (f" (mean ± std over {seeds} seeds)" if seeds > 1 else " (one seed)"))
    if len(rows) == 1:
        return text + "."
    flat = [{"strategy": r["strategy"], "seed": r["seed"],
             "f1": 100 * r["entity"]["micro"]["f1"]} for r in results["runs"]]
    gain, se, n = paired(flat, best["strategy"], rows[1]["strategy"], "f1")
    if n < 2:
        return text + (f", {gain:.1f} points above {rows[1]['strategy']}; one seed cannot tell "
                       "that from noise (run with --seeds 3 or more).")
    sure = "clearly ahead" if _clearly_better(gain, se, n) else "within noise of it"
    return text + (f", {gain:+.1f} ± {se:.1f} points (paired by seed, {n} seeds) on "
                   f"{rows[1]['strategy']}: {sure}.")


def figure(results: dict) -> str:
    """Each type's F1, a bar per strategy (mean over seeds); the micro F1 as the last group."""
    import numpy as np

    plt = plots._plt()
    summary = results["summary"]
    types = sorted({k for r in summary for k in r["per_type"]})
    groups = [*types, "all (micro)"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(groups) * max(1, len(summary)) / 2), 3.6))
    width = 0.8 / len(summary)
    for i, row in enumerate(summary):
        values = [row["per_type"].get(k, 0.0) for k in types] + [row["f1_mean"]]
        ax.bar(np.arange(len(groups)) + i * width - 0.4 + width / 2, values, width,
               color=plots.color(i), label=row["strategy"])
    ax.set_xticks(np.arange(len(groups)), groups, rotation=30, ha="right")
    ax.set_ylabel("entity F1 (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.suptitle("entity F1 per type and strategy (mean over seeds)")
    return plots.to_svg(fig)


def notes(results: dict) -> list[str]:
    c = results["config"]
    out = [f"Data: {c['data']['path']}; test: {results['test_data']} ({results['test']} "
           f"sentences), training on {results['train']}; {results['seeds']} seed(s), "
           + ("each on the same held-out sentences (new training noise only)."
              if results["fixed_test"] else "each holding out another seeded share of the "
              "distinct sentences (seed 0's sizes shown)."),
           "Scores are entity-level as seqeval scores them by default (a predicted entity "
           "counts when its type and boundaries match); macro F1 is the types' unweighted "
           "mean; each word is labelled by its first sub-token.",
           f"Backbone {c['model']['backbone']}; training options not given to compare are "
           "`graftlab tag`'s defaults (results.json holds each run's).",
           "No from-scratch baseline: a tagger is always grafted onto a pretrained encoder."]
    if results.get("model"):
        out.append(f"The best strategy's model ({results['model']['strategy']}, seed 0) is in "
                   "`model/`: `graftlab.TokenTagger.load('model')`.")
    return out


def _title(results: dict) -> str:
    c = results["config"]
    return f"graftlab compare: token tagging on {c['data']['path']} with {c['model']['backbone']}"


def render_markdown(results: dict, fig: str) -> str:
    titles = {"strategies": "Strategies", "types": "Entity F1 per type (%)"}
    out = [f"# {_title(results)}", "", verdict(results), ""]
    for key, (head, rows) in tables(results).items():
        out += [f"## {titles[key]}", "", md_table(head, rows), ""]
    out += ["![entity F1 per type](figures/types.svg)", ""]
    out += [f"- {line}" for line in notes(results)]
    return "\n".join(out).rstrip() + "\n"


def render_html(results: dict, fig: str) -> str:
    titles = {"strategies": "Strategies", "types": "Entity F1 per type (%)"}
    best = results.get("recommended")
    body = [f"<h1>{html.escape(_title(results))}</h1>",
            f'<div class="verdict">{bold_html(verdict(results))}</div>']
    for key, (head, rows) in tables(results).items():
        body.append(f'<section id="{key}"><h2>{titles[key]}</h2>')
        body.append(_table_html(head, [[(h, v, v) for h, v in zip(head, r)] for r in rows],
                                best=best if key == "strategies" else None))
        body.append("</section>")
    body.append(f"<figure>{fig}</figure>")
    body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes(results))
                + "</ul>")
    return html_page(_title(results), body)


def write_report(folder: Path, results: dict) -> dict[str, Path]:
    """report.html, report.md and figures/types.svg, each written atomically."""
    fig = figure(results)
    paths = {"html": folder / "report.html", "md": folder / "report.md"}
    pages = {paths["html"]: render_html(results, fig), paths["md"]: render_markdown(results, fig)}
    with interrupt_deferred():
        _atomic.write_text(folder / "figures" / "types.svg", fig)
        for path, text in pages.items():
            _atomic.write_text(path, text)
    return paths
