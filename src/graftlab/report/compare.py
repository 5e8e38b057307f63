"""The comparison report: ``report.html`` (self-contained: CSS and SVG figures inline, opens
offline), ``report.md`` (figures beside it in ``figures/``), both from ``results.json``.

Every number in the tables is rendered from the results by :func:`cells`, and each HTML cell
carries the exact value it shows (``data-key``/``data-value``), so a test can check the page
against ``results.json``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from graftlab import _atomic
from graftlab.evaluate.summary import BASELINE, LABELS, METRICS
from graftlab.report import markdown_table, plots
from graftlab.report.run import interrupt_deferred

SECTIONS = [("verdict", "Verdict"), ("results", "Results"), ("per-class", "Per-class recall"),
            ("tradeoff", "Score against cost"), ("curves", "Training curves"),
            ("confusion", "Confusion matrices"), ("map", "Feature map"),
            ("setup", "Setup")]


def _pm(mean: float, std: float, scale: float, digits: int) -> str:
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def cells(row: dict, task: str) -> list[tuple[str, Any, str]]:
    """``(key, value, text)`` for each column of a summary row."""
    out: list[tuple[str, Any, str]] = [("strategy", row["strategy"], row["strategy"])]
    scale, digits = (100.0, 1) if task == "classification" else (1.0, 3)
    for metric, _ in METRICS[task]:
        mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
        out.append((f"{metric}_mean", mean, _pm(mean, std, scale, digits)))
    out += [("trainable_params", row["trainable_params"], f"{row['trainable_params']:,}"),
            ("seconds_median", row["seconds_median"], f"{row['seconds_median']:.1f}"),
            ("peak_rss_mib_median", row["peak_rss_mib_median"],
             f"{row['peak_rss_mib_median']:,.0f}"),
            ("seeds", row["seeds"], str(row["seeds"]))]
    return out


def extraction_line(results: dict) -> str | None:
    """The shared feature extraction's own cost line (it is in no strategy's time)."""
    shared = results.get("extraction") or {}
    if not shared.get("what"):
        return None
    readers = sorted({s for names in shared["what"].values() for s in names})
    return (f"Shared feature extraction: {shared['seconds']:.1f} s, once, before the runs "
            f"(read from the cache by {', '.join(readers)}; not in their times).")


def headers(task: str) -> list[str]:
    unit = " %" if task == "classification" else ""
    return (["strategy"] + [LABELS[m] + unit for m, _ in METRICS[task]]
            + ["trainable params", "wall s (median)", "peak RSS MiB (median)", "seeds"])


WIDE_CLASSES = 10  # more classes than this: one row per class, so the table fits the page


def _recall_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    head = ["strategy"] + [str(c) for c in results["classes"]]
    rows = [[row["strategy"]] + [f"{v * 100:.1f}" if v is not None else "— (untested)"
                                  for v in row["per_class_recall"]]
            for row in results["summary"]]
    if len(results["classes"]) > WIDE_CLASSES:  # transposed: a column per strategy
        return ["class"] + [r[0] for r in rows], [list(col) for col in zip(head[1:], *(
            r[1:] for r in rows), strict=True)]
    return head, rows


def _confusions(results: dict) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for run in results["runs"]:
        m = np.asarray(run["confusion"])
        out[run["strategy"]] = out.get(run["strategy"], 0) + m
    order = [row["strategy"] for row in results["summary"]]
    return {name: out[name] for name in order if name in out}


def figures(results: dict, extra: dict) -> dict[str, str]:
    """SVG text per section that has a figure."""
    task, summary = results["task"], results["summary"]
    if not summary:
        return {}
    (metric, _), _ = METRICS[task]
    scale = 100.0 if task == "classification" else 1.0
    label = LABELS[metric] + (" %" if task == "classification" else "")
    out = {"tradeoff": plots.tradeoff(summary, metric=metric, label=label, scale=scale),
           "curves": plots.curves(results["runs"], [r["strategy"] for r in summary])}
    if task == "classification":
        out["confusion"] = plots.confusions(_confusions(results), results["classes"])
    if extra.get("map"):
        m = extra["map"]
        out["map"] = plots.feature_map(m["panels"], np.asarray(m["labels"]), m["classes"])
    return out


def _explain(results: dict) -> dict[str, str]:
    """A sentence under each figure: what to look for."""
    notes = {
        "tradeoff": "Up and to the left is better: the same score for fewer trained parameters "
                    "or less time. Error bars are one standard deviation over seeds.",
        "curves": "The held-out split is scored after every epoch for inspection only; no "
                  "strategy stops early or picks a checkpoint on it. linear_probe is solved "
                  "in closed form (one star, no curve).",
        "confusion": "Rows are true classes, normalised to 100; summed over seeds.",
        "map": "t-SNE of held-out samples (seed 0's split), coloured by the truth: the frozen "
               "backbone's features, then those of the best strategy that changes the "
               "backbone. Tighter, better-separated clusters are what fine-tuning buys.",
    }
    if results["status"] != "complete":
        notes["map"] = "Skipped: the run was interrupted before all strategies finished."
    if results["task"] == "regression":
        notes["confusion"] = "Not applicable to regression."
    return notes


def _setup_lines(results: dict) -> list[str]:
    c = results["config"]
    data = c["data"]
    env = results["environment"]
    runs = results["runs"]
    cached = sorted({r["strategy"] for r in runs if r["record"].get("cached_activations")})
    features = sorted({r["strategy"] for r in runs if r["record"].get("feature_cache")})
    what = (f"{len(results['classes'])} classes" if results["task"] == "classification"
            else "regression")
    lines = [
        f"Data: {data['name']} ({data['modality']}, {data['size']:,} samples, {what})"
        f"{' limited to ' + str(c['limit']) if c['limit'] else ''}.",
        (f"Test set: {c['test_data']['name']} ({c['test_data']['size']:,} samples), given "
         f"(--test-data), the same for every strategy and seed; {c['seeds']} seed(s)."
         if c.get("test_data") else
         f"Splits: {c['seeds']} seed(s), each a"
         f"{' stratified' if results['task'] == 'classification' else ''} "
         f"{1 - c['test_size']:.0%}/{c['test_size']:.0%} train/test split shared by every "
         "strategy."),
        f"Backbone: {c['backbone']} {c['backbone_options'] or ''}; epochs {c['epochs']}, "
        f"batch {c['batch_size']}"
        + "".join(f", {k} {c[k]}" for k in ("lr", "lr_backbone") if k in c) + ".",
        ("scratch is the same network from random weights with everything trained "
         "(BatchNorm statistics updated): if it matches the transfer strategies, the "
         "pretrained weights do not help." if any(r["strategy"] == BASELINE for r in runs)
         else "The from-scratch baseline was asked for, but the run stopped before it ran."
         if BASELINE in (c.get("strategies") or []) else
         "No from-scratch baseline ran (--no-scratch)."),
        f"Reused from the feature cache: {', '.join(features) or 'none'}; trained from "
        f"cached activations (frozen lower blocks run once): {', '.join(cached) or 'none'}.",
        f"Status: {results['status']}; {len(runs)} run(s), total "
        f"{results.get('seconds_total', 0):.0f} s. graftlab {env['graftlab']}, torch "
        f"{env['torch']}, {env['threads']} threads.",
    ]
    if results.get("model"):
        cls = "Grafter" if results["task"] == "classification" else "GrafterRegressor"
        lines.append(f"The recommended model ({results['model']['strategy']}, seed 0) is saved "
                     f"in `model/`: `graftlab.{cls}.load('model')`.")
    return lines


# ---------------------------------------------------------------------------------- HTML
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;
background:#fafbfc}
main{max-width:1080px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}.sub{color:#57606a;margin:0 0 16px}
.verdict{background:#fff;border-left:4px solid #2da44e;padding:12px 16px;border-radius:4px;
box-shadow:0 1px 2px #0001}.warn{border-left-color:#cf222e}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:4px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;font-size:.92em;margin:4px 0}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:right;white-space:nowrap}
th{white-space:normal}td:first-child{white-space:normal;overflow-wrap:anywhere;min-width:8em}
th:first-child,td:first-child{text-align:left}th{background:#f6f8fa}
tr.best td{background:#dafbe1;font-weight:600}
figure{margin:8px 0;background:#fff;padding:8px;border:1px solid #d0d7de;border-radius:4px}
figure svg{max-width:100%;height:auto}figcaption{color:#57606a;font-size:.9em;margin-top:4px}
ul{padding-left:20px}
"""


