"""``graftlab multitask``: one backbone, several tasks from a YAML config, a per-task table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import _errors, _print_table, _progress, app, console, err


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
        try:
            with _progress() as update:
                result = run_multitask(cfg, progress=update)
        except KeyboardInterrupt:
            err.print("interrupted: the runs that finished (if any) are in the run folder's "
                      "summary.md and results.json; the same command starts again.",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
    print_multitask(cfg, result)


# compare's options that mean the same in a multi-task comparison, and the key each sets
COMPARE_KEYS = {"strategies": "model.strategy", "backbone": "model.backbone",
                "seeds": "train.seeds", "epochs": "train.epochs",
                "batch_size": "train.batch_size", "lr": "train.lr",
                "lr_backbone": "train.lr_backbone", "test_size": "train.test_size",
                "max_length": "model.max_length", "image_size": "model.image_size",
                "runs_dir": "runs_dir", "out": "out", "overwrite": "overwrite"}


def multitask_config(words: list[str] | None) -> dict | None:
    """The YAML config the words name, when it is a multi-task one (it has ``tasks:``)."""
    from graftlab.cli.configs import split_words
    from graftlab.config.loading import read_yaml_file

    path = split_words(list(words or []))[0]
    if path is None:
        return None
    raw = read_yaml_file(path, "config file", "give the path of an existing YAML file.")
    return raw if isinstance(raw, dict) and "tasks" in raw else None


def compare_tasks(ctx: typer.Context, words: list[str] | None, raw: dict) -> None:
    """``graftlab compare tasks.yaml`` (``raw``: the file's content): the multi-task comparison
    (every strategy and weighting, each beside its single-task models unless the file says
    train.single_task: false), with compare's options that apply; the others are refused by
    name."""
    from graftlab.cli.configs import given_options, split_words
    from graftlab.config import MultiTaskConfig, load_config
    from graftlab.errors import ConfigError
    from graftlab.workflows.multitask import run_multitask

    path, overrides, rest = split_words(list(words or []))
    options = given_options(ctx)
    flags = {param.name: param.opts[0] for param in ctx.command.params}
    refused = [flags[name] for name in options if name not in COMPARE_KEYS]
    if refused or rest:
        raise ConfigError(f"{', '.join(refused + rest)} cannot be used with a multi-task config "
                          f"({path} has tasks:).", hint="each task names its data in the file; "
                          f"compare takes {', '.join('--' + k.replace('_', '-') for k in COMPARE_KEYS)}.")
    given = {COMPARE_KEYS[name]: value for name, value in options.items()}
    if "single_task" not in (raw.get("train") or {}):
        given["train.single_task"] = True
    cfg = load_config(path, overrides, schema=MultiTaskConfig, options=given)
    with _progress() as update:
        result = run_multitask(cfg, progress=update)
    print_multitask(cfg, result)


def print_multitask(cfg, result: dict) -> None:
    from graftlab.report.multitask import table

    head, rows = table(result)
    out = Table(title=f"graftlab multitask: {cfg.model.backbone} ({', '.join(cfg.model.strategy)})")
    for i, col in enumerate(head):
        out.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*row)
    _print_table(out)
    console.print(f"saved: {result['model']['name']} in {result['run_folder']}/model "
                  "(also report.html, summary.md, results.json)")
