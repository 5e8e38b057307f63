"""Saved estimators: safetensors weights + a JSON config + a checksum manifest (never pickle).
A folder is verified before it loads, and every mismatch is explained in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graftlab import __version__, _atomic, integrity
from graftlab.errors import ConfigError

FORMAT = "graftlab.grafter/1"


def save_grafter(est: Any, folder: str | Path, targets: dict) -> Path:
    """Write ``est`` (a fitted Grafter) into ``folder`` (created; each file atomic)."""
    from safetensors.torch import save_model

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; a model is saved as a folder.",
                          hint="give a folder name (new, or one a model was saved in).")
    _check_not_theirs(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in est.get_params(deep=False).items() if k != "callbacks"}
    if "checkpoint_dir" in params:  # the run's, not the model's: a refit would write there
        params["checkpoint_dir"] = None
    teacher = params.get("distill_from")  # a folder is kept; a teacher object is not saved
    if teacher is not None:
        params["distill_from"] = str(teacher) if isinstance(teacher, str | Path) else None
    config = {"format": FORMAT, "graftlab": __version__, "estimator": type(est).__name__,
              "params": params,
              **targets, "trainable_params": est.trainable_params_, "history": est.history_}
    integrity.discard_manifest(folder)
    tmp = folder / ".model.safetensors.tmp"
    save_model(est.model_, str(tmp))
    tmp.replace(folder / "model.safetensors")
    _atomic.write_json(folder / "config.json", config)
    integrity.write_manifest(folder, ["model.safetensors", "config.json"])
    return folder


def _check_not_theirs(folder: Path) -> None:
    """Refuse to replace a config.json or manifest.json that graftlab did not write (a web
    app's manifest, the user's own config) in the folder a model is saved to."""
    import json

    for name in ("config.json", "manifest.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = None
        kind = found.get("format") if isinstance(found, dict) else None
        if not (isinstance(kind, str) and kind.startswith("graftlab")):
            raise ConfigError(f"{folder} holds a {name} that graftlab did not write; saving a "
                              f"model there would replace it.",
                              hint="save the model into a new folder (or one a model was "
                              "saved in).")


def load_grafter(cls: type, folder: str | Path) -> Any:
    """A saved estimator of class ``cls``, rebuilt from its config and verified weights."""
    from safetensors.torch import load_model

    folder = Path(folder)
    if (folder / "average.json").is_file():
        raise ConfigError(f"{folder} holds an average of adapted models, not one Grafter.",
                          hint="load it with graftlab.adapt.average.AveragedModel.load.")
    if (folder / "model" / "model.safetensors").is_file() and \
            not (folder / "model.safetensors").is_file():  # a run folder: its model inside
        raise ConfigError(f"{folder} is a run folder; its model is {folder / 'model'}.",
                          hint=f"load {folder / 'model'}.")
    integrity.verify_manifest(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise ConfigError(f"{folder} is not a saved Grafter (needs config.json and "
                          "model.safetensors).", hint="save one with Grafter.save(folder).")
    config = integrity.read_json(folder / "config.json")
    check_format(config, folder / "config.json", FORMAT)
    saved_as = config.get("estimator", "Grafter")
    if saved_as != cls.__name__:
        raise ConfigError(f"{folder} holds a {saved_as}; load it with {saved_as}.load.")
    params = config.get("params")
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(params or {}) - known) if isinstance(params, dict) else ["(not a dict)"]
    if unknown:
        raise ConfigError(f"{folder}/config.json: params {unknown} are not {cls.__name__} "
                          "parameters (edited, or saved by another graftlab version).",
                          hint=f"remove them; {cls.__name__}'s parameters are "
                          f"{', '.join(sorted(known))}.")
    est = cls(**params)
    targets = est._targets.from_config(config)
    build_for = getattr(est, "build_for", None)  # a multi-task model is sized per task
    model = build_for(targets) if build_for else est.build(targets.num_outputs)[0]
    try:
        load_model(model, str(folder / "model.safetensors"))
    except Exception as exc:  # shapes that differ, an unreadable file: one line, not 200
        raise integrity.explain_load_error(exc, config, folder=folder) from exc
    est.restore(model, config)
    return est


def check_format(record: object, path: str | Path, expected: str) -> None:
    """Refuse a saved file of another format (another graftlab version wrote it), naming it."""
    found = record.get("format") if isinstance(record, dict) else None
    if found != expected:
        raise ConfigError(f"{path} has format {found!r}, not {expected!r}: another graftlab "
                          "version saved it.",
                          hint="load it with the graftlab version that saved it, or fit and "
                          "save the model again with this one.")
