"""``graftlab tag``: token classification (NER) on a CoNLL-style file or a bundled tagged set."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import _errors, _progress, app, console, err


@app.command()
def tag(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(
        help="The data (a CoNLL-style file: token<TAB>tag per line, a blank line between "
        "sentences; or a bundled tagged set such as wnut16:train), a YAML config (sections "
        "data, model, train) and/or dotted overrides, e.g. train.epochs=3 train.k=3.",
        show_default=False)] = None,
    test_data: Annotated[str | None, typer.Option(
        help="A held-out CoNLL file or tagged set (default: wnut16:test for wnut16:train, "
        "else a seeded data.test_size=0.2 of the distinct sentences held out).")] = None,
    strategy: Annotated[str | None, typer.Option(
        help="head_only (frozen encoder), last_k (the prefix below cached), full, lora ...")]
    = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
) -> None:
    """Train a token tagger (first sub-token labelling) and print entity-level precision,
    recall and F1 per type (seqeval's default scoring) on the held-out set."""
    from graftlab.cli.configs import configured
    from graftlab.config import TagConfig
    from graftlab.workflows.tag import run_tag

    with _errors():
        cfg = configured(ctx, TagConfig, words, positional="data.path")
        try:
            with _progress() as update:
                result = run_tag(cfg, progress=update)
        except KeyboardInterrupt:
            err.print("interrupted: no tagger saved; the same command trains it again.",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
    table = Table(title=f"{cfg.data.path} with {cfg.model.backbone} ({cfg.train.strategy}): "
                  f"entities in {result['test_data']}")
    for column in ("type", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for row in result["rows"]:
        table.add_row(*(str(row[c]) for c in ("type", "precision", "recall", "f1", "support")))
    console.print(table)
    console.print(f"{result['trainable_params']:,} trainable parameters, "
                  f"{result['seconds']:.1f} s; run folder {result['run_folder']}",
                  highlight=False, soft_wrap=True)
