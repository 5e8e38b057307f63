"""The tuning report: the trials table, the best parameters, the optimisation history."""

from __future__ import annotations

import math
from typing import Any

from graftlab.report.plots import _plt, color, to_svg
from graftlab.report.run import markdown_table


def trial_rows(cv_results: dict) -> list[dict[str, Any]]:
    """One row per finished trial from a Tuner's ``cv_results_`` (columns to rows)."""
    def plain(v: Any) -> Any:  # a pruned trial has no score: None in JSON, not NaN
        return None if isinstance(v, float) and math.isnan(v) else v

    keys = list(cv_results)
    return [{k: plain(cv_results[k][i]) for k in keys} for i in range(len(cv_results["trial"]))]


def history_svg(rows: list[dict]) -> str:
    """Each trial's CV accuracy by trial number (pruned trials as crosses at 0) and the best
    so far, as a line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    done = [r for r in rows if r["state"] == "complete"]
    pruned = [r for r in rows if r["state"] == "pruned"]
    ax.scatter([r["trial"] for r in done], [r["mean_test_score"] for r in done], s=14,
               color=color(0), label="complete")
    if pruned:
        ax.scatter([r["trial"] for r in pruned], [0] * len(pruned), marker="x", s=14,
                   color=color(8), label="pruned")
    best, line = -math.inf, []
    for r in sorted(done, key=lambda r: r["trial"]):
        best = max(best, r["mean_test_score"])
        line.append((r["trial"], best))
    ax.step(*zip(*line, strict=True), where="post", color=color(1), label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("mean CV accuracy")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return to_svg(fig)


def tune_markdown(results: dict) -> str:
    """report.md: what was tuned, the best trial, and every finished trial."""
    rows = results["trials"]
    names = [k for k in rows[0] if k.startswith("param_")]
    table = [{"trial": r["trial"], "state": r["state"], **{n[6:]: r[n] for n in names},
              "cv accuracy": r["mean_test_score"] if r["state"] == "complete" else "-",
              "epochs": r["epochs_run"],
              "retry of": "" if r["retry_of"] is None else r["retry_of"]} for r in rows]
    best = markdown_table([results["best_params"]])
    pruned = sum(r["state"] == "pruned" for r in rows)
    return (f"# Tuning {results['backbone']} on {results['data']}\n\n"
            f"Study `{results['study']}` ({results['storage']}): {len(rows)} finished trials "
            f"({pruned} pruned), {results['cv']}-fold CV, {results['sampler']} sampler, "
            f"{results['pruner']} pruner.\n\n"
            f"## Best: trial {results['best_trial']}, mean CV accuracy "
            f"{results['best_score']:.4f}\n\n{best}\n\n"
            + ("**Interrupted** before the study's trials were done: the best of the "
               "finished ones is shown, and no model was refitted (run the command again to "
               "finish; a study in `--storage` resumes, the stopped trial first).\n\n"
               if results.get("status") == "interrupted" else
               "The model refitted with these parameters on all the data is in `model/`.\n\n")
            + "## Optimisation history\n\n![optimisation history](history.svg)\n\n"
            f"## Trials\n\n{markdown_table(table)}\n")