def _table_html(head: list[str], rows: list[list[tuple[str, Any, str]]],
                best: str | None = None) -> str:
    out = ['<div class="scroll"><table><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cls = ' class="best"' if best and row[0][1] == best else ""
        out.append(f"<tr{cls}>")
        for key, value, text in row:
            out.append(f'<td data-key="{html.escape(key)}" '
                       f'data-value="{html.escape(json.dumps(value))}">{html.escape(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def render_html(results: dict, figs: dict[str, str]) -> str:
    task, summary = results["task"], results["summary"]
    c = results["config"]
    verdict = results["verdict"]
    notes = _explain(results)
    body = [f"<h1>graftlab compare: {html.escape(c['data']['name'])} with "
            f"{html.escape(c['backbone'])}</h1>",
            f'<p class="sub">{len(summary)} strategies, {c["seeds"]} seed(s), '
            f'{html.escape(results["started"])}</p>']
    if results["status"] != "complete":
        body.append(f'<p class="banner">Run {html.escape(results["status"])}: this report '
                    f'holds the {len(results["runs"])} run(s) that finished.</p>')
    for key, title in SECTIONS:
        body.append(f'<section id="{key}"><h2>{title}</h2>')
        if key == "verdict":
            warn = " warn" if verdict.get("negative_transfer") else ""
            body.append(f'<div class="verdict{warn}">{bold_html(verdict["text"])}</div>')
        elif key == "results":
            body.append(_table_html(headers(task), [cells(r, task) for r in summary],
                                    best=verdict.get("recommended")))
            if extraction_line(results):
                body.append(f'<p class="sub">{html.escape(extraction_line(results))}</p>')
        elif key == "per-class":
            if task == "classification" and summary:
                head, rows = _recall_rows(results)
                body.append(_table_html(head, [[(h, v, v) for h, v in zip(head, r)]
                                               for r in rows]))
                body.append("<p>Recall per class, %, mean over seeds.</p>")
            else:
                body.append("<p>Not applicable to regression.</p>")
        elif key == "setup":
            body.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>"
                                         for line in _setup_lines(results)) + "</ul>")
        elif key in figs:
            body.append(f"<figure>{figs[key]}<figcaption>{html.escape(notes[key])}"
                        f"</figcaption></figure>")
        else:
            body.append(f"<p>{html.escape(notes.get(key, 'Nothing to show yet.'))}</p>")
        body.append("</section>")
    return html_page(f"graftlab compare: {c['data']['name']}", body)


