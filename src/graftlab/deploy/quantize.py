"""int8 variants of an exported graph (``graftlab export --quantize int8|auto``).

How the graph is quantised depends on the modality, as ONNX Runtime's quantisation guide
advises, and both start with its ``quant_pre_process`` (shape inference and graph
optimisation, so that the quantiser sees fused operators):

- **images**: static QDQ, weights per output channel, activations and weights int8 (S8S8,
  ONNX Runtime's default), activation ranges calibrated (MinMax) on the first
  :data:`CALIBRATION_SIZE` inputs of the calibration data. A conv net has nothing to quantise
  dynamically (dynamic int8 covers MatMul/Gemm only), so calibration data is required.
- **text**: dynamic int8: the MatMul/Gemm weights stored as int8, per output channel, and each
  activation quantised at run time from its own range, so no calibration data is needed. The
  token embeddings (a Gather) stay fp32, so the file shrinks by less than 4x. Per-channel
  weights, because one scale per matrix changed clearly more of a MiniLM classifier's
  predictions at the same speed (the commit that chose it gives the numbers).

**The check is not the fp32 export's parity check.** An fp32 export must compute what PyTorch
computes (max |difference| 1e-4, every prediction the same); int8 cannot. The int8 graph is
compared instead with the fp32 graph it was made from, both in ONNX Runtime, on the check
sample (the ``sample`` data's first :data:`CHECK_SIZE` inputs; else the calibration data,
which the first :data:`CALIBRATION_SIZE` of them calibrated, so it flatters a little; else,
for text, the synthetic sample): the share of inputs whose predicted class is the same is its
*agreement*, reported with the largest |difference| of any output. Below ``min_agreement``
(:data:`MIN_AGREEMENT` by default) nothing is written. A regression model has no classes to
agree on and is not quantised.

``auto`` builds and checks the int8 graph, then times both graphs on the check sample
(:func:`measure`: batch 1 and batch :data:`LARGE_BATCH`, interleaved, medians) and keeps int8
only when it agrees well enough and is faster at both batch sizes on this CPU (:func:`decide`).
int8 is not always faster: without VNNI instructions ONNX Runtime's int8 kernels can lose to
fp32 (onnxruntime issues #17389, #20052).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graftlab.errors import ConfigError, GraftlabError

log = logging.getLogger(__name__)

MODES = ("int8", "auto")
MIN_AGREEMENT = 0.95  # share of check inputs whose int8 prediction is the fp32 one
CALIBRATION_SIZE = 128  # inputs that calibrate the activation ranges of a static graph
CHECK_SIZE = 256  # inputs the int8 graph is checked (and, with auto, timed) on
LARGE_BATCH = 32
ROUNDS = {1: 30, LARGE_BATCH: 5}  # timed runs of each graph per batch size (auto)
_BATCH = 16  # calibration batch


class QuantizeError(GraftlabError, RuntimeError):
    """The int8 graph cannot be made, or predicts too differently from fp32; nothing was
    written."""


def check_mode(quantize: str | None, calibration: str | None) -> str | None:
    """``quantize`` checked (None, "int8" or "auto"); calibration data asks for one of them."""
    if quantize in (None, "none"):
        if calibration is not None:
            raise ConfigError("--calibration is only used with --quantize int8 or auto.",
                              hint="add --quantize int8 (or auto), or leave --calibration out.")
        return None
    if quantize not in MODES:
        raise ConfigError(f"--quantize must be one of none, {', '.join(MODES)}; got "
                          f"{quantize!r}.", hint="int8 quantises; auto keeps int8 only where "
                          "it is faster on this CPU.")
    return quantize


def scheme(modality: str) -> str:
    if modality == "image":
        return ("int8 static QDQ: weights per channel, activations calibrated (MinMax), "
                "S8S8")
    return ("int8 dynamic: MatMul/Gemm weights int8 per channel, activations quantised at run "
            "time")


def quantize_graph(src: Path, dst: Path, modality: str,
                   calibration: list[dict[str, np.ndarray]] | None) -> None:
    """Write the int8 graph of ``src`` (an fp32 ``model.onnx``) to ``dst``: see the module
    docstring. ``calibration``: prepared batches (images only). ONNX Runtime's errors become
    a :class:`QuantizeError` naming them."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from graftlab.features.onnx_backend import first_line

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[dict[str, np.ndarray]] = iter(calibration or [])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    pre = dst.with_name("pre-processed.onnx")
    try:
        # symbolic shape inference cannot follow a transformer's token axis; ONNX's can
        quant_pre_process(src, pre, skip_symbolic_shape=modality == "text")
        if modality == "image":
            quantize_static(pre, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        else:
            quantize_dynamic(pre, dst, op_types_to_quantize=["MatMul", "Gemm"],
                             per_channel=True, weight_type=QuantType.QInt8)
    except Exception as exc:
        raise QuantizeError(f"ONNX Runtime could not quantise the model to int8 "
                            f"({type(exc).__name__}: {first_line(exc)}); nothing was written.",
                            hint="export without --quantize (fp32), and please report the "
                            "model with this message.") from exc
    finally:
        pre.unlink(missing_ok=True)


def calibration_batches(prepare: Any, items: list) -> list[dict[str, np.ndarray]]:
    """``items`` preprocessed (``prepare``: an engine's) in batches, as the calibrator reads."""
    return [prepare(items[i:i + _BATCH]) for i in range(0, len(items), _BATCH)]


@dataclass(frozen=True)
class Agreement:
    samples: int
    sample: str
    agreement: float  # share of inputs whose predicted class is the same
    max_abs_diff: float  # of any output (logit or probability)
    threshold: float

    def record(self) -> dict:
        return {"samples": self.samples, "sample": self.sample,
                "prediction_agreement": self.agreement, "max_abs_diff": self.max_abs_diff,
                "min_agreement": self.threshold}


def agreement(fp32: np.ndarray, int8: np.ndarray, sample: str, threshold: float) -> Agreement:
    """How far int8's outputs (N, K) are from fp32's on the same inputs."""
    same = float((fp32.argmax(-1) == int8.argmax(-1)).mean()) if len(fp32) else 1.0
    diff = float(np.abs(fp32 - int8).max()) if fp32.size else 0.0
    return Agreement(len(fp32), sample, same, diff, threshold)


def refuse(measured: Agreement, modality: str = "image") -> QuantizeError:
    """The error for an int8 graph whose agreement is below the threshold."""
    return QuantizeError(
        f"the int8 model predicts the class fp32 predicts on only {measured.agreement:.1%} of "
        f"{measured.samples} inputs of {measured.sample} (at least {measured.threshold:.0%} "
        f"needed; max |difference| {measured.max_abs_diff:.3g}); nothing was written.",
        hint=("calibrate on more inputs like those the model will see (--calibration), or "
              "export fp32 (no --quantize)." if modality == "image" else
              "a text model's int8 is dynamic (nothing to calibrate): export it fp32 (no "
              "--quantize)."))


MIN_CHECK = 100  # fewer check inputs than this, or synthetic ones, make agreement a rough guess


def check_caveat(data: Int8Data) -> str | None:
    """Why the int8 check says less than its percentage suggests, if it does: synthetic
    inputs, few inputs, or inputs that also calibrated the graph."""
    if data.check_from.startswith("synthetic"):
        return (f"checked on {len(data.check)} synthetic inputs, not real ones: give --sample "
                f"DATA ({MIN_CHECK} or more inputs like those the model will see) to measure "
                "agreement")
    if len(data.check) < MIN_CHECK:
        return (f"checked on {len(data.check)} inputs only (one input is "
                f"{100 / len(data.check):.1f} points of agreement): give --sample DATA with "
                f"{MIN_CHECK} or more")
    if data.check_from.endswith("calibrated)"):  # _int8_data's words for that overlap
        return ("checked on inputs that also calibrated the graph, which flatters it: give "
                "--sample DATA other than the --calibration data")
    return None


def paired_times(runs: dict[str, Any], rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each of ``runs`` (name -> no-argument callable), called in turn
    round after round (a, b, a, b, ...) so that a slow moment of a shared machine falls on
    both; ``warmup`` rounds first, not kept."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup + rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def batches_for_timing(prepare: Any, items: list) -> dict[int, dict[str, np.ndarray]]:
    """Prepared inputs at batch 1 (the first item) and :data:`LARGE_BATCH` (the first items,
    repeated when there are fewer)."""
    large = [items[i % len(items)] for i in range(LARGE_BATCH)]
    return {1: prepare(items[:1]), LARGE_BATCH: prepare(large)}


def measure(fp32: Path, int8: Path, modality: str, feeds: dict[int, dict[str, np.ndarray]],
            *, threads: int | None = None) -> dict[int, dict[str, float]]:
    """Median ms per run of each graph at each batch size of ``feeds``, timed in turn
    (:func:`paired_times`, :data:`ROUNDS`)."""
    from graftlab.features.onnx_backend import cpu_session

    sessions = {name: cpu_session(path, threads=threads, modality=modality)
                for name, path in (("fp32", fp32), ("int8", int8))}
    out = {}
    for batch, feed in feeds.items():
        runs = {name: (lambda s=s, f=feed: s.run(None, f)) for name, s in sessions.items()}
        times = paired_times(runs, ROUNDS.get(batch, 5))
        out[batch] = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    return out


def decide(measured: Agreement, timings: dict[int, dict[str, float]]) -> tuple[str, str]:
    """``auto``'s choice, "int8" or "fp32", and why: int8 only when it agrees with fp32 on at
    least the threshold and is faster at every batch size timed."""
    if measured.agreement < measured.threshold:
        return "fp32", (f"int8 predicts the fp32 class on only {measured.agreement:.1%} of "
                        f"{measured.samples} inputs (at least {measured.threshold:.0%} "
                        "needed)")
    shown = ", ".join(f"batch {b}: int8 {t['int8']:.2f} ms vs fp32 {t['fp32']:.2f} ms"
                      for b, t in timings.items())
    slower = [b for b, t in timings.items() if t["int8"] >= t["fp32"]]
    if slower:
        which = " and ".join(f"batch {b}" for b in slower)
        return "fp32", f"int8 is not faster on this CPU at {which} ({shown})"
    return "int8", (f"int8 is faster on this CPU ({shown}) and agrees with fp32 on "
                    f"{measured.agreement:.1%} of {measured.samples} inputs")


@dataclass(frozen=True)
class Int8Data:
    """What quantisation reads: ``calibration`` inputs (images; None for text) and where they
    came from, and the ``check`` inputs the int8 graph is compared (and timed) on."""

    calibration: list | None
    calibration_from: str | None
    check: list
    check_from: str


def apply(folder: Path, fp32: Any, data: Int8Data, mode: str, min_agreement: float) -> dict:
    """Quantise ``folder``'s fp32 ``model.onnx`` (loaded as the Predictor ``fp32``), check it,
    and with ``auto`` time both: model.onnx is replaced by the int8 graph when it is kept.
    Returns the contract's new entries: ``quantize`` (what was asked, kept and why, what was
    measured) and, when int8 was kept, ``quantized`` (its scheme and calibration)."""
    import copy
    import os
    import shutil

    from graftlab.deploy import inputs

    engine, modality = fp32._engine, fp32.modality
    work = folder / ".int8"
    work.mkdir()
    try:
        decode = inputs.texts if modality == "text" else inputs.images
        batches = (calibration_batches(engine.prepare, decode(data.calibration))
                   if modality == "image" else None)
        try:
            quantize_graph(folder / "model.onnx", work / "model.onnx", modality, batches)
        except QuantizeError as exc:
            if mode == "int8":
                raise
            return {"quantize": {"asked": mode, "kept": "fp32",
                                 "reason": str(exc).split("\n")[0]}}
        int8 = copy.copy(fp32)
        int8._engine = engine.with_graph(work / "model.onnx")
        measured = agreement(fp32.outputs(data.check), int8.outputs(data.check),
                             data.check_from, min_agreement)
        record: dict[str, Any] = {"asked": mode, "check": measured.record()}
        caveat = check_caveat(data)
        if caveat:
            record["check"]["caveat"] = caveat
            log.warning("int8 was %s", caveat)
        if mode == "int8":
            if measured.agreement < measured.threshold:
                raise refuse(measured, modality)
            kept, why = "int8", "asked for (--quantize int8)"
        else:
            timings = measure(folder / "model.onnx", work / "model.onnx", modality,
                              batches_for_timing(engine.prepare, decode(data.check))
                              ) if measured.agreement >= measured.threshold else {}
            kept, why = decide(measured, timings)
            record["latency_ms"] = {str(b): t for b, t in timings.items()}
            record["threads"] = f"onnxruntime default ({os.cpu_count()} cores)"
        out = {"quantize": {**record, "kept": kept, "reason": why}}
        if kept == "int8":
            out["quantized"] = {
                "scheme": scheme(modality), "pre_process": "onnxruntime quant_pre_process",
                "calibration": ({"data": data.calibration_from, "samples": len(data.calibration)}
                                if batches else {"data": None, "samples": 0}),
                "fp32_bytes": (folder / "model.onnx").stat().st_size}
            os.replace(work / "model.onnx", folder / "model.onnx")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
