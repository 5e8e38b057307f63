"""``graftlab tune``: a hyper-parameter search (one process, or one worker of a shared study)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from graftlab.cli.app import SkipCorrupt, Track, _errors, _progress, app, console, err


@app.command()
def tune(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(
        help="DATA (labelled folder, .csv/.jsonl or bundled name), and/or a YAML config "
        "(sections data, model, train, tune) and dotted overrides (train.epochs=3 ...).",
        show_default=False)] = None,
    space: Annotated[str | None, typer.Option(
        help="The search space: a YAML file with params: (name -> {type, low, high, log} or "
        "{type: categorical, choices}) and optionally fixed:.")] = None,
    trials: Annotated[int, typer.Option(help="The study's total of finished trials (a "
                                             "resumed study runs the rest).")] = 20,
    cv: Annotated[int, typer.Option(help="Cross-validation folds.")] = 3,
    storage: Annotated[str | None, typer.Option(
        help="Where the study lives: a file path (SQLite) or any SQLAlchemy URL, e.g. "
        "postgresql://USER@HOST:5432/DB, shared by workers on several machines. Default: "
        "in memory.")] = None,
    study: Annotated[str | None, typer.Option(
        help="The study's name in --storage: the same name resumes it or joins its "
        "workers.")] = None,
    sampler: Annotated[str, typer.Option(help="tpe or random.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    seed: Annotated[int, typer.Option(
        help="Seed of the folds and the sampler (train.seed seeds training); with --storage "
        "each worker mixes in its process id, so that workers draw different points.")] = 0,
    backbone: Annotated[str, typer.Option("--backbone", "-b")] = "efficientnet_lite0",
    epochs: Annotated[int, typer.Option(help="Epochs per fold (unless the space sets "
                                             "them).")] = 5,
    image_size: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    limit: Annotated[int | None, typer.Option(help="Use a stratified sample of this many "
                                                   "samples.")] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    runs_dir: Annotated[Path, typer.Option(help="Where the dated run folder goes.")] =
        Path("runs"),
    skip_corrupt: SkipCorrupt = False,
    track: Track = None,
) -> None:
    """Search hyper-parameters (Optuna TPE, pruned per epoch) by k-fold CV; write the trials,
    the best parameters, the optimisation history and the refitted best model."""
    from graftlab.cli.configs import configured
    from graftlab.config import TuneConfig
    from graftlab.tune.tuner import TuneInterrupted
    from graftlab.workflows.tune import run_tune

    with _errors():
        cfg = configured(ctx, TuneConfig, words, positional="data.path",
                         renames={"seed": "tune.seed"})
        try:
            with _progress() as update:
                result = run_tune(cfg, progress=update)
        except TuneInterrupted as stop:
            finished = len(stop.tuner.cv_results_["trial"]) if hasattr(
                stop.tuner, "cv_results_") else 0
            where = f"; their report is in {stop.folder}" if getattr(stop, "folder", None) \
                else ""
            resume = ("The same command (the same --storage and --study) resumes the study, "
                      "the stopped trial first." if cfg.tune.storage and cfg.tune.study else
                      "The study was in memory: give --storage FILE --study NAME to make the "
                      "next one resumable.")
            err.print(f"interrupted: {finished} finished trial(s){where}. {resume}")
            raise typer.Exit(130) from None
    best = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result["best_params"].items())
    console.print(f"{result['data']}: best mean CV accuracy {result['best_score']:.4f} "
                  f"(trial {result['best_trial']}, the best of {len(result['trials'])} "
                  f"finished: {best}); "
                  f"study {result['study']!r}; run folder {result['run_folder']}")
