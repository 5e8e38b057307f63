"""``export``: a trained model as one ONNX graph, with what it needs to be fed, checked.

The exported folder holds:

- ``model.onnx``: backbone and head as one graph, exactly what ``Predictor.predict_proba``
  runs (:class:`~graftlab.deploy.engines.ModelGraph`). A domain-adaptation model is saved as
  backbone + head already (its discriminator belongs to the training method, not the model),
  so nothing auxiliary is in it. An average of adapted models is one graph that runs every
  member and outputs the mean of their softmax probabilities (``output: "probabilities"``);
  a Grafter's graph outputs logits, a regressor's its standardised value, a TokenTagger's
  logits per token (``"token_logits"``, (batch, tokens, tags)), a MultiTaskGrafter's every
  task's outputs side by side (``"task_outputs"``; the contract's ``tasks`` is its layout:
  per task its columns and classes or target scale).
- ``contract.json``: modality, the inputs' names and preprocessing (image size, scale,
  mean/std, channel order and layout; or the tokenizer, saved in ``tokenizer/``, with its
  max_length and truncation), label names, task, what the output is, the graftlab version,
  the source model's sha256 and the parity measured at export, and the model card.
- ``manifest.json``: every file's sha256 (:mod:`graftlab.integrity`).

Parity is checked before anything is written where it can be seen: the folder is built under
a temporary name beside ``out``, the exported graph is loaded back through
:class:`~graftlab.deploy.predictor.Predictor` (ONNX Runtime and the contract's preprocessing,
from the raw inputs) and compared with the eager PyTorch model on a sample: the ``sample``
data's first :data:`SAMPLE_SIZE` inputs, or else a fixed synthetic sample of the model's
modality (:func:`synthetic_sample`: random images of several sizes; texts of one word to
longer than max_length). Only if every output is within :data:`TOLERANCE` and every
prediction agrees is the folder renamed to ``out``.

``quantize="int8"`` replaces model.onnx by its int8 graph before the rename, and ``"auto"`` does
so only where int8 is faster on this machine: :mod:`graftlab.deploy.quantize`, which says how
(static QDQ for images, calibrated on ``calibration`` data; dynamic for text) and how the int8
graph is checked (prediction agreement with the fp32 graph, a different check from parity).
The contract then says so (``quantize``: asked, kept, why, measured; ``quantized``: scheme and
calibration, when the graph is int8); everything else in the folder is the same.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graftlab import __version__, _atomic, integrity
from graftlab.deploy import structured
from graftlab.deploy.card import EXPORT_FORMAT, EXPORTED, locate
from graftlab.deploy.engines import PROBABILITIES, STANDARDISED
from graftlab.deploy.predictor import Predictor
from graftlab.deploy.quantize import (CALIBRATION_SIZE, CHECK_SIZE, MIN_AGREEMENT, Int8Data,
                                      check_mode)
from graftlab.deploy.structured import MULTITASK, TAGGING
from graftlab.errors import ConfigError, DataError, GraftlabError

TOLERANCE = 1e-4  # max |difference| of any output (logit, probability, standardised value)
SAMPLE_SIZE = 32  # inputs read from --sample data


class ExportError(GraftlabError, RuntimeError):
    """The model cannot be exported (an operator ONNX lacks), or the exported graph does not
    compute what the model computes; nothing was written."""


@dataclass(frozen=True)
class Exported:
    folder: Path
    samples: int
    sample: str  # where the parity sample came from
    max_abs_diff: float
    bytes: int  # size of model.onnx
    quantize: dict | None = None  # the contract's record of --quantize: asked, kept, why


def export(model_path: str | Path, out: str | Path, *, sample: str | None = None,
           text_column: str = "text", quantize: str | None = None,
           calibration: str | None = None, min_agreement: float = MIN_AGREEMENT) -> Exported:
    """Export the model at ``model_path`` (anything :meth:`Predictor.load` takes but an
    export) into the new folder ``out``; see the module docstring. ``sample`` is a folder of
    images or a .csv/.jsonl table (``text_column``) for the parity check. ``quantize``: None,
    "int8" or "auto"; ``calibration``: data of the model's modality to calibrate an image model
    on (default ``sample``); ``min_agreement``: the int8 check's threshold."""
    out = _check_out(out)
    mode = check_mode(quantize, calibration)
    if locate(model_path).kind == EXPORTED:
        raise ConfigError(f"{model_path} is an exported model already.",
                          hint="export the saved model or run folder it came from.")
    eager = Predictor.load(model_path)
    inputs, described = _sample(eager, sample, text_column, CHECK_SIZE if mode else SAMPLE_SIZE)
    int8 = _int8_data(eager, (inputs, described), sample, calibration, text_column) if mode \
        else None
    inputs = inputs[:SAMPLE_SIZE]
    described = described if sample is None else _taken(sample, described, len(inputs))
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.export-"))
    try:
        _build(eager, Path(model_path), tmp, inputs[:2])
        onnx = Predictor.load(tmp)
        diff = parity(eager, onnx, inputs)
        contract = integrity.read_json(tmp / "contract.json")
        contract["parity"] = {"samples": len(inputs), "sample": described,
                              "max_abs_diff": diff, "tolerance": TOLERANCE,
                              "prediction_agreement": 1.0}
        if int8 is not None:
            from graftlab.deploy.quantize import apply

            contract.update(apply(tmp, onnx, int8, mode, min_agreement))
            if contract.get("quantized"):  # who reads the card (serve's /info) sees int8
                check = contract["quantize"]["check"]
                contract["card"] = {**(contract.get("card") or {}), "precision": "int8",
                                    "int8_agreement_with_fp32": check["prediction_agreement"],
                                    "int8_check": {k: check[k] for k in ("samples", "sample",
                                                                         "caveat") if k in check},
                                    "metrics_measured_in": "fp32, before quantisation"}
        _atomic.write_json(tmp / "contract.json", contract)
        integrity.write_manifest(tmp, _files(tmp))
        if out.is_dir():
            out.rmdir()  # empty (checked): replaced by the finished folder
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, len(inputs), described, diff, (out / "model.onnx").stat().st_size,
                    contract.get("quantize"))


