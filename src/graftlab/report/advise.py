"""The advise report: ``report.md`` and ``report.html`` (self-contained) from results.json:
the recommendation and the rule behind it, the score table, each score's pick, the agreement
between scores (Kendall τ) and the time each part took."""

from __future__ import annotations

import html
from pathlib import Path

from graftlab import _atomic
from graftlab.report import plots
from graftlab.report.compare import _table_html, bold_html, html_page, md_table
from graftlab.report.run import interrupt_deferred

SHOWN = {"not applicable": "n/a", "non-finite": "non-finite", "degenerate": "degenerate"}


def _name(c: dict) -> str:
    return f"{c['backbone']} / {c['layer']} / {c['pooling']}"


def _cell(entry: dict) -> str:
    return f"{entry['value']:.4g}" if entry["status"] == "ok" else SHOWN.get(entry["status"],
                                                                          entry["status"])


def verdict(advice: dict) -> str:
    """The recommendation in one paragraph (Markdown bold), from the decision's data."""
    r = advice["recommendation"]
    if r is None:
        return ("No score ranked any candidate (every one was not applicable, degenerate or "
                "non-finite): nothing to recommend.")
    text = (f"Use **{r['backbone']}**, layer **{r['layer']}**, {r['pooling']} pooling "
            f"(the best candidate by `{r['by']}`, {r['value']:.4g}). ")
    metric = "R²" if advice["task"] == "regression" else "accuracy"
    if r["strategy"] == "undecided":
        why = ("gave no finite value for this candidate" if "probe" in advice.get("scores", [])
               else "was not asked for (--score probe adds it)")
        return text + f"Probe or fine-tune: undecided (the rule reads the `probe` score, which " \
            f"{why})."
    probe = f"the probe's cross-validated {metric} {r['probe_value']:.3f}"
    if r["strategy"] == "fine-tune":
        why = (f"{probe} is below {r['probe_enough']} and there are {r['samples']} samples "
               f"(at least {r['fine_tune_min_samples']})")
    elif r["probe_value"] >= r["probe_enough"]:
        why = f"{probe} is at least {r['probe_enough']}: little left for fine-tuning to gain"
    else:
        why = (f"only {r['samples']} samples (fewer than {r['fine_tune_min_samples']}): "
               "fine-tuning would likely overfit")
    return text + f"**{r['strategy'].capitalize()}**: {why}. (Rule chosen on MNIST and VADER " \
        "movies, BENCHMARKS.md \"Fine-tuning strategies\".)"


def tables(advice: dict) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Score table (best first by the recommending score), picks, agreement, time."""
    scores, cands = advice["scores"], advice["candidates"]
    by = advice["recommendation"]["by"] if advice["recommendation"] else scores[0]
    order = advice["rankings"].get(by, []) + [i for i in range(len(cands))
                                              if i not in advice["rankings"].get(by, [])]
    head = ["backbone", "layer", "pooling", "dims", *scores]
    rows = [[c["backbone"], c["layer"], c["pooling"], str(c["dims"]),
             *[_cell(c["scores"][s]) for s in scores]] for c in (cands[i] for i in order)]
    picks = [[s, _name(cands[advice["rankings"][s][0]]) if advice["rankings"][s] else "-",
              str(len(advice["rankings"][s]))] for s in scores]
    tau = [[s, *["" if s == t else ("-" if advice["agreement"][s][t] is None
                                    else f"{advice['agreement'][s][t]:+.2f}") for t in scores]]
           for s in scores]
    sec = advice["seconds"]
    time_rows = [[k, f"{sec[k]:.2f}"] for k in ("features", *scores, "total") if k in sec]
    return {"scores": (head, rows), "picks": (["score", "best candidate", "ranked"], picks),
            "agreement": (["Kendall τ", *scores], tau), "time": (["part", "seconds"], time_rows)}


def notes(advice: dict) -> list[str]:
    """What a reader needs to read the table: scores that rank backbones only, and every
    candidate that was reported rather than ranked, with why."""
    out = []
    if {"nce", "leep"} & set(advice["scores"]):
        out.append("NCE and LEEP read the backbone's source (ImageNet) classifier: they score "
                   "the backbone, the same value for each of its layers and poolings; n/a where "
                   "a backbone has no source classifier.")
    for c in advice["candidates"]:
        for s, e in c["scores"].items():
            if e["status"] in ("non-finite", "degenerate"):
                out.append(f"{_name(c)}: {s} {e['status']} ({e['note']}); not ranked.")
    return out


def figure(advice: dict) -> str | None:
    """Each score against the probe's CV score, one point per candidate (None without a
    probe score or with fewer than two candidates)."""
    if "probe" not in advice["scores"] or len(advice["candidates"]) < 2:
        return None
    others = [s for s in advice["scores"] if s != "probe"]
    if not others:
        return None
    plt = plots._plt()
    fig, axes = plt.subplots(1, len(others), figsize=(2.6 * len(others), 2.6), squeeze=False)
    for ax, s in zip(axes[0], others):
        pts = [(c["scores"]["probe"]["value"], c["scores"][s]["value"]) for c in
               advice["candidates"] if c["scores"]["probe"]["status"] == "ok"
               and c["scores"][s]["status"] == "ok"]
        if pts:
            ax.scatter(*zip(*pts), s=14, color=plots.color(0))
        ax.set_xlabel("probe (CV)")
        ax.set_title(s)
        ax.grid(alpha=0.3)
    fig.suptitle("each score against the linear probe's CV score, one point per candidate")
    return plots.to_svg(fig)


def _title(advice: dict) -> str:
    what = "numeric target" if advice["task"] == "regression" else f"{advice['classes']} classes"
    return f"graftlab advise: {advice['data']} ({advice['samples']} samples, {what})"


def render_markdown(advice: dict, fig: str | None) -> str:
    out = [f"# {_title(advice)}", "", verdict(advice), ""]
    titles = {"scores": "Scores (higher is better)", "picks": "Each score's pick",
              "agreement": "Agreement between scores", "time": "Time"}
    for key, (head, rows) in tables(advice).items():
        out += [f"## {titles[key]}", "", md_table(head, rows), ""]
    if fig:
        out += ["![scores against the probe](figures/scores.svg)", ""]
    out += [f"- {line}" for line in notes(advice)]
    return "\n".join(out).rstrip() + "\n"


def render_html(advice: dict, fig: str | None) -> str:
    body = [f"<h1>{html.escape(_title(advice))}</h1>",
            f'<div class="verdict">{bold_html(verdict(advice))}</div>']
    for key, (head, rows) in tables(advice).items():
        body.append(f'<section id="{key}"><h2>{html.escape(key.capitalize())}</h2>')
        body.append(_table_html(head, [[(h, v, v) for h, v in zip(head, r)] for r in rows]))
        body.append("</section>")
    if fig:
        body.append(f"<figure>{fig}</figure>")
    body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes(advice)) + "</ul>")
    return html_page(_title(advice), body)


def write_report(folder: Path, results: dict) -> dict[str, Path]:
    """report.md, report.html and figures/scores.svg, each atomically, as a set."""
    advice = results["advice"]
    fig = figure(advice)
    pages = {folder / "report.md": render_markdown(advice, fig),
             folder / "report.html": render_html(advice, fig)}
    with interrupt_deferred():
        if fig:
            _atomic.write_text(folder / "figures" / "scores.svg", fig)
        for path, text in pages.items():
            _atomic.write_text(path, text)
    return {"md": folder / "report.md", "html": folder / "report.html"}
