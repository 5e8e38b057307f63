"""``graftlab adapt``: labelled source + unlabelled target, label-free selection, the guard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import (SELECT_KEYS, Augment, KeepFraction, SelectOption, SkipCorrupt,
                              Track, _errors, _progress, app, console, err)
from graftlab.cli.commands import Words, _print_table


@app.command()
# long only in its signature (one typer option a line); the body is short
def adapt(
    ctx: typer.Context,
    words: Words = None,
    source: Annotated[str | None, typer.Option(
        help="Labelled source: image folder, CSV/JSONL or bundled name (mnist, vader:movies "
        "...); required here or as data.source in the config.")] = None,
    target: Annotated[str | None, typer.Option(
        help="Target data; its labels, if any, are used only to report target accuracy "
        "(required here or as data.target).")] = None,
    method: Annotated[str | None, typer.Option(help="Comma-separated: dann, dan, coral, cdan, mcc "
                                             "(the default: all five); pada when the target "
                                             "lacks some of the source's classes; vat, vada "
                                             "(virtual adversarial training). source_only "
                                             "always runs too. Selection needs several: "
                                             "ensemble agreement is one of its voters.")] = None,
    backbone: Annotated[str, typer.Option("--backbone", "-b")] = "efficientnet_lite0",
    strategy: Annotated[str, typer.Option(help="What trains (as in fit).")] = "last_k",
    k: Annotated[int, typer.Option(help="Blocks trained by last_k.")] = 2,
    head: Annotated[str, typer.Option(help="linear, or mlp: a bottleneck layer that the "
                                           "methods align (needed with head_only).")] = "linear",
    bottleneck: Annotated[int, typer.Option(help="Width of the mlp head's bottleneck.")] = 256,
    epochs: Annotated[int, typer.Option()] = 5,
    batch_size: Annotated[int, typer.Option()] = 32,
    lr: Annotated[float, typer.Option()] = 1e-3,
    transfer_weight: Annotated[float, typer.Option("--lambda", help="Weight of the transfer "
                                                   "loss (warmed up from 0).")] = 1.0,
    seeds: Annotated[int, typer.Option()] = 1,
    image_size: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many samples per domain.")]
        = None,
    guard: Annotated[bool, typer.Option(help="Keep source_only when the validators say "
                                             "adaptation hurts.")] = True,
    keep: Annotated[str, typer.Option(
        help="refined: one model self-trained on the source and the adapted models' "
             "consensus (pseudo-labels), outliers left out; average: the mean of the adapted "
             "models' probabilities; selected: the method the validators pick; auto: refined "
             "with two methods or more.")] = "auto",
    pseudo_fraction: Annotated[float, typer.Option(
        help="refined: the share of each predicted class's most confident target samples "
             "that keep the consensus's label.")] = 0.5,
    feature_map: Annotated[bool, typer.Option("--map/--no-map")] = True,
    label_map: Annotated[str | None, typer.Option(
        help="Rename target classes to source ones: 'pos=positive,neg=negative'.")] = None,
    grayscale: Annotated[bool, typer.Option(
        help="Turn both image domains to luminance first (removes a colour shift).")] = False,
    target_holdout: Annotated[float, typer.Option(
        help="With target labels: the share of the target, drawn at random, that no "
             "training sees; every model is also scored on it.")] = 0.2,
    select_epoch: Annotated[str | None, typer.Option(
        help="Keep each method's epoch that this label-free validator scores best on the "
             "target: entropy, info_max or snd (default: the last epoch).")] = None,
    text_column: Annotated[str, typer.Option(help="CSV/JSONL text column (both sides).")] = "text",
    label_column: Annotated[str, typer.Option(
        help="CSV/JSONL label column (both sides; the target's only scores).")] = "label",
    target_text_column: Annotated[str | None, typer.Option(
        help="The target table's text column, where it differs from --text-column.")] = None,
    target_label_column: Annotated[str | None, typer.Option(
        help="The target table's label column, where it differs.")] = None,
    runs_dir: Annotated[Path, typer.Option()] = Path("runs"),
    out: Annotated[Path | None, typer.Option()] = None,
    overwrite: Annotated[bool, typer.Option()] = False,
    skip_corrupt: SkipCorrupt = False,
    track: Track = None,
    select: SelectOption = None,
    keep_fraction: KeepFraction = 0.5,
    augment: Augment = None,
) -> None:
    """Domain adaptation: labelled source + unlabelled target; label-free selection; a guard
    against negative transfer; report.html/.md and results.json."""
    from graftlab.cli.configs import configured
    from graftlab.workflows.adapt import AdaptInterrupted
    from graftlab.config import AdaptConfig
    from graftlab.workflows.adapt_checks import check_methods
    from graftlab.workflows.configured import run_adapt_config

    with _errors():
        cfg = configured(ctx, AdaptConfig, words, renames={
            "method": "train.methods", "target": "data.target", **SELECT_KEYS})
        _note_few_methods([m for m in check_methods(cfg.train.methods) if m != "source_only"],
                          cfg.train.keep)
        try:
            with _progress() as update:
                result = run_adapt_config(cfg, progress=update)
        except AdaptInterrupted as stop:
            done = len(stop.results["runs"]) + len(stop.results.get("refined", []))
            err.print(f"interrupted: the {done} finished run(s) are in "
                      f"{stop.folder}/report.md (nothing selected, no model kept)")
            raise typer.Exit(130) from None
    _print_adapt(result)


def _note_few_methods(adapting: list[str], keep: str) -> None:
    """What selection and the guard cannot tell with one adaptation method, or two."""
    if len(adapting) == 1:
        err.print(f"note: with one method ({adapting[0]}) there is no ensemble to agree "
                  "with; information maximisation and SND alone judge it against "
                  "source_only, and IM favours confident models even when they are wrong. "
                  "Give several methods (the default runs all five) for a guard that can "
                  "tell.")
    elif len(adapting) == 2 and keep in ("auto", "refined"):
        err.print(f"note: with two methods ({', '.join(adapting)}) a failed one is half of "
                  "the consensus that teaches the refined model, and cannot be told apart "
                  "as an outlier. Give three or more (the default runs all five).")


def _print_adapt(result: dict) -> None:
    from graftlab.report.adapt import tables, verdict

    if result.get("task") == "regression":  # a numeric target: its own table (report.md)
        from graftlab.workflows.adapt_regression import summary

        console.print(summary(result), soft_wrap=True, markup=False)
        console.print(f"report: {result['run_folder']}/report.md (also results.json)")
        return
    head_row, rows = tables(result)["results"]
    table = Table(title=f"adapt: {result['source']['name']} -> {result['target']['name']}")
    for i, col in enumerate(head_row):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[c[2] for c in row],
                      style="bold green" if row[0][1] == result["kept"] else None)
    _print_table(table)
    console.print(verdict(result).replace("**", ""), soft_wrap=True)
    console.print(f"report: {result['run_folder']}/report.html (also report.md, results.json)")
