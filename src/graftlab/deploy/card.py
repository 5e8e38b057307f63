"""What a model folder is, and its model card.

:func:`locate` tells the four folders a :class:`~graftlab.deploy.predictor.Predictor` loads
apart (a saved Grafter, an average of adapted models, a run folder's ``model/``, an exported
folder), or says what is missing. :func:`model_card` gathers what the folders recorded:
backbone, strategy and head from the saved config; data and metrics from the run folder
(``graftlab fit``'s metrics.json, ``compare``'s or ``adapt``'s results.json) where there is one.
A run record that cannot be read leaves data and metrics out (with a warning): it never stops
a prediction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graftlab.errors import ConfigError

log = logging.getLogger(__name__)
GRAFTER, AVERAGE, EXPORTED = "grafter", "average", "exported"
EXPORT_FORMAT = "graftlab.export/1"  # contract.json of an exported folder
LOADS = ("a saved model folder (config.json + model.safetensors, from Grafter.save), an average "
         "of adapted models (average.json), a run folder of graftlab fit, compare or adapt (its "
         "model/ is loaded), or a folder written by graftlab export")
_AGAIN = "copy the whole folder again from where it was saved, or save (or export) it again."


@dataclass(frozen=True)
class Located:
    kind: str  # GRAFTER, AVERAGE or EXPORTED
    folder: Path  # the model folder itself
    run: Path | None  # the run folder around it, if any


def locate(path: str | Path) -> Located:
    """What ``path`` holds; a :class:`ConfigError` naming the missing file otherwise."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"{path} does not exist.", hint=f"give {LOADS}.")
    if path.is_file():
        raise ConfigError(f"{path} is a file; a model is a folder.",
                          hint=f"give the folder that holds it ({path.parent}), or {LOADS}.")
    run = None
    if (path / "model").is_dir() and not (path / "contract.json").is_file():
        run, path = path, path / "model"
    elif _is_run(path):
        raise ConfigError(f"{path} is a graftlab run folder without a saved model: "
                          f"{path / 'model'} is missing.",
                          hint="the run saves its model when a strategy or method finished; "
                          "run it again, or give the model folder itself.")
    if (path / "contract.json").is_file():
        _require(path, ["model.onnx", "manifest.json"], "an exported model")
        return Located(EXPORTED, path, run)
    if (path / "average.json").is_file():
        return Located(AVERAGE, path, run)
    if (path / "config.json").is_file() or (path / "model.safetensors").is_file():
        _require(path, ["config.json", "model.safetensors"], "a saved model")
        return Located(GRAFTER, path, run)
    raise ConfigError(f"{path} is not a model graftlab can load: it holds none of contract.json, "
                      "average.json, config.json + model.safetensors, or model/.",
                      hint=f"give {LOADS}.")


def _is_run(folder: Path) -> bool:
    return (folder / "results.json").is_file() or (folder / "metrics.json").is_file()


def _require(folder: Path, names: list[str], what: str) -> None:
    for name in names:
        if not (folder / name).is_file():
            raise ConfigError(f"{folder / name} is missing: {folder} is not a complete copy of "
                              f"{what}.", hint=_AGAIN)


def model_card(configs: list[dict], run: Path | None, *, labels: list[str] | None,
               task: str, members: list[str] | None = None) -> dict:
    """The card of a model saved with ``configs`` (one config.json, or each member's for an
    average) inside the run folder ``run`` (or None)."""
    params = configs[0].get("params", {})
    card: dict[str, Any] = {
        "backbone": params.get("backbone"), "backbone_options": params.get("backbone_options"),
        "strategy": params.get("strategy"), "head": params.get("head"),
        "task": task, "labels": labels, "data": None, "metrics": None, "run": None,
        "graftlab": configs[0].get("graftlab")}
    if members:
        card["strategy"] = "average"
        card["members"] = {name: c.get("params", {}).get("strategy")
                           for name, c in zip(members, configs, strict=True)}
    if run is not None:
        try:
            card.update(_run_record(run))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s: its run record cannot be read (%s: %s); the model card leaves "
                        "data and metrics out", run, type(exc).__name__, exc)
    return card


def _run_record(run: Path) -> dict:
    """``run``, ``data`` and ``metrics`` as the run folder recorded them."""
    if (run / "results.json").is_file():
        results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        kind = str(results.get("format", "")).partition("/")[0].removeprefix("graftlab.")
        if kind == "compare":
            return _compare(results)
        if kind == "adapt":
            return _adapt(results)
        return {"run": kind or None}
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    return {"run": "fit", "data": {"path": config["data"]["path"]},
            "metrics": {k: metrics[k] for k in ("accuracy", "macro_f1", "train", "test")
                        if k in metrics}}


def _described(domain: dict) -> dict:
    return {k: domain[k] for k in ("name", "modality", "size") if k in domain}


def _compare(results: dict) -> dict:
    strategy = results["model"]["strategy"]
    row = next(r for r in results["summary"] if r["strategy"] == strategy)
    metrics = {k: v for k, v in row.items() if k.endswith(("_mean", "_std")) or k == "seeds"}
    return {"run": "compare", "data": _described(results["config"]["data"]),
            "metrics": {**metrics, "over": "the run's seeds (the saved model is seed 0's)"}}


def _adapt(results: dict) -> dict:
    kept = results["model"]["method"]
    rows = (results[kept] if kept in ("average", "refined")
            else [r for r in results["runs"] if r["method"] == kept])
    metrics: dict[str, Any] = {"method": kept, "seeds": len(rows)}
    for key in ("source_accuracy", "target_accuracy"):
        values = [r[key] for r in rows if key in r]
        if values:
            metrics[f"{key}_mean"] = float(np.mean(values))
    metrics["over"] = "the run's seeds (the saved model is the first seed's)"
    return {"run": "adapt", "metrics": metrics,
            "data": {"source": _described(results["source"]),
                     "target": _described(results["target"])}}
