"""``graftlab multitask``: one backbone, several tasks from a YAML config, a per-task table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import _errors, _progress, app, console
from graftlab.cli.commands import _print_table


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
    from graftlab.workflows.multitask import table

    head, rows = table(result)
    out = Table(title=f"graftlab multitask: {cfg.model.backbone} ({cfg.model.strategy})")
    for i, col in enumerate(head):
        out.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*row)
    _print_table(out)
    console.print(f"saved: {result['model']['name']} in {result['run_folder']}/model "
                  "(also results.json, summary.md)")
