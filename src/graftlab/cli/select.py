"""``graftlab select``: which part of a source pool to train on for a target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import SkipCorrupt, _errors, _progress, app, console, err
from graftlab.cli.commands import Words


@app.command()
def select(
    ctx: typer.Context,
    words: Words = None,
    pool: Annotated[str | None, typer.Option(
        help="The source pool: bundled names joined by '+' (mnist+fashion_mnist+digits), a "
        "folder of part folders, or a CSV/JSONL with a source column (data.pool).")] = None,
    target: Annotated[str | None, typer.Option(
        help="Target data; its labels, if any, only score the accuracy-vs-fraction curve "
        "(data.target).")] = None,
    selector: Annotated[str, typer.Option(
        help="knn, mmd_herding, domain_classifier, kliep or task_similarity.")] = "knn",
    keep_fraction: Annotated[float, typer.Option(help="Share of the pool kept, in (0, 1].")]
    = 0.5,
    backbone: Annotated[str, typer.Option("--backbone", "-b")] = "efficientnet_lite0",
    image_size: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    source_column: Annotated[str, typer.Option(help="Table pools: the part column.")]
    = "source",
    runs_dir: Annotated[Path, typer.Option()] = Path("runs"),
    out: Annotated[Path | None, typer.Option()] = None,
    overwrite: Annotated[bool, typer.Option()] = False,
    skip_corrupt: SkipCorrupt = False,
) -> None:
    """Source selection from the frozen backbone's cached features: kept indices and
    weights, kept per pool part, a kept-vs-dropped picture, the accuracy-vs-fraction curve."""
    from graftlab.cli.configs import configured
    from graftlab.config import SelectConfig
    from graftlab.workflows.select import run_select

    with _errors():
        cfg = configured(ctx, SelectConfig, words, renames={"target": "data.target"})
        with _progress() as update:
            result = run_select(cfg, progress=update)
    table = Table(title=f"kept by {result['selector']} at {result['keep_fraction']}")
    for col in ("part", "kept", "of"):
        table.add_column(col)
    for name, part in result["parts"].items():
        table.add_row(name, str(part["kept"]), str(part["total"]))
    console.print(table)
    if result["emptied_parts"]:
        err.print(f"note: no sample left of {', '.join(result['emptied_parts'])}")
    console.print(f"run folder: [bold]{result['run_folder']}[/] (kept.npy, weights.npy, "
                  "summary.md)")