def _check_out(out: str | Path) -> Path:
    out = Path(out).expanduser()
    if out.resolve() == Path.cwd().resolve():
        raise ConfigError(f"--out {out} is the folder you are in; export writes a new folder "
                          "in its place.", hint="name a new folder, e.g. --out exported.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not an empty folder; export writes a "
                          "new folder.", hint="give a new folder, or delete the old export "
                          "first to replace it.")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist.",
                          hint="create it first, or export somewhere else.")
    return out


def _build(eager: Predictor, source: Path, folder: Path, trace: list) -> None:
    """Write model.onnx, contract.json, the tokenizer and the manifest into ``folder``."""
    from graftlab.features.onnx_backend import export_graph, first_line

    engine = eager._engine
    backbone = engine.backbone
    (folder / "tokenizer").mkdir()
    spec = backbone.input_contract(folder / "tokenizer")
    if not any((folder / "tokenizer").iterdir()):
        (folder / "tokenizer").rmdir()
    batch = engine.prepare(_decoded(eager, trace))
    axes = {0: "batch", 1: "tokens"} if eager.task == TAGGING else {0: "batch"}
    try:
        export_graph(engine.graph, {n: batch[n] for n in engine.graph.names},
                     folder / "model.onnx", outputs={eager.output: axes},
                     text=eager.modality == "text")
    except Exception as exc:
        raise ExportError(
            f"the model cannot be exported to ONNX: the exporter failed with "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint=f"graftlab predict works on the saved model without export: "
            f"graftlab predict {source} DATA.") from exc
    contract = {
        "format": EXPORT_FORMAT, "graftlab": __version__, "task": eager.task,
        "labels": eager.labels, "output": eager.output, "inputs": spec,
        "outputs": {eager.output: [*axes.values(), _width(eager)]},
        "opset": 17, "source": _source(source), "card": eager.card}
    if eager.task == MULTITASK:
        contract["tasks"] = eager.tasks
    if eager.output == STANDARDISED:
        mean, std = eager._target
        contract["target"] = {"mean": mean, "std": std, "value": "standardised * std + mean"}
    _atomic.write_json(folder / "contract.json", contract)
    integrity.write_manifest(folder, _files(folder))


def _width(predictor: Predictor) -> int:
    """The graph's last output axis: classes, tags, every task's columns, or one value."""
    if predictor.tasks:
        return predictor.tasks[-1]["columns"][1]
    return len(predictor.labels) if predictor.labels else 1


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != integrity.MANIFEST)


