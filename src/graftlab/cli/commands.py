"""Commands that do the work: demo, extract, probe, fit, compare (adapt: cli/adapt.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import (SELECT_KEYS, KeepFraction, SelectOption, SelectTarget,
                              SkipCorrupt, Track, Augment, _errors, _print_table, _progress, app,
                              console, err)
from graftlab.errors import ConfigError

# Workflows, configs and their imports (numpy, pydantic, yaml) load inside each command, so
# `graftlab --help` and every command start without them.


@app.command()
def demo(
    runs_dir: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs"),
    image_size: Annotated[int, typer.Option(help="Backbone input size in pixels.")] = 64,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the feature cache.")]
    = False,
) -> None:
    """MNIST -> MNIST-M: frozen EfficientNet-Lite0 features, a linear probe, source vs target."""
    from graftlab.workflows.demo import run_demo
    with _errors(), _progress() as update:
        metrics = run_demo(runs_dir=runs_dir, image_size=image_size, cache=not no_cache,
                           progress=update)
    table = Table(title="graftlab demo: mnist -> mnist_m (EfficientNet-Lite0 + linear probe)")
    for col in ("evaluated on", "samples", "accuracy", "macro F1"):
        table.add_column(col)
    for row in metrics["table"]:
        table.add_row(row["evaluated on"], str(row["samples"]), f"{row['accuracy']:.3f}",
                      f"{row['macro_f1']:.3f}")
    console.print(table)
    console.print(f"run folder: [bold]{metrics['run_folder']}[/] "
                  f"(config.json, metrics.json, summary.md); {metrics['seconds_total']:.1f} s")


Words = Annotated[list[str] | None, typer.Argument(
    help="A YAML config (.yaml) and/or dotted overrides, e.g. model.backbone=minilm_l6 "
    "train.epochs=3 (options on the command line win over the file; overrides win over both).",
    show_default=False)]
TestData = Annotated[str | None, typer.Option(
    help="An explicit held-out set (e.g. your own test/ folder, or a .csv), scored instead of "
    "a seeded random split.")]


@app.command()
def extract(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(
        help="DATA (image folder, .csv/.jsonl file, or bundled name such as mnist or "
        "vader:movies), and/or a YAML config and dotted overrides (model.layers=...).",
        show_default=False)] = None,
    backbone: Annotated[str, typer.Option("--backbone", "-b")] = "efficientnet_lite0",
    layer: Annotated[list[str] | None, typer.Option("--layer", "-l",
                                                    help="Layer(s); default the last.")] = None,
    pooling: Annotated[str | None, typer.Option(help="avg/max (images), mean/cls/max (text).")]
    = None,
    out: Annotated[Path | None, typer.Option(help="Also save features here (.npy; one file "
                                                  "per layer if several).")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    image_size: Annotated[int | None, typer.Option(help="Image backbones: input pixels.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Text backbones: tokens per text.")]
    = None,
    text_column: Annotated[str, typer.Option(help="CSV/JSONL text column.")] = "text",
    label_column: Annotated[str | None, typer.Option(
        help="CSV/JSONL label column (optional: extraction needs no labels).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    skip_corrupt: SkipCorrupt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Extract pooled features from any layer(s), through the on-disk cache (no labels
    needed: a folder of loose images, or of one class, extracts too)."""
    from graftlab.cli.configs import configured
    from graftlab.config import ExtractConfig
    from graftlab.features import extract_layers
    from graftlab.workflows.common import (check_backbone, check_cache, check_modality,
                                           load_with_columns, user_path)

    with _errors():
        cfg = configured(ctx, ExtractConfig, words, positional="data.path",
                         renames={"layer": "model.layers", "no_cache": "cache"},
                         convert={"no_cache": lambda v: not v})
        d, m = cfg.data, cfg.model
        modality = check_backbone(m.backbone, image_size=m.image_size,
                                  max_length=m.max_length)
        out = user_path(cfg.out)  # --out=~/x: the shell left the ~
        _check_extract_out(out, cfg.overwrite)
        check_cache(cfg.cache)
        with _progress() as update:
            domain = load_with_columns(d.path, text_column=d.text_column,
                                       label_column=d.label_column, labelled=None,
                                       skip_corrupt=d.skip_corrupt, image_size=m.image_size)
            check_modality(domain, modality, m.backbone)  # names the backbone and -b
            opts = {k: v for k, v in (("image_size", m.image_size),
                                      ("max_length", m.max_length)) if v is not None}
            feats = extract_layers(m.backbone, domain, layers=m.layers or None,
                                   pooling=m.pooling, batch_size=m.batch_size, cache=cfg.cache,
                                   backbone_options=opts,
                                   progress=lambda d, t: update(f"extract {domain.name}", d, t))
        _print_and_save(feats, out)
        if out is not None and domain.meta.get("files"):
            _save_rows(domain.meta["files"], out)