def html_page(title: str, body: list[str]) -> str:
    """A self-contained page: the report CSS inline, nothing fetched."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n")


def bold_html(text: str) -> str:
    """Escape ``text`` and turn its ``**bold**`` spans into <b>."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{t}</b>" if i % 2 else t for i, t in enumerate(parts))


# ------------------------------------------------------------------------------ Markdown
def md_table(head: list[str], rows: list[list[str]]) -> str:
    """Rows of already formatted cells, through the run records' Markdown table."""
    return markdown_table([dict(zip(head, r)) for r in rows], head)


def render_markdown(results: dict, figs: dict[str, str]) -> str:
    task, summary, c = results["task"], results["summary"], results["config"]
    notes = _explain(results)
    out = [f"# graftlab compare: {c['data']['name']} with {c['backbone']}"]
    if results["status"] != "complete":
        out.append(f"> Run {results['status']}: this report holds the {len(results['runs'])} "
                   "run(s) that finished.")
    for key, title in SECTIONS:
        out.append(f"## {title}")
        if key == "verdict":
            out.append(results["verdict"]["text"])
        elif key == "results":
            out.append(md_table(headers(task), [[t for _, _, t in cells(r, task)]
                                                 for r in summary]))
            if extraction_line(results):
                out.append(extraction_line(results))
        elif key == "per-class":
            if task == "classification" and summary:
                out.append(md_table(*_recall_rows(results)))
            else:
                out.append("Not applicable to regression.")
        elif key == "setup":
            out.append("\n".join(f"- {line}" for line in _setup_lines(results)))
        elif key in figs:
            out.append(f"![{title}](figures/{key}.svg)\n\n{notes[key]}")
        else:
            out.append(notes.get(key, "Nothing to show yet."))
    return "\n\n".join(out) + "\n"


def write_report(folder: Path, results: dict, extra: dict | None = None) -> dict[str, Path]:
    """Write report.html, report.md and figures/*.svg: each atomically (a reader sees the
    previous complete file or the new one, never half of one), all rendered before the first is
    written, and a Ctrl-C while writing waits until the set is complete."""
    figs = figures(results, extra or {})
    paths = {"html": folder / "report.html", "md": folder / "report.md"}
    pages = {paths["html"]: render_html(results, figs), paths["md"]: render_markdown(results, figs)}
    with interrupt_deferred():
        for name, svg in figs.items():
            _atomic.write_text(folder / "figures" / f"{name}.svg", svg)
        for path, text in pages.items():
            _atomic.write_text(path, text)
    return paths