def _source(path: Path) -> dict:
    """The source model's folder and the sha256 of each of its weight files."""
    folder = locate(path).folder
    weights = sorted(folder.rglob("model.safetensors"))
    return {"folder": str(folder.resolve()),
            "sha256": {p.relative_to(folder).as_posix(): integrity.sha256_file(p)
                       for p in weights}}


def _decoded(predictor: Predictor, items: list) -> list:
    from graftlab.deploy import inputs

    if predictor.task == TAGGING:
        return [" ".join(words) for words in structured.sentences(items)]
    return inputs.texts(items) if predictor.modality == "text" else inputs.images(items)


def parity(eager: Predictor, exported: Predictor, inputs: list) -> float:
    """The largest |difference| of the two models' outputs on ``inputs``; an
    :class:`ExportError` naming the input and value when it exceeds :data:`TOLERANCE`, or
    when a prediction differs (a near-tie, whose two best outputs lie within the tolerance,
    agrees either way)."""
    a, b = eager.outputs(inputs), exported.outputs(inputs)
    owner = np.arange(len(a))  # the sample input of each row (a tagger's rows are tokens)
    if eager.task == TAGGING:
        owner = np.repeat(owner, [len(x) for x in a])
        a, b = np.concatenate(a), np.concatenate(b)
    names = _column_names(eager)
    diff = np.abs(a.astype(np.float64) - b)
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    kind = "probability" if eager.output == PROBABILITIES else eager.output.rstrip("s")
    if diff[worst] > TOLERANCE:
        raise ExportError(
            f"the exported model does not match the PyTorch model: on sample input "
            f"{owner[worst[0]]}, the {kind} of {names[worst[1]]!r} is {a[worst]:.6g} in "
            f"PyTorch and {b[worst]:.6g} in ONNX Runtime (|difference| {diff[worst]:.2e} > "
            f"{TOLERANCE:.0e}); nothing was written.", hint=_HINT)
    for start, stop in _class_groups(eager):
        _agree(a[:, start:stop], b[:, start:stop], names[start:stop], owner)
    return float(diff.max()) if diff.size else 0.0


def _agree(a: np.ndarray, b: np.ndarray, labels: list[str], owner: np.ndarray) -> None:
    """An :class:`ExportError` where the best class of a row differs (but for near-ties)."""
    top2 = np.sort(a, axis=-1)[:, -2:] if a.shape[1] > 1 else np.zeros((len(a), 2))
    tie = (top2[:, 1] - top2[:, 0]) <= TOLERANCE
    differ = np.flatnonzero((a.argmax(-1) != b.argmax(-1)) & ~tie)
    if len(differ):
        i = int(differ[0])
        inputs = len(set(owner[differ].tolist()))
        raise ExportError(
            f"the exported model predicts differently from the PyTorch model on "
            f"{inputs} of {len(set(owner.tolist()))} sample inputs (first: input {owner[i]}, "
            f"{labels[int(a[i].argmax())]!r} in PyTorch, "
            f"{labels[int(b[i].argmax())]!r} in ONNX Runtime); nothing was written.",
            hint=_HINT)


def _column_names(predictor: Predictor) -> list[str]:
    """What each output column is, for messages: a class, a tag, ``task:class``, a value."""
    if predictor.tasks:
        return [f"{t['name']}:{c}" if t["type"] == "classification" else t["name"]
                for t in predictor.tasks for c in t.get("classes", [None])]
    return list(predictor.labels) if predictor.labels else ["value"]


def _class_groups(predictor: Predictor) -> list[tuple[int, int]]:
    """The column ranges whose best column is a prediction (each classification task's)."""
    if predictor.tasks:
        return [tuple(t["columns"]) for t in predictor.tasks if t["type"] == "classification"]
    return [(0, len(predictor.labels))] if predictor.labels else []


_HINT = ("graftlab predict works on the saved model without export; please report the model "
         "(backbone, strategy, head) with this message.")


def _sample(predictor: Predictor, data: str | None, text_column: str, size: int
            ) -> tuple[list, str]:
    """The check sample: ``data``'s first ``size`` inputs, or the synthetic one; and its
    description."""
    if data is None:
        pixels = getattr(predictor._engine.backbone, "image_size", 224)
        return (synthetic_sample(predictor.modality, pixels),
                "synthetic (graftlab.deploy.export.synthetic_sample)")
    items, how = _read(predictor, data, "--sample", text_column, size)
    return items, f"{data} ({how})"