def _save_rows(files: list[str], out: Path) -> None:
    """Beside the .npy, which file each row came from (``<out>.files.txt``, one path a line):
    a folder's rows follow its sorted files, less any that --skip-corrupt left out."""
    from graftlab import _atomic

    path = out.with_name(f"{out.stem}.files.txt")
    _atomic.write_text(path, "".join(f"{name}\n" for name in files))
    console.print(f"  row order: {path} (the file of each row)")


def _check_extract_out(out: Path | None, overwrite: bool = False) -> None:
    """extract --out: a file name in a folder that can be written; an existing file only
    with --overwrite."""
    from graftlab.workflows.common import check_writable

    if out is not None:
        check_writable(Path(out).parent, "--out")
        if Path(out).is_dir():
            raise ConfigError(f"--out {out} is a folder; give a file name, e.g. "
                              f"{Path(out) / 'features.npy'}.")
        if Path(out).suffix.lower() != ".npy":
            raise ConfigError(f"--out {out}: features are written as a NumPy .npy file, so "
                              "the name must end in .npy.",
                              hint=f"e.g. --out {Path(out).with_suffix('.npy')} "
                              "(numpy.load reads it).")
        if Path(out).is_file() and not overwrite:
            raise ConfigError(f"--out {out} already exists; extract does not overwrite it "
                              "unasked.", hint="give another name, or pass --overwrite to "
                              "replace it.")


def _print_and_save(feats: dict, out: Path | None) -> None:
    """Each layer's feature shape; with --out, its .npy (one file per layer if several)."""
    import numpy as np

    from graftlab import _atomic

    for name, array in feats.items():
        console.print(f"{name}: {array.shape[0]} x {array.shape[1]} features")
        if out is not None:
            out_path = Path(out)
            path = out_path if len(feats) == 1 else \
                out_path.with_name(f"{out_path.stem}.{name}{out_path.suffix}")
            _atomic.write_npy(path, np.asarray(array))
            console.print(f"  saved {path}")


@app.command()
def probe(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(
        help="DATA (labelled folder, .csv/.jsonl or bundled name), and/or a YAML config and "
        "dotted overrides (model.layer=blocks.5 ...).", show_default=False)] = None,
    backbone: Annotated[str, typer.Option("--backbone", "-b")] = "efficientnet_lite0",
    layer: Annotated[str | None, typer.Option("--layer", "-l")] = None,
    pooling: Annotated[str | None, typer.Option()] = None,
    image_size: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction.")] = 0.2,
    test_data: TestData = None,
    seed: Annotated[int, typer.Option()] = 0,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    target_column: Annotated[str | None, typer.Option(
        help="CSV/JSONL numeric column: fit a ridge regressor on it instead.")] = None,
    task: Annotated[str, typer.Option(help="auto, classification or regression (bundled "
                                           "sets with raw ratings, e.g. vader:movies).")] = "auto",
    runs_dir: Annotated[Path, typer.Option()] = Path("runs"),
    skip_corrupt: SkipCorrupt = False,
) -> None:
    """Linear probe on cached features (tuned logistic regression, or ridge for a numeric
    target), scored on a held-out split or --test-data."""
    from graftlab.cli.configs import configured
    from graftlab.config import ProbeConfig
    from graftlab.workflows.probe import run_probe_config

    with _errors():
        cfg = configured(ctx, ProbeConfig, words, positional="data.path")
        with _progress() as update:
            domain, result = run_probe_config(cfg, progress=update)
    if result["task"] == "regression":
        console.print(f"{domain.name}: held-out R² {result['r2']:.3f}, MAE {result['mae']:.3f} "
                      f"(ridge alpha={result['probe_alpha']:g}); "
                      f"run folder {result['run_folder']}")
    else:
        console.print(f"{domain.name}: held-out accuracy {result['accuracy']:.3f}, macro F1 "
                      f"{result['macro_f1']:.3f} (C={result['probe_C']:g}); "
                      f"run folder {result['run_folder']}")


