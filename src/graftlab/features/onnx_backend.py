"""Frozen extraction through ONNX Runtime.

The backbone's trunk, up to the deepest layer asked for, is exported to ONNX once (stored
beside the feature cache, keyed by the backbone's cache key and the layers) and run with ONNX
Runtime's fully optimised CPU graph, one thread per run and as many runs in flight as there
are cores — several times faster than eager PyTorch for
EfficientNet's depthwise convolutions, and faster for BERT-style encoders (fused attention).
Every session is checked against eager PyTorch on its first batch; a mismatch above
``tolerance`` or any export failure falls back to eager, with a log line saying why.
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

log = logging.getLogger(__name__)


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
        import onnxruntime as ort

        self.backbone, self.layers, self.tolerance = backbone, list(layers), tolerance
        self.names = list(sample)
        key = json.dumps({"backbone": backbone.cache_key(), "layers": self.layers,
                          "inputs": self.names, "v": 1}, sort_keys=True, default=str)
        folder = Path(folder) if folder else Path(tempfile.gettempdir()) / "graftlab-onnx"
        path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.onnx"
        if not path.exists():
            self._export(sample, path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread per run, several runs at once (the extraction loop keeps
        # ``self.workers`` batches in flight): on small matrices this beats one run spread
        # over all cores, which spends its time synchronising threads.
        self.workers = max(1, torch.get_num_threads())
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.path = path
        self._checked = False

    def _export(self, sample: dict[str, torch.Tensor], path: Path) -> None:
        dynamic = {}
        for name, tensor in sample.items():
            dynamic[name] = {0: "batch", 1: "tokens"} if self.backbone.modality == "text" and \
                tensor.ndim == 2 else {0: "batch"}
        for i, layer in enumerate(self.layers):
            dynamic[f"out{i}"] = {0: "batch", 1: "tokens"} if self.backbone.modality == "text" \
                else {0: "batch"}
        tmp = path.with_suffix(".tmp.onnx")
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Trunk(self.backbone, self.names, self.layers).eval(),
                tuple(sample[n] for n in self.names), str(tmp), input_names=self.names,
                output_names=[f"out{i}" for i in range(len(self.layers))],
                dynamic_axes=dynamic, opset_version=17, dynamo=False,
            )
        _atomic.write_bytes(path, tmp.read_bytes())
        tmp.unlink(missing_ok=True)

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
                raise RuntimeError(f"ONNX output of {layer} differs from eager by {diff:.2e}")
        self._checked = True