def _read(predictor: Predictor, data: str, option: str, text_column: str, size: int
          ) -> tuple[list, str]:
    """``size`` of ``data``'s inputs, drawn at random (seeded) when it holds more (a folder of
    class folders read in order would give the first classes only), and how they were taken
    ("first N": all of them); data of the other modality, or none, is refused naming
    ``option``."""
    from graftlab.deploy.batch import open_source

    try:
        source = open_source(data, predictor.modality, text_column=text_column,
                             task=predictor.task, shuffle_seed=0)
    except DataError as exc:
        hint = exc.hint if "--skip-corrupt" not in (exc.hint or "") else (
            "remove or repair the unreadable files, or give another folder: export reads its "
            "inputs whole.")
        raise DataError(f"{option}: {exc.message}", hint=hint) from None
    if predictor.modality == "image" and source.total is not None:
        items, total = [x for _, x in itertools.islice(source.items, size)], source.total
    else:  # texts are cheap: read them all, then draw
        everything = [x for _, x in source.items]
        total = len(everything)
        drawn = np.sort(np.random.default_rng(0).permutation(total)[:size])
        items = [everything[i] for i in drawn]
    if not items:
        raise ConfigError(f"{option} {data} holds no input.", hint="give data with inputs, or "
                          f"leave {option} out.")
    how = f"first {len(items)}" if total <= len(items) else \
        f"{len(items)} of {total} at random"
    return items, how


def _taken(data: str, described: str, n: int) -> str:
    """``n`` inputs of ``data`` described as they were taken: drawn at random (when the data
    held more than were read) or its first ones."""
    return f"{data} ({n} drawn at random)" if "at random" in described else \
        f"{data} (first {n})"


def _int8_data(predictor: Predictor, sample: tuple[list, str], sample_data: str | None,
               calibration: str | None, text_column: str) -> Int8Data:
    """What ``--quantize`` reads (:class:`~graftlab.deploy.quantize.Int8Data`): an image model
    is calibrated on ``calibration`` (or else the ``sample`` data) and refused without either;
    the check runs on the sample data if given, else on the calibration data, else on the
    synthetic sample."""
    if predictor.task in (TAGGING, MULTITASK):
        raise ConfigError(f"--quantize: a {predictor.task} model is not quantised (the int8 "
                          "check compares one predicted class per input).",
                          hint="export it without --quantize (fp32).")
    if predictor.labels is None:
        raise ConfigError("--quantize: a regression model is not quantised (the int8 check "
                          "compares predicted classes, and a regressor has none).",
                          hint="export it without --quantize (fp32).")
    image = predictor.modality == "image"
    if calibration is None and sample_data is None and image:
        raise ConfigError("--quantize on an image model needs calibration data: static int8 "
                          "sets each activation's range from real inputs.",
                          hint="give --calibration FOLDER: a hundred or more images like "
                          "those the model will see (held-out training images do).")
    if calibration is not None:
        items, how = _read(predictor, calibration, "--calibration", text_column, CHECK_SIZE)
        source = calibration
    else:
        items, source, how = sample[0], sample_data, None
    calibrate = items[:CALIBRATION_SIZE] if image else None
    check, about = (items, f"{calibration} ({how})") if (
        sample_data is None and calibration is not None) else sample
    if image and (calibration is None or sample_data is None):  # checked where calibrated
        about = f"{about[:-1]}; the first {len(calibrate)} calibrated)"
    return Int8Data(calibrate, _taken(source, how or sample[1], len(calibrate)) if image
                    else None, check, about)


_WORDS = ("the film was good bad long short fun dull a great plot and it not very much I "
          "loved hated music acting café naïve 2024 !").split()


def synthetic_sample(modality: str, image_size: int = 224) -> list[Any]:
    """A fixed sample of ``modality``: 8 random RGB images (4 at ``image_size``, the others
    smaller and larger, so resizing is checked both ways), or 8 texts drawn from a fixed word
    list (one word up to 700, beyond any max_length, so truncation is checked)."""
    rng = np.random.default_rng(0)
    if modality == "image":
        size = image_size
        shapes = [(size, size)] * 4 + [(size // 2 + 3, size + 5), (size * 2, size * 3 // 2),
                                        (17, 23), (size + 1, size - 1)]
        return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in shapes]
    return [" ".join(rng.choice(_WORDS, n)) for n in (1, 2, 5, 9, 17, 33, 120, 700)]
