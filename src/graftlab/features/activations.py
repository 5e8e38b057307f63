"""Cached unpooled activations: a layer's output for every sample, to train the blocks above a
frozen prefix from (images ``(N, C, H, W)``; text ``(N, T, D)`` with its attention mask, stored
unpadded). Same cache and chunk loop as :mod:`graftlab.features.extract`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from graftlab.backbones import Backbone
from graftlab.backbones.base import resolve_layers
from graftlab.backbones.registry import Description, layer_key
from graftlab.data.domain import Domain
from graftlab.features.cache import FeatureCache
from graftlab.features.extract import (Progress, Reduce, _check_backend, _check_batch_size,
                                       _describe, _extract, _store, as_domain)


def extract_activations(backbone: str | Backbone, domain: Domain | np.ndarray | Sequence[str],
                        layer: str, *, cache: bool = True, cache_dir: str | None = None,
                        batch_size: int | None = None, chunk_size: int = 4096,
                        progress: Progress | None = None, backbone_options: dict | None = None,
                        backend: str = "auto") -> dict[str, torch.Tensor]:
    """The unpooled output of ``layer`` for every sample, as a batch to resume the backbone
    from (``backbone.forward_from(layer, out["acts"], ..., attention_mask=...)``).

    Images: ``{"acts": (N, C, H, W)}``. Text: ``{"acts": (N, T, D), "attention_mask": (N, T)}``,
    float32 padded (right, with zeros) to the longest text after truncation, the mask ``long``.
    Cached like :func:`extract_layers` (content-addressed, resumable, a split served from its
    whole data set, a hit never builds the model); text is stored unpadded, one row per token.
    The backbone's train/eval modes are left as they were.
    """
    _check_backend(backend)
    options = backbone_options or {}
    desc, model = _describe(backbone, options)
    domain = as_domain(domain, desc.modality)
    (layer,) = resolve_layers(desc.key.get("name", "backbone"), desc.layers, [layer])
    _check_batch_size(batch_size)
    values, lengths = _activations(backbone, model, options, desc, domain, layer,
                                   _store(cache, cache_dir), batch_size=batch_size,
                                   chunk_size=chunk_size, progress=progress, backend=backend)
    if lengths is None:
        return {"acts": _tensor(values)}
    mask = torch.arange(int(lengths.max()))[None, :] < torch.from_numpy(lengths)[:, None]
    acts = torch.zeros(*mask.shape, values.shape[-1])
    acts[mask] = _tensor(values)
    return {"acts": acts, "attention_mask": mask.long()}


def activation_batch(acts: dict[str, torch.Tensor], index: np.ndarray | torch.Tensor
                     ) -> dict[str, torch.Tensor]:
    """The samples at ``index`` of :func:`extract_activations`'s output, as a batch. Text is
    cut to the batch's longest text: the columns past it are padding in every row, so dropping
    them changes no output, saves their compute, and gives the batch the shape a batch of the
    raw texts has (so dropout draws the same masks)."""
    out = {key: value[index] for key, value in acts.items()}
    mask = out.get("attention_mask")
    if mask is not None and len(mask):
        width = int(mask.sum(1).max())  # padding is on the right
        out = {key: value[:, :width] for key, value in out.items()}
    return out


def _tensor(values: np.ndarray) -> torch.Tensor:
    """A float32 tensor of its own (a memory-mapped cache file is read-only: copied)."""
    if values.dtype != np.float32 or not values.flags.writeable:
        values = np.array(values, dtype=np.float32)
    return torch.from_numpy(values)


def _activations(backbone: str | Backbone, model: Backbone | None, options: dict,
                 desc: Description, domain: Domain, layer: str, store: FeatureCache | None,
                 **run: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values, lengths)``: image maps ``(N, C, H, W)`` and None, or text tokens ``(R, D)``
    (sample i's rows follow sample i-1's) and their counts ``(N,)``."""
    ragged = desc.modality == "text"

    def entry_for(d: Domain):
        key = {"backbone": layer_key(desc, model, layer), "layer": layer,
               "activations": "unpooled",
               "data": d.fingerprint(), "n": len(d)}
        return store.ragged_entry(key) if ragged else store.entry(key)

    if store and domain.origin is not None:
        root, rows = domain.origin
        if 2 * len(domain) >= len(root) or entry_for(root).complete:  # as in extract_layers
            whole = _activations(backbone, model, options, desc, root, layer, store, **run)
            return _take(*whole, rows)

    def unpooled(_model: Backbone) -> Reduce:
        return _tokens if ragged else (lambda x, _batch: x.float().numpy())

    entries = {layer: entry_for(domain)} if store else {}
    out = _extract(backbone, model, options, domain, entries, [layer], unpooled, ragged,
                   info={"pooling": "none"}, **run)[layer]
    return out if ragged else (out, None)


def _tokens(x: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """Each text's token states without its padding (no mask: every token is real)."""
    x = x.float().numpy()
    mask = batch.get("attention_mask")
    if mask is None:
        return list(x)
    return [sample[keep] for sample, keep in zip(x, mask.numpy().astype(bool), strict=True)]


def _take(values: np.ndarray, lengths: np.ndarray | None, rows: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray | None]:
    """The samples at ``rows`` of stored activations (ragged: gathering their token rows)."""
    if lengths is None:
        return np.asarray(values[rows]), None
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[rows]
    counts = lengths[rows]
    # Each selected sample's rows: its start, then consecutive rows up to its count.
    first = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.asarray(values[first + np.arange(int(counts.sum()))]), counts
