"""Feature extraction: pooled features from any named layers, through the on-disk cache.

The loop is chunked: each chunk of ``chunk_size`` samples is extracted (text sorted by length
inside the chunk, so a batch pads to similar lengths and wastes no compute) and saved
atomically before the next begins. Peak memory is one chunk, not the data set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from graftlab.backbones import Backbone, create_backbone
from graftlab.data.domain import Domain
from graftlab.errors import DataError
from graftlab.features.cache import FeatureCache
from graftlab.features.runtime import fast_allocator

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


def as_domain(data: Domain | np.ndarray | Sequence[str], modality: str) -> Domain:
    """Accept a Domain, an image array or a list of texts."""
    if isinstance(data, Domain):
        domain = data
    else:
        try:
            domain = Domain(name="inputs", modality=modality, inputs=data)
        except DataError:
            raise
    if domain.modality != modality:
        raise DataError(
            f"data {domain.name!r} is {domain.modality} but the backbone takes {modality}.",
            hint="pick a backbone of the data's modality (`graftlab backbones`).",
        )
    return domain


def _batches(domain: Domain, index: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index batches; text is ordered by length first so padding is minimal."""
    if domain.modality == "text":
        lengths = np.fromiter((len(domain.inputs[i]) for i in index), dtype=np.int64,
                              count=len(index))
        index = index[np.argsort(-lengths, kind="stable")]
    return [index[i:i + batch_size] for i in range(0, len(index), batch_size)]


def _take(domain: Domain, idx: np.ndarray) -> Any:
    return domain.inputs[idx] if domain.modality == "image" else [domain.inputs[i] for i in idx]


@torch.inference_mode()
def _run_chunk(backbone: Backbone, domain: Domain, index: np.ndarray, layers: list[str],
               pooling: str, batch_size: int, tick: Progress | None) -> dict[str, np.ndarray]:
    out = {layer: None for layer in layers}
    start = int(index[0])
    for idx in _batches(domain, index, batch_size):
        batch = backbone.preprocess(_take(domain, idx))
        acts = backbone.forward_layers(batch, layers)
        for layer in layers:
            pooled = backbone.pool(acts[layer], pooling, batch).float().numpy()
            if out[layer] is None:
                out[layer] = np.empty((len(index), pooled.shape[1]), dtype=np.float32)
            out[layer][idx - start] = pooled
        if tick:
            tick(len(idx), 0)
    return out


def extract_layers(backbone: str | Backbone, data: Domain | np.ndarray | Sequence[str], *,
                   layers: Sequence[str] | None = None, pooling: str | None = None,
                   batch_size: int | None = None, cache: bool = True,
                   cache_dir: str | None = None, chunk_size: int = 2048,
                   progress: Progress | None = None, backbone_options: dict | None = None
                   ) -> dict[str, np.ndarray]:
    """Pooled features ``(N, D)`` of each of ``layers`` (default: the last layer).

    Cached results come back memory-mapped and cost no forward pass; a partly extracted entry
    resumes from its last saved chunk. ``progress(done, total)`` is called as samples finish.
    """
    model = create_backbone(backbone, **(backbone_options or {}))
    model.eval()
    domain = as_domain(data, model.modality)
    layer_list = model.check_layers(list(layers) if layers is not None else None)
    pooling = model.check_pooling(pooling)
    batch_size = batch_size or (64 if model.modality == "image" else 32)
    n = len(domain)
    n_chunks = math.ceil(n / chunk_size)
    store = FeatureCache(cache_dir) if cache else None
    if store:
        store.check_writable()
    fingerprint = domain.fingerprint()
    entries = {
        layer: store.entry({"backbone": model.cache_key(), "layer": layer, "pooling": pooling,
                            "data": fingerprint, "n": n})
        for layer in layer_list
    } if store else {}

    results: dict[str, np.ndarray] = {}
    for layer, entry in entries.items():
        cached = entry.load()
        if cached is not None:
            results[layer] = cached
    todo = [layer for layer in layer_list if layer not in results]
    if not todo:
        if progress:
            progress(n, n)
        return {layer: results[layer] for layer in layer_list}

    done = 0
    memory: dict[str, list[np.ndarray]] = {layer: [] for layer in todo}

    def tick(k: int, _: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress(done, n)

    with fast_allocator():
        for c in range(n_chunks):
            index = np.arange(c * chunk_size, min(n, (c + 1) * chunk_size))
            saved = {layer: entries[layer].load_chunk(c, len(index), None)
                     for layer in todo} if store else {}
            if store and all(chunk is not None for chunk in saved.values()):
                tick(len(index), 0)
                continue
            chunk = _run_chunk(model, domain, index, todo, pooling, batch_size, tick)
            for layer in todo:
                if store:
                    entries[layer].save_chunk(c, chunk[layer])
                else:
                    memory[layer].append(chunk[layer])
    for layer in todo:
        if store:
            info = {"backbone": model.name, "layer": layer, "pooling": pooling,
                    "data": domain.name, "modality": model.modality}
            results[layer] = entries[layer].finalize(n_chunks, info)
        else:
            results[layer] = np.concatenate(memory[layer])
    log.info("extracted %s x %d samples with %s", todo, n, model.name)
    return {layer: results[layer] for layer in layer_list}


def extract_features(backbone: str | Backbone, data: Domain | np.ndarray | Sequence[str], *,
                     layer: str | None = None, **options: Any) -> np.ndarray:
    """Pooled features ``(N, D)`` of one layer (default: the backbone's last)."""
    model = create_backbone(backbone, **options.pop("backbone_options", None) or {})
    (layer,) = model.check_layers(layer)
    return extract_layers(model, data, layers=[layer], **options)[layer]
