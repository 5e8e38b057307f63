"""Frozen extraction through ONNX Runtime.

The backbone's trunk, up to the deepest layer asked for, is exported to ONNX once (stored
beside the feature cache, keyed by the backbone's cache key and the layers) and run with ONNX
Runtime's fully optimised CPU graph, one thread per run and as many runs in flight as there
are cores — several times faster than eager PyTorch for
EfficientNet's depthwise convolutions, and faster for BERT-style encoders (fused attention).
Every session is checked against eager PyTorch on its first batch. What happens when ONNX
cannot run a backbone (not installed, export fails, the graph will not load, a mismatch above
``tolerance``) is decided in one place, :func:`fall_back`: asked for explicitly
(``backend="onnx"``) it is an :class:`OnnxBackendError`; chosen automatically, extraction goes on
in eager PyTorch with an :class:`OnnxFallbackWarning` (and a log line) saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from graftlab import _atomic
from graftlab.backbones.base import Backbone
from graftlab.errors import GraftlabError

log = logging.getLogger(__name__)


class OnnxBackendError(GraftlabError, RuntimeError):
    """``backend="onnx"`` was asked for, and ONNX Runtime cannot run this backbone."""


class OnnxFallbackWarning(UserWarning):
    """The automatically chosen ONNX backend failed; extraction continues in eager PyTorch
    (the same features, more slowly)."""


class _Problem(RuntimeError):
    """What went wrong in a stage of building or checking a session, in words."""


def fall_back(backbone: str, exc: BaseException, *, explicit: bool) -> None:
    """The one policy for an ONNX failure: raise :class:`OnnxBackendError` when ONNX was asked
    for explicitly; otherwise warn (an :class:`OnnxFallbackWarning` and a WARNING log line) and
    return, and the caller extracts with eager PyTorch."""
    reason = str(exc) if isinstance(exc, _Problem) else f"{type(exc).__name__}: {first_line(exc)}"
    if explicit:
        raise OnnxBackendError(
            f"backend='onnx' was asked for, but ONNX Runtime cannot run backbone {backbone!r}: "
            f"{reason}.",
            hint="use backend='torch' (the same features, slower), or backend='auto', which "
            "falls back to PyTorch with a warning.") from exc
    message = (f"ONNX Runtime cannot run backbone {backbone!r} ({reason}); extracting with "
               "eager PyTorch instead (the same features, slower).")
    log.warning(message)
    warnings.warn(message, OnnxFallbackWarning, stacklevel=2)


class _Trunk(nn.Module):
    """Positional-argument wrapper so the exporter sees plain tensors in and out."""

    def __init__(self, backbone: Backbone, names: list[str], layers: list[str]) -> None:
        super().__init__()
        self.backbone, self.names, self.layers = backbone, names, layers

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.backbone.forward_layers(dict(zip(self.names, tensors, strict=True)),
                                           self.layers)
        return tuple(out[layer] for layer in self.layers)


class OnnxRunner:
    """Runs ``backbone.forward_layers(batch, layers)`` in ONNX Runtime."""

    def __init__(self, backbone: Backbone, layers: Sequence[str], sample: dict[str, torch.Tensor],
                 *, folder: str | Path | None = None, tolerance: float = 1e-4) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise _Problem("onnxruntime is not installed (pip install onnxruntime)") from None

        self.backbone, self.layers, self.tolerance = backbone, list(layers), tolerance
        self.names = list(sample)
        key = json.dumps({"backbone": backbone.cache_key(), "layers": self.layers,
                          "inputs": self.names, "v": 1}, sort_keys=True, default=str)
        folder = Path(folder) if folder else Path(tempfile.gettempdir()) / "graftlab-onnx"
        path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.onnx"
        if not path.exists():
            try:
                self._export(sample, path)
            except Exception as exc:
                raise _Problem(f"exporting its trunk to ONNX failed: {type(exc).__name__}: "
                               f"{first_line(exc)}") from exc
        # One thread per run, several runs at once (the extraction loop keeps
        # ``self.workers`` batches in flight): on small matrices this beats one run spread
        # over all cores, which spends its time synchronising threads.
        self.workers = max(1, torch.get_num_threads())
        try:
            self.session = cpu_session(path, threads=1, modality=backbone.modality)
        except Exception as exc:
            raise _Problem(f"ONNX Runtime cannot load the exported graph {path} "
                           f"({first_line(exc)}); delete it to export it again") from exc
        self.path = path
        self._checked = False

    def _export(self, sample: dict[str, torch.Tensor], path: Path) -> None:
        text = self.backbone.modality == "text"
        export_graph(_Trunk(self.backbone, self.names, self.layers), sample, path,
                     outputs={f"out{i}": {0: "batch", 1: "tokens"} if text else {0: "batch"}
                              for i in range(len(self.layers))}, text=text)

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feeds = {n: batch[n].numpy() for n in self.names}
        outs = self.session.run(None, feeds)
        result = {layer: torch.from_numpy(np.asarray(o)) for layer, o in zip(self.layers, outs,
                                                                              strict=True)}
        if not self._checked:
            self._verify(batch, result)
        return result

    def _verify(self, batch: dict[str, torch.Tensor], result: dict[str, torch.Tensor]) -> None:
        with torch.inference_mode():
            eager = self.backbone.forward_layers(batch, self.layers)
        for layer in self.layers:
            scale = max(1.0, float(eager[layer].abs().max()))
            diff = float((eager[layer] - result[layer]).abs().max()) / scale
            if diff > self.tolerance:
                raise _Problem(f"its output at layer {layer!r} differs from eager PyTorch by "
                               f"{diff:.2e} (relative; the tolerance is {self.tolerance:.0e})")
        self._checked = True


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (at most 300 characters): the exporter's errors
    name the failing operator there, above a long trace."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def export_graph(module: nn.Module, sample: dict[str, torch.Tensor], path: Path, *,
                 outputs: dict[str, dict[int, str]], text: bool) -> None:
    """Export ``module(*sample.values())`` to ONNX at ``path`` (written atomically) with the
    TorchScript exporter at opset 17: inputs named as ``sample``'s keys, the batch axis dynamic
    (and, for ``text``, the token axis of 2-D inputs); ``outputs`` names each output and its
    dynamic axes. Used for the extraction trunks here and for exported models
    (``graftlab.deploy.export``)."""
    dynamic = {name: {0: "batch", 1: "tokens"} if text and tensor.ndim == 2 else {0: "batch"}
               for name, tensor in sample.items()}
    tmp = path.with_suffix(".tmp.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), tuple(sample.values()), str(tmp),
                              input_names=list(sample), output_names=list(outputs),
                              dynamic_axes={**dynamic, **outputs}, opset_version=17,
                              dynamo=False)
        _atomic.write_bytes(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)


def cpu_session(path: str | Path, *, threads: int | None, modality: str, spin: bool = True):
    """An ONNX Runtime CPU session on ``path`` with every graph optimisation: ``threads`` per
    run (None: ONNX Runtime's default, all cores), quiet logs. ``spin=False``: idle worker
    threads sleep instead of spinning for the next run (ONNX Runtime's default spins), for a
    caller whose runs are spaced out by other work (a server)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The memory arena keeps each worker's high-water mark of activations for the session's
    # life. Images (one shape) peak lower without it (EfficientNet-Lite0 at 224 px, budgeted
    # batches: ~50 MiB less; fixed batches of 32: ~200 MiB); text (a new shape per batch)
    # peaks ~350 MiB higher without it, as malloc fragments (BENCHMARKS.md, "Extraction
    # memory"). Speed was the same within this machine's noise either way.
    options.enable_cpu_mem_arena = modality == "text"
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
