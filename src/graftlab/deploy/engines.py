"""What runs a model for :class:`~graftlab.deploy.predictor.Predictor`: eager PyTorch on a saved
model (the backbone's own preprocessing), or ONNX Runtime on an exported one (the same
preprocessing, rebuilt from ``contract.json``). Both take decoded inputs (texts, or RGB uint8
images of any size) and return the graph's outputs as float32 (B, K)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from graftlab.backbones.base import Backbone, image_batch

# what a graph outputs: a Grafter's logits, an average's probabilities, a regressor's values
# standardised (times the target's std, plus its mean, on the original scale); a tagger's logits
# per token (B, T, C); a multi-task model's tasks' outputs side by side
LOGITS, PROBABILITIES, STANDARDISED = "logits", "probabilities", "standardised"
TOKEN_LOGITS, TASK_OUTPUTS = "token_logits", "task_outputs"


class ModelGraph(nn.Module):
    """What ``predict_proba`` runs, as one module of plain tensors (what export traces): a
    model's outputs, or for several models (an average) the mean of their softmax
    probabilities. ``names``: the batch's tensors, in the order ``forward`` takes them."""

    def __init__(self, models: Sequence[nn.Module], names: Sequence[str]) -> None:
        super().__init__()
        self.models, self.names = nn.ModuleList(models).eval(), list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(self.names, tensors, strict=True))
        if len(self.models) == 1:
            return self.models[0](batch)
        return torch.stack([m(batch).softmax(-1) for m in self.models]).mean(0)


class TorchEngine:
    """Saved models in eager PyTorch: ``backbone.preprocess`` (each image resized from its own
    size, as the Grafter does for one image), then :class:`ModelGraph`."""

    def __init__(self, models: Sequence[nn.Module], backbone: Backbone) -> None:
        self.backbone = backbone
        self.graph = ModelGraph(models, list(backbone.probe_batch()))

    def prepare(self, items: list) -> dict[str, torch.Tensor]:
        if self.backbone.modality == "text":
            return self.backbone.preprocess(items)
        return {"pixel_values": torch.cat([self.backbone.preprocess(group)["pixel_values"]
                                           for group in same_size_runs(items)])}

    @torch.inference_mode()
    def run(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        return self.graph(*(batch[n] for n in self.graph.names)).float().numpy()


class OnnxEngine:
    """An exported folder in ONNX Runtime: the preprocessing its ``contract.json`` states
    (:func:`~graftlab.backbones.base.image_batch`, or the saved tokenizer through
    :func:`~graftlab.backbones.hf_text.tokenize`), then ``model.onnx``."""

    def __init__(self, folder: Path, contract: dict, *, threads: int | None = None) -> None:
        from graftlab.features.onnx_backend import cpu_session

        self.spec = contract["inputs"]  # the backbone's input contract
        self.inputs, self.modality = self.spec["inputs"], self.spec["modality"]
        self.tokenizer = None
        if self.modality == "text":
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer",
                                                           local_files_only=True)
        # No spinning: between runs a Predictor decodes, tokenises or answers requests, and
        # ONNX Runtime's spinning threads took that CPU (graftlab serve on 2 shared cores spent
        # several times the CPU per request with spinning on).
        self.session = cpu_session(folder / "model.onnx", threads=threads,
                                   modality=self.modality, spin=False)

    def with_graph(self, path: Path, *, threads: int | None = None) -> OnnxEngine:
        """This engine (the same preprocessing) running another graph of the same inputs and
        outputs: the int8 variant an export checks against this one."""
        from graftlab.features.onnx_backend import cpu_session

        other = copy.copy(self)
        other.session = cpu_session(path, threads=threads, modality=self.modality)
        return other

    def prepare(self, items: list) -> dict[str, np.ndarray]:
        if self.modality == "text":
            from graftlab.backbones.hf_text import tokenize

            encoded = tokenize(self.tokenizer, items, int(self.spec["max_length"]),
                               tensors="np")
            return {name: np.asarray(encoded[name], dtype=np.int64) for name in self.inputs}
        size, mean, std = int(self.spec["image_size"]), self.spec["mean"], self.spec["std"]
        return {"pixel_values": torch.cat([image_batch(group, size, mean, std)
                                           for group in same_size_runs(items)]).numpy()}

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(None, {n: batch[n] for n in self.inputs})[0],
                          dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, float32, stable for large logits."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return (shifted / shifted.sum(-1, keepdims=True)).astype(np.float32)


def same_size_runs(images: list[np.ndarray]) -> list[np.ndarray]:
    """Consecutive images of one size stacked into (n, H, W, 3) arrays, in order: each run is
    preprocessed in one call (an image's result does not depend on the others in its batch)."""
    runs: list[list[np.ndarray]] = []
    for img in images:
        if runs and runs[-1][0].shape == img.shape:
            runs[-1].append(img)
        else:
            runs.append([img])
    return [np.stack(run) for run in runs]
