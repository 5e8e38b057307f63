"""``graftlab advise``: rank backbones, layers and poolings before training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import SkipCorrupt, _errors, _progress, app, console
from graftlab.cli.commands import Words, _print_table

SHOWN = 10  # candidates printed (the report has all)


@app.command()
def advise(
    ctx: typer.Context,
    words: Words = None,
    backbone: Annotated[list[str] | None, typer.Option(
        "--backbone", "-b", help="Backbone(s) to score; default every one of the data's kind.")]
    = None,
    layer: Annotated[list[str] | None, typer.Option(
        "--layer", "-l", help="Layer(s) every backbone has; default a third, two thirds of the "
        "way up and the last.")] = None,
    pooling: Annotated[list[str] | None, typer.Option(
        help="Pooling(s); default avg and max (images), mean and cls (text).")] = None,
    score: Annotated[list[str] | None, typer.Option(
        help="Score(s): logme, hscore, nce, leep, knn, probe (default all).")] = None,
    limit: Annotated[int | None, typer.Option(help="Score a stratified sample of N.")] = None,
    image_size: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    target_column: Annotated[str | None, typer.Option(
        help="CSV/JSONL numeric column: score a regression (LogME, kNN, probe).")] = None,
    task: Annotated[str, typer.Option(help="auto, classification or regression.")] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder (new or empty).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier run at --out.")] = False,
    runs_dir: Annotated[Path, typer.Option()] = Path("runs"),
    skip_corrupt: SkipCorrupt = False,
) -> None:
    """Score every backbone x layer x pooling on cached features (LogME, H-score, NCE, LEEP,
    kNN, linear-probe CV) and recommend one, and whether to probe or fine-tune."""
    from graftlab.cli.configs import configured
    from graftlab.config import AdviseConfig
    from graftlab.report.advise import verdict
    from graftlab.workflows.advise import run_advise_config

    with _errors():
        cfg = configured(ctx, AdviseConfig, words, positional="data.path",
                         renames={"backbone": "model.backbones", "layer": "model.layers",
                                  "pooling": "model.poolings", "score": "scores"})
        with _progress() as update:
            advice, folder = run_advise_config(cfg, progress=update)
    data = advice.to_dict()
    table = Table(title=f"advise: {advice.data} ({advice.samples} samples)")
    for i, col in enumerate(["backbone", "layer", "pooling", *advice.scores]):
        table.add_column(col, justify="left" if i < 3 else "right", no_wrap=True)
    from graftlab.report.advise import tables

    for row in tables(data)["scores"][1][:SHOWN]:
        table.add_row(*row[:3], *row[4:])
    _print_table(table)
    console.print(verdict(data).replace("**", ""), soft_wrap=True)
    console.print(f"took {advice.seconds['total']:.1f} s; report: {folder}/report.html "
                  "(also report.md, results.json)")