@app.command()
def fit(
    ctx: typer.Context,
    words: Annotated[list[str] | None, typer.Argument(
        help="A YAML config (sections data, model, train) and/or dotted overrides, e.g. "
        "train.epochs=3 model.head=mlp.", show_default=False)] = None,
    distill_from: Annotated[str | None, typer.Option(
        help="Distil from a teacher: a saved model folder or a `graftlab fit` run folder, "
        "fitted on the same labels.")] = None,
    distill_temperature: Annotated[float, typer.Option(
        help="Temperature T that softens both models' probabilities.")] = 4.0,
    distill_weight: Annotated[float, typer.Option(
        help="alpha: the weight of the teacher's soft targets (1 - alpha on the labels).")]
    = 0.9,
    test_data: TestData = None,
    track: Track = None,
    select: SelectOption = None,
    keep_fraction: KeepFraction = 0.5,
    select_target: SelectTarget = None,
    augment: Augment = None,
) -> None:
    """Fine-tune a backbone as configured; score it on a held-out split (or --test-data);
    save the model. Data and model come from a YAML config or dotted overrides
    (data.path=reviews.csv model.backbone=minilm_l6)."""
    from graftlab.cli.configs import configured
    from graftlab.config import FitConfig
    from graftlab.workflows.fit import run_fit

    with _errors():
        cfg = configured(ctx, FitConfig, words, renames=SELECT_KEYS)
        try:
            with _progress() as update:
                result = run_fit(cfg, progress=update)
        except KeyboardInterrupt:
            from graftlab.workflows.fit import resume_folder

            kept = resume_folder(cfg)
            err.print("interrupted: no model saved." + (
                f" The epochs done are checkpointed in {kept}: the same command resumes "
                "from there." if kept.is_dir() and any(kept.iterdir()) else ""),
                highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
    taught = result["record"].get("distillation")
    console.print(f"{cfg.data.path} with {cfg.model.backbone} ({cfg.train.strategy}"
                  + (f", distilled from {taught['backbone']}" if taught else "")
                  + f"): held-out accuracy {result['accuracy']:.3f}, macro F1 "
                  f"{result['macro_f1']:.3f}, {result['trainable_params']:,} trainable "
                  f"parameters, {result['seconds']:.1f} s; run folder {result['run_folder']}")


@app.command()
def compare(
    ctx: typer.Context,
    words: Words = None,
    data: Annotated[str | None, typer.Option(
        help="Image folder, CSV/JSONL file or bundled data set (`graftlab datasets`); "
        "required here or as data.path in the config.")] = None,
    backbone: Annotated[str, typer.Option("--backbone", "-b",
                                          help="Registered backbone or hf:PATH.")] = (
        "efficientnet_lite0"),
    strategies: Annotated[str | None, typer.Option(
        help="Comma-separated strategies; default linear_probe,head_only,last_k,full,lora. "
             "The from-scratch baseline is added unless --no-scratch.")] = None,
    seeds: Annotated[int, typer.Option(help="Train/test splits (and seeds) per strategy.")] = 3,
    epochs: Annotated[int, typer.Option()] = 5,
    batch_size: Annotated[int, typer.Option()] = 32,
    lr: Annotated[float | None, typer.Option(help="Head learning rate.")] = None,
    lr_backbone: Annotated[float | None, typer.Option(help="Backbone learning rate.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Resize images to this side.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Truncate texts to this many "
                                                        "tokens.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use a stratified sample of this many "
                                                   "samples.")] = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction of each split.")] = 0.2,
    test_data: TestData = None,
    scratch: Annotated[bool, typer.Option(help="Add the from-scratch baseline.")] = True,
    feature_map: Annotated[bool, typer.Option("--map/--no-map",
                                              help="Draw the t-SNE feature map.")] = True,
    text_column: Annotated[str, typer.Option(help="CSV/JSONL text column.")] = "text",
    label_column: Annotated[str, typer.Option(help="CSV/JSONL label column.")] = "label",
    target_column: Annotated[str | None, typer.Option(
        help="CSV/JSONL numeric column: compare as regression (R², MAE).")] = None,
    task: Annotated[str, typer.Option(
        help="auto, classification, regression or tokens (tagged sentences: a CoNLL-style "
        "file, or wnut16:train; auto for bundled tagged sets and .conll/.bio files).")] = "auto",
    runs_dir: Annotated[Path, typer.Option(help="Where dated run folders go.")] = Path("runs"),
    out: Annotated[Path | None, typer.Option(help="Exact run folder (must be new or "
                                                  "empty).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it holds an earlier "
                                                 "comparison.")] = False,
    skip_corrupt: SkipCorrupt = False,
    track: Track = None,
    select: SelectOption = None,
    keep_fraction: KeepFraction = 0.5,
    select_target: SelectTarget = None,
) -> None:
    """Compare transfer strategies on the same splits; write report.html/.md and results.json."""
    from graftlab.cli.configs import configured
    from graftlab.config import CompareConfig
    from graftlab.workflows.compare import CompareInterrupted
    from graftlab.workflows.configured import run_compare_config

    with _errors():
        from graftlab.cli.multitask import compare_tasks, multitask_config

        raw = multitask_config(words)
        if raw is not None:  # a multi-task config: per-task tables, single-task beside
            return compare_tasks(ctx, words, raw)
        cfg = configured(ctx, CompareConfig, words, renames={"data": "data.path", **SELECT_KEYS})
        try:
            with _progress() as update:
                result = run_compare_config(cfg, progress=update)
        except CompareInterrupted as stop:
            folder = stop.results["run_folder"]
            err.print(f"interrupted: the report of the {len(stop.results['runs'])} finished "
                      f"run(s) is in {folder}/report.html")
            raise typer.Exit(130) from None
    _print_summary(result)


def _print_summary(result: dict) -> None:
    if result["task"] == "tokens":
        return _print_tokens(result)
    from graftlab.report.compare import cells, headers

    table = Table(title=f"compare: {result['config']['data']['name']} with "
                        f"{result['config']['backbone']}")
    for i, col in enumerate(headers(result["task"])):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in result["summary"]:
        style = "bold green" if row["strategy"] == result["verdict"]["recommended"] else None
        table.add_row(*[text for _, _, text in cells(row, result["task"])], style=style)
    _print_table(table)
    from graftlab.report.compare import extraction_line

    line = extraction_line(result)
    if line:
        console.print(line, soft_wrap=True)
    console.print(result["verdict"]["text"].replace("**", ""), soft_wrap=True)
    console.print(f"report: {result['run_folder']}/report.html (also report.md, results.json)")


def _print_tokens(result: dict) -> None:
    """A token comparison: each strategy's entity scores, then each type's F1."""
    from graftlab.report.compare_tokens import tables, verdict

    titles = {"strategies": f"compare: token tagging on {result['config']['data']['path']}",
              "types": "entity F1 per type (%)"}
    for key, (head, rows) in tables(result).items():
        table = Table(title=titles[key])
        for i, col in enumerate(head):
            table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            best = key == "strategies" and row[0] == result["recommended"]
            table.add_row(*row, style="bold green" if best else None)
        _print_table(table)
    console.print(verdict(result).replace("**", ""), soft_wrap=True)
    console.print(f"report: {result['run_folder']}/report.html (also report.md, results.json)")
