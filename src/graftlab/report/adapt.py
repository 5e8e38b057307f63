"""The adaptation report: ``report.html`` (self-contained) and ``report.md`` beside
``results.json``: source and target accuracy per method, the label-free validators and whom
they pick, the guard's decision, domain distances before and after, and a t-SNE map of source
and target features before and after adaptation."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from graftlab import _atomic
from graftlab.evaluate.selection import ABSENT_SHARE, MAX_DRAWN, loses_source
from graftlab.report import plots
from graftlab.report.compare import _table_html, bold_html, html_page, md_table
from graftlab.report.run import interrupt_deferred

SECTIONS = [("verdict", "Verdict"), ("selection", "Source selection"),
            ("results", "Results"), ("validators", "Validators"),
            ("distances", "Domain distances"), ("classes", "Target classes (PADA)"),
            ("map", "Feature map"), ("setup", "Setup")]
LACKS = 0.5  # a class weight below this reads "the target seems to lack it" in the report


def _mean(runs: list[dict], method: str, get) -> float:
    values = [get(r) for r in runs if r["method"] == method]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


SCORES = {"source_accuracy": "source accuracy %", "target_accuracy": "target accuracy %",
          "heldout_target_accuracy": "held-out target accuracy %"}


def _scores(results: dict) -> list[str]:
    """The accuracies the run has: held-out source always; with target labels, the target
    adapted to and (when a part was held out) the target part no training saw."""
    runs = results["runs"]
    keys = ["source_accuracy"]
    if results["target"]["labelled_for_evaluation"]:
        keys.append("target_accuracy")
        if runs and all("heldout_target_accuracy" in r for r in runs):
            keys.append("heldout_target_accuracy")
    return keys


def tables(results: dict) -> dict[str, tuple[list[str], list[list[tuple]]]]:
    return {"results": _results_table(results), "validators": _validators_table(results),
            "distances": _distances_table(results["distances"])}


def _results_table(results: dict) -> tuple[list[str], list[list[tuple]]]:
    runs, keys = results["runs"], _scores(results)
    if len(keys) == 3:
        head_keys = {**SCORES, "target_accuracy": "target adapted to %"}
    else:
        head_keys = SCORES
    head = ["method"] + [head_keys[k] for k in keys] + ["trainable params", "wall s"]

    def row(name: str, label: str, records: list[dict], params: int, secs: float | None
            ) -> list[tuple]:
        cells = [("method", name, label)]
        for key in keys:
            v = float(np.mean([r[key] for r in records])) if records else float("nan")
            cells.append((key, v, f"{v * 100:.1f}"))
        return cells + [("trainable_params", params, f"{params:,}"),
                        ("seconds", secs, "—" if secs is None else f"{secs:.1f}")]

    def params_of(m: str) -> int:
        return next(r["trainable_params"] for r in runs if r["method"] == m)

    rows = [row(m, m, [r for r in runs if r["method"] == m], params_of(m),
                _mean(runs, m, lambda r: r["seconds"])) for m in results["methods"]]
    if results.get("average"):  # the adapted models' mean probabilities (--keep average)
        members = [m for m in results["methods"] if m != "source_only"]
        rows.append(row("average", "average", results["average"],
                        sum(params_of(m) for m in members), None))
    if results.get("refined"):  # the student self-trained on the consensus (--keep refined)
        refined = results["refined"]
        rows.append(row("refined", "refined", refined, refined[0]["trainable_params"],
                        float(np.mean([r["seconds"] for r in refined]))))
    return head, rows


def _validators_table(results: dict) -> tuple[list[str], list[list[tuple]]]:
    runs, names = results["runs"], list(results["validator_picks"])
    points = results.get("rank_points", {})
    primary = results.get("primary_validator", "")  # older results name their voters here
    voters = results.get("voters") or (primary.removeprefix("rank vote of ").split(", ")
                                       if primary else names)
    head = ["method"] + [v if v in voters else f"{v} (no vote)" for v in names] + \
        (["rank vote"] if points else [])
    rows = []
    for m in results["methods"]:
        scores = {v: _mean(runs, m, lambda r, v=v: r["validators"][v]) for v in names}
        rows.append([("method", m, m)] + [(v, scores[v], f"{scores[v]:.4f}") for v in names]
                    + ([("rank_points", points[m], f"{points[m]:g}") if m in points else
                        ("rank_points", None, "left out (partial check)")] if points else []))
    picks = {**results["validator_picks"], **({"rank_points": results["rank_pick"]}
                                              if points else {})}
    rows.append([("method", "pick", "picks")] + [(v, p, p) for v, p in picks.items()])
    if "validator_matches_oracle" in results:
        match = results["validator_matches_oracle"]
        rows.append([("method", "matches", f"matches oracle ({results['oracle']})")] +
                    [(v, match[k], "yes" if match[k] else "no")
                     for v, k in zip(picks, [*names, "rank vote"]) if k in match])
    return head, rows


def _distances_table(d: dict) -> tuple[list[str], list[list[tuple]]]:
    head = ["features", "proxy A-distance", "MMD²"]
    rows = [[("features", w, label), ("proxy_a_distance", d[w]["proxy_a_distance"],
                                      f"{d[w]['proxy_a_distance']:.3f}"),
             ("mmd", d[w]["mmd"], f"{d[w]['mmd']:.4f}")]
            for w, label in [("before", "frozen backbone (before)"),
                             ("source_only", "source_only (trained, no transfer term)"),
                             ("after", f"{d['after']['model']} (after)")] if w in d]
    return head, rows


def row_notes(results: dict) -> list[str]:
    """What the short names of the results table's kept-model rows stand for (the table keeps
    them short so it fits the page; the long form goes under it)."""
    notes = []
    if results.get("average"):
        members = [m for m in results["methods"] if m != "source_only"]
        notes.append(f"average: the average of {', '.join(members)} (their mean "
                     "probabilities).")
    if results.get("refined"):
        first = results["refined"][0]
        notes.append(f"refined: {first['student']} self-trained (seed {first['seed']}) on the "
                     f"consensus of {', '.join(first['members'])}.")
    return notes


def verdict(results: dict) -> str:
    sel, guard = results["selected"], results["guard"]
    parts = []
    part = results.get("partial") or {}
    every = part.get("acts") and guard["enabled"] and set(part["flagged"]) >= {
        m for m in results["methods"] if m != "source_only"}
    if guard["kept_source_only"] and every:
        parts.append("Every method drew more of the target onto the classes it seems to lack "
                     "than source_only (below): graftlab keeps **source_only** (the "
                     "negative-transfer guard; --no-guard overrides it).")
    elif guard["kept_source_only"] and results.get("rank_pick", "source_only") != "source_only":
        held = " on the classes the target seems to hold" if part.get("acts") else ""
        parts.append(f"{results['primary_validator']}, computed without target labels, picks "
                     f"**{results['rank_pick']}**, but it loses "
                     f"{guard['source_accuracy_drop'] * 100:.1f} points of held-out source "
                     f"accuracy{held} against source_only: graftlab keeps **source_only** (the "
                     "negative-transfer guard; --no-guard overrides it).")
    elif guard["kept_source_only"]:
        parts.append(f"{results['primary_validator']}, computed without target labels, says "
                     "adaptation does not help here: graftlab keeps **source_only** (the "
                     "negative-transfer guard; --no-guard overrides it).")
    else:
        agree = sum(p == sel for p in results["validator_picks"].values())
        parts.append(f"Selected without target labels: **{sel}**, by "
                     f"{results['primary_validator']} ({agree} of "
                     f"{len(results['validator_picks'])} validators pick it).")
    if results.get("kept") == "average":
        parts.append("Kept: the average of the adapted models' probabilities (--keep "
                     f"selected keeps {sel} alone).")
    elif results.get("kept") == "refined":
        first = results["refined"][0]
        left = (f"; left out as outliers of the consensus: {', '.join(first['outliers'])}"
                if first["outliers"] else "")
        parts.append(f"Kept: **{first['student']} refined** — trained again on the source and "
                     f"{first['pseudo_labels']} target samples pseudo-labelled by the average "
                     f"of {', '.join(first['members'])}{left} (--keep average keeps the mean "
                     "of all adapted models, outliers included; --keep selected keeps "
                     f"{sel} alone).")
    if guard.get("refined_collapsed"):
        parts.append(f"The refined student's SND rose {guard['refined_snd_rise']:.2f} above "
                     "source_only's: its target clusters grew denser, the sign that most often "
                     "came with a collapse onto wrong classes, so the guard keeps "
                     "**source_only** (--no-guard keeps the student).")
    if results.get("partial"):
        parts.append(partial_sentence(results))
    if guard.get("refined_taught_by_flagged"):
        parts.append(f"The refined model learned from {', '.join(guard['refined_taught_by_flagged'])}"
                     ", left out by the partial-label check, so the guard keeps "
                     f"**{results['kept']}** instead.")
    elif guard.get("refined_rejected"):
        drawn, drop = guard.get("refined_drawn", 0.0), guard["refined_source_drop"]
        why = [f"drew {drawn * 100:.1f} points more of the target onto the classes it seems to "
               "lack than source_only"] if drawn > MAX_DRAWN else []
        if loses_source(drop):
            why.append(f"lost {drop * 100:.1f} points of held-out source accuracy against "
                       "source_only")
        parts.append(f"The refined model {' and '.join(why)}, so the guard keeps "
                     f"**{results['kept']}** instead.")
    if guard.get("average_rejected"):
        parts.append(f"The average would hold {', '.join(guard['average_rejected'])}, left out "
                     f"by the partial-label check, so the guard keeps **{results['kept']}** "
                     "instead.")
    if "oracle" in results:
        runs = results["runs"]
        key = "heldout_target_accuracy" if all("heldout_target_accuracy" in r for r in runs) \
            else "target_accuracy"
        acc = {m: _mean(runs, m, lambda r: r.get(key)) for m in results["methods"]}
        kept = "" if sel == "source_only" else f"{sel} {acc[sel] * 100:.1f}%, "
        if results.get("kept") == "average":
            average = np.mean([a[key] for a in results["average"]])
            kept = f"the average {average * 100:.1f}%, {kept}"
        elif results.get("kept") == "refined":
            refined = np.mean([a[key] for a in results["refined"]])
            kept = f"refined {refined * 100:.1f}%, {kept}"
        where = (f" on the {results['target']['held_out']:.0%} of the target held out of "
                 "training" if key == "heldout_target_accuracy" else "")
        best = max(results["methods"], key=lambda m: acc[m])  # on the part quoted
        parts.append(f"Target accuracy{where} (labels used only here): {kept}"
                     f"source_only {acc['source_only'] * 100:.1f}%, the best method "
                     f"({best}) {acc[best] * 100:.1f}%.")
    d = results["distances"]
    trained = (f", {d['source_only']['proxy_a_distance']:.2f} in source_only's representation"
               if "source_only" in d and d["after"]["model"] != "source_only" else "")
    parts.append(f"Proxy A-distance between the domains: {d['before']['proxy_a_distance']:.2f} "
                 f"with frozen features{trained}, {d['after']['proxy_a_distance']:.2f} in "
                 f"{d['after']['model']}'s (2 = separable, 0 = indistinguishable).")
    return " ".join(parts)


def partial_sentence(results: dict) -> str:
    """The partial-label check in words: the classes the target seems to lack, the methods
    that drew the target onto them, and what the guard did about it (only with pada among
    the methods; otherwise a hint to add it)."""
    part = results["partial"]
    names = results.get("classes") or [str(k) for k in range(len(part["class_share"]))]
    absent = ", ".join(names[k] for k in part["absent"])
    drawn = "; ".join(f"{m} {round(d * 100, 1) + 0.0:+.1f}" for m, d in part["drawn"].items()
                      if m != "source_only")  # + 0.0: no "-0.0"
    flagged = part["flagged"]
    seems = (f"The target seems to lack {absent}: source_only predicts each under "
             f"{ABSENT_SHARE:.0%} as often as its most predicted class (points of the target's "
             f"predicted mass on them against source_only: {drawn}).")
    if not part.get("acts", True):
        return (seems + " If it does, unweighted alignment draws target samples onto classes "
                "it does not have: add pada (--method pada), which weighs them down, and the "
                "guard then leaves out the methods that draw more of the target onto them "
                "than source_only" + (f" (here {', '.join(flagged)})" if flagged else "") + ".")
    if not flagged:
        done = "No method drew more of it onto them than source_only"
    else:
        done = (f"{', '.join(flagged)} drew more of it onto them than source_only and "
                + ("was" if len(flagged) == 1 else "were") + " left out of the vote"
                if results["guard"]["enabled"] else
                f"{', '.join(flagged)} drew more of it onto them than source_only and would be "
                "left out of the vote; --no-guard keeps "
                + ("it" if len(flagged) == 1 else "them") + " in")
    return (f"{seems} {done}; held-out source accuracy is counted on the classes it seems to "
            "hold, so pada is not judged on the classes it gives up.")


def class_weights(results: dict) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """PADA's class weights at the end of training, mean and std over seeds, with the class
    names; None when no PADA run recorded them."""
    got = [r["class_weights"] for r in results["runs"] if r.get("class_weights")]
    if not got or "classes" not in results:
        return None
    weights = np.asarray(got, dtype=float)
    return results["classes"], weights.mean(0), weights.std(0)


def classes_note(weights: tuple[list[str], np.ndarray, np.ndarray]) -> str:
    names, mean, _ = weights
    low = [n for n, w in zip(names, mean, strict=True) if w < LACKS]
    return ("PADA weighs each source class by the target's mean prediction of it, normalised "
            "by the largest (1 = the class the target seems to hold most of; mean over seeds, "
            "the bars' whiskers one std). The source loss and the domain discriminator count "
            "each class by its weight, so classes the target lacks stop pulling it. "
            + (f"Below {LACKS}: {', '.join(low)}: the target seems to lack these, or the model "
               "cannot see them yet (the weights follow its own predictions)." if low else
               f"No class is below {LACKS}: the target seems to hold them all."))


def selection_note(selection: dict | None) -> str:
    """What the source selection kept, from each part of a pool, before adaptation."""
    if not selection:
        return ""
    parts = selection.get("parts") or {}
    per_part = "; ".join(f"{name}: {p['kept']} of {p['total']}" for name, p in parts.items())
    text = (f"Before adaptation, selector {selection['selector']} kept {selection['kept']} of "
            f"{selection['pool']} source samples (keep fraction {selection['keep_fraction']:g}),"
            " from the frozen backbone's features and without the target's labels"
            + (f". Kept per part: {per_part}" if len(parts) > 1 else "") + ".")
    if selection.get("emptied_parts"):
        text += f" No sample was kept of {', '.join(selection['emptied_parts'])}."
    if selection.get("part_scores"):
        scores = ", ".join(f"{n} {v:.3g}" for n, v in selection["part_scores"].items())
        text += f" Part scores (higher is kept first): {scores}."
    return text + " The record: selection.json."


def write_report(folder: Path, results: dict, feature_map: dict | None) -> None:
    """report.html, report.md, figures/map.svg and (with PADA) figures/classes.svg: each
    written atomically once all are rendered, and a Ctrl-C while writing waits until the set
    is complete."""
    figs = {}
    if feature_map:
        figs["map"] = plots.feature_map(feature_map["panels"], feature_map["labels"],
                                        feature_map["classes"])
    weights = class_weights(results)
    if weights is not None:
        figs["classes"] = plots.class_weights(*weights, cut=LACKS)
    text, tabs = verdict(results), tables(results)
    notes = {"map": "t-SNE of up to 300 source and 300 target samples, coloured by domain: "
                    "the frozen backbone's features, then source_only's and the kept model's (the "
                    "selected one's when the average is kept) representations. Adaptation "
                    "should mix the two colours while keeping class clusters apart.",
             "setup": ", ".join(f"{k}={v}" for k, v in results["config"].items()),
             "classes": classes_note(weights) if weights is not None else "",
             "selection": selection_note(results.get("selection"))}
    body, md = [f"<h1>graftlab adapt: {html.escape(results['source']['name'])} → "
                f"{html.escape(results['target']['name'])}</h1>"], \
        [f"# graftlab adapt: {results['source']['name']} -> {results['target']['name']}"]
    for key, title in SECTIONS:
        if key == "classes" and key not in figs:  # only a run with PADA has the section
            continue
        if key == "selection" and "selection" not in results:
            continue
        body.append(f'<section id="{key}"><h2>{title}</h2>')
        md.append(f"## {title}")
        if key == "verdict":
            body.append(f'<div class="verdict">{bold_html(text)}</div>')
            md.append(text)
        elif key in tabs:
            head, rows = tabs[key]
            body.append(_table_html(head, rows))
            md.append(md_table(head, [[c[2] for c in row] for row in rows]))
            if key == "results" and row_notes(results):
                body.append("<p>" + "<br>".join(map(html.escape, row_notes(results))) + "</p>")
                md.append("\n".join(f"- {note}" for note in row_notes(results)))
        elif key in figs:
            body.append(f"<figure>{figs[key]}<figcaption>{html.escape(notes[key])}"
                        "</figcaption></figure>")
            md.append(f"![{title}](figures/{key}.svg)\n\n{notes[key]}")
        else:
            body.append(f"<p>{html.escape(notes.get(key, 'Not drawn.'))}</p>")
            md.append(notes.get(key, "Not drawn."))
        body.append("</section>")
    page, markdown = html_page("graftlab adapt", body), "\n\n".join(md) + "\n"
    with interrupt_deferred():
        for key in ("map", "classes"):
            if key in figs:
                _atomic.write_text(folder / "figures" / f"{key}.svg", figs[key])
        _atomic.write_text(folder / "report.html", page)
        _atomic.write_text(folder / "report.md", markdown)


def domain_map(models: dict, selected: str, source, target, max_points: int = 300) -> dict:
    """t-SNE panels of source+target features: frozen, source_only's, the selected model's."""
    from graftlab.features import extract_features

    rng = np.random.default_rng(0)
    s = source.subset(np.sort(rng.choice(len(source), min(max_points, len(source)), False)))
    t = target.subset(np.sort(rng.choice(len(target), min(max_points, len(target)), False)))
    ref = models["source_only"]
    sets = [("frozen backbone", [np.asarray(extract_features(
        ref.backbone, d, backbone_options=ref.backbone_options)) for d in (s, t)])]
    if selected != "source_only":
        sets.append(("source_only", [ref.transform(d) for d in (s, t)]))
    sets.append((f"after {selected}", [models[selected].transform(d) for d in (s, t)]))
    panels = list(zip([title for title, _ in sets],
                      plots.embed_2d([np.vstack(parts) for _, parts in sets])))
    labels = np.r_[np.zeros(len(s), int), np.ones(len(t), int)]
    return {"panels": panels, "labels": labels,
            "classes": [f"source ({source.name})", f"target ({target.name})"]}

