"""``graftlab multitask``: one backbone, several tasks from a YAML config, a per-task table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import _errors, _progress, app, console


@app.command()
def multitask(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(
        help="A YAML config (tasks: a list of {name, type, data, ...}; model; train) and/or "
        "dotted overrides, e.g. model.weighting=pcgrad train.epochs=3.",
        show_default=False)] = None,
) -> None:
    """Fit one model for several tasks (one forward pass answers all); score each task on a
    held-out split; save the model."""
    from graftlab.cli.configs import configured
    from graftlab.config import MultiTaskConfig
    from graftlab.workflows.multitask import run_multitask

    with _errors():
        cfg = configured(ctx, MultiTaskConfig, words)
        with _progress() as update:
            result = run_multitask(cfg, progress=update)
    table = Table(title=f"graftlab multitask: {cfg.model.backbone} ({cfg.model.strategy}, "
                  f"{cfg.model.weighting} weighting)")
    for col in ("task", "test samples", "metric", "value"):
        table.add_column(col)
    for task, scores in result["tasks"].items():
        for metric, value in scores.items():
            if metric != "n":
                table.add_row(task, f"{scores['n']:,}", metric, f"{value:.4f}")
    console.print(table)
    console.print(f"{result['total_params']:,} parameters to ship for "
                  f"{len(result['tasks'])} tasks; run folder {result['run_folder']}")
