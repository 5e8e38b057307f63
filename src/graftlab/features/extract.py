"""Feature extraction: pooled features from any named layers, through the on-disk cache.

The loop is chunked: each chunk of ``chunk_size`` samples is prepared once (text: tokenised
once), extracted (text sorted by length inside the chunk, so a batch pads to similar lengths
and wastes no compute) and saved atomically before the next begins. Peak memory is one chunk,
not the data set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from graftlab.backbones import Backbone, create_backbone
from graftlab.backbones.base import Prepared, resolve_layers, resolve_pooling
from graftlab.backbones.registry import Description, describe_backbone
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.features.cache import FeatureCache
from graftlab.features.runtime import fast_allocator
from graftlab.paths import onnx_dir

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
BACKENDS = ("auto", "torch", "onnx")
ONNX_MIN_SAMPLES = 256  # below this, exporting costs more than it saves


class _Forward:
    """``forward_layers`` through ONNX Runtime when asked (built on the first batch, checked
    against eager there), else eager PyTorch. Falls back to eager on any export problem."""

    def __init__(self, model: Backbone, layers: list[str], use_onnx: bool, folder) -> None:
        self.model, self.layers, self.use_onnx, self.folder = model, layers, use_onnx, folder
        self.runner = None
        self.backend = "onnx" if use_onnx else "torch"

    @property
    def ready(self) -> bool:
        """Built (or not needed): batches can go to the worker threads."""
        return not self.use_onnx or self.runner is not None

    @property
    def workers(self) -> int:
        return self.runner.workers if self.use_onnx and self.runner is not None else 1

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.use_onnx:
            try:
                if self.runner is None:
                    from graftlab.features.onnx_backend import OnnxRunner

                    self.runner = OnnxRunner(self.model, self.layers, batch, folder=self.folder)
                return self.runner(batch)
            except Exception as exc:  # export/runtime/parity problems: eager still works
                log.warning("ONNX Runtime backend unavailable for %s (%s); using PyTorch",
                            self.model.name, exc)
                self.use_onnx, self.backend = False, "torch"
        return self.model.forward_layers(batch, self.layers)


def as_domain(data: Domain | np.ndarray | Sequence[str], modality: str) -> Domain:
    """Accept a Domain, an image array or a list of texts."""
    domain = data if isinstance(data, Domain) else Domain("inputs", modality, data)
    if domain.modality != modality:
        raise DataError(
            f"data {domain.name!r} is {domain.modality} but the backbone takes {modality}.",
            hint="pick a backbone of the data's modality (`graftlab backbones`).",
        )
    return domain


def _batches(prepared: Prepared, batch_size: int) -> list[np.ndarray]:
    """Position batches; text is ordered by token count first, so a batch pads almost nothing."""
    order = np.arange(len(prepared))
    if prepared.lengths is not None:
        order = np.argsort(-prepared.lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _run_chunk(backbone: Backbone, forward: _Forward, domain: Domain, index: np.ndarray,
               layers: list[str], pooling: str, batch_size: int, tick: Progress | None
               ) -> dict[str, np.ndarray]:
    """Features of ``index`` (consecutive rows), prepared (text: tokenised) once; with ONNX
    Runtime, several batches are in flight at once (the graph and pooling release the GIL)."""
    out: dict[str, np.ndarray] = {}
    start = int(index[0])
    prepared = backbone.prepare(domain.inputs[start:int(index[-1]) + 1])  # a view or a list

    @torch.inference_mode()
    def job(pos: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        batch = prepared.batch(pos)
        acts = forward(batch)
        return pos, {layer: backbone.pool(acts[layer], pooling, batch).float().numpy()
                     for layer in layers}

    def store(pos: np.ndarray, pooled: dict[str, np.ndarray]) -> None:
        for layer, values in pooled.items():
            if layer not in out:
                out[layer] = np.empty((len(index), values.shape[1]), dtype=np.float32)
            out[layer][pos] = values
        if tick:
            tick(len(pos), 0)

    batches = _batches(prepared, batch_size)
    if not forward.ready:  # the first batch builds (and checks) the ONNX session
        store(*job(batches.pop(0)))
    workers = forward.workers
    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(workers) as pool:
            for pos, pooled in pool.map(job, batches):
                store(pos, pooled)
    else:
        for pos in batches:
            store(*job(pos))
    return out


def extract_layers(backbone: str | Backbone, data: Domain | np.ndarray | Sequence[str], *,
                   layers: Sequence[str] | None = None, pooling: str | None = None,
                   batch_size: int | None = None, cache: bool = True,
                   cache_dir: str | None = None, chunk_size: int = 4096,
                   progress: Progress | None = None, backbone_options: dict | None = None,
                   backend: str = "auto") -> dict[str, np.ndarray]:
    """Pooled features ``(N, D)`` of each of ``layers`` (default: the last layer).

    Cached results come back memory-mapped and cost no forward pass; a partly extracted entry
    resumes from its last saved chunk. ``progress(done, total)`` is called as samples finish.
    ``backend``: ``"onnx"`` runs the frozen trunk in ONNX Runtime (checked against eager on the
    first batch), ``"torch"`` runs eager PyTorch, ``"auto"`` picks ONNX from
    ``ONNX_MIN_SAMPLES`` samples on.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}.")
    options = backbone_options or {}
    if isinstance(backbone, Backbone) and options:
        create_backbone(backbone, **options)  # raises: options cannot change a built backbone
    # A registered backbone describes its cache key and layers without loading weights, so a
    # cache hit never builds the model; anything else is built now.
    desc = describe_backbone(backbone, **options) if isinstance(backbone, str | Backbone) else None
    model = backbone if isinstance(backbone, Backbone) else None
    if desc is None:
        model = create_backbone(backbone, **options)
        desc = Description.of(model)
    name = desc.key.get("name", "backbone")
    domain = as_domain(data, desc.modality)
    layer_list = resolve_layers(name, desc.layers, list(layers) if layers is not None else None)
    pooling = resolve_pooling(desc.modality, pooling, desc.default_pooling)
    batch_size = batch_size or (64 if desc.modality == "image" else 32)
    n = len(domain)
    spans = [(a, min(n, a + chunk_size)) for a in range(0, n, chunk_size)]
    store = FeatureCache(cache_dir) if cache else None
    if store:
        store.check_writable()

    def entries_for(d: Domain) -> dict:
        fingerprint = d.fingerprint()
        return {layer: store.entry({"backbone": desc.key, "layer": layer, "pooling": pooling,
                                    "data": fingerprint, "n": len(d)})
                for layer in layer_list}

    if store and domain.origin is not None:
        root, rows = domain.origin
        # A split that is most of its data set (or whose data set is cached already) is served
        # from one extraction of the whole: every other split, strategy and seed then hits.
        if 2 * n >= len(root) or all(e.complete for e in entries_for(root).values()):
            whole = extract_layers(backbone, root, layers=layer_list, pooling=pooling,
                                   batch_size=batch_size, cache_dir=cache_dir,
                                   chunk_size=chunk_size, progress=progress,
                                   backbone_options=backbone_options, backend=backend)
            return {layer: np.asarray(whole[layer][rows]) for layer in layer_list}
    entries = entries_for(domain) if store else {}

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

    model = (model if model is not None else create_backbone(backbone, **options)).eval()
    use_onnx = backend == "onnx" or (backend == "auto" and n >= ONNX_MIN_SAMPLES)
    forward = _Forward(model, todo, use_onnx, onnx_dir())
    done = 0
    memory: dict[str, list[np.ndarray]] = {layer: [] for layer in todo}

    def tick(k: int, _: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress(done, n)

    with fast_allocator():
        for start, stop in spans:
            index = np.arange(start, stop)
            saved = {layer: entries[layer].load_chunk(start, stop)
                     for layer in todo} if store else {}
            if store and all(chunk is not None for chunk in saved.values()):
                tick(len(index), 0)
                continue
            chunk = _run_chunk(model, forward, domain, index, todo, pooling, batch_size, tick)
            for layer in todo:
                if store:
                    entries[layer].save_chunk(start, stop, chunk[layer])
                else:
                    memory[layer].append(chunk[layer])
    for layer in todo:
        if store:
            info = {"backbone": model.name, "layer": layer, "pooling": pooling,
                    "data": domain.name, "modality": model.modality,
                    "backend": forward.backend}
            results[layer] = entries[layer].finalize(spans, info)
        else:
            results[layer] = np.concatenate(memory[layer])
    log.info("extracted %s x %d samples with %s (%s)", todo, n, model.name, forward.backend)
    return {layer: results[layer] for layer in layer_list}


def extract_features(backbone: str | Backbone, data: Domain | np.ndarray | Sequence[str], *,
                     layer: str | None = None, **options: Any) -> np.ndarray:
    """Pooled features ``(N, D)`` of one layer (default: the backbone's last)."""
    result = extract_layers(backbone, data, layers=None if layer is None else [layer], **options)
    return next(iter(result.values()))
