"""Feature extraction through the on-disk cache: pooled features of any named layers
(:func:`extract_layers`), or a layer's unpooled activations (:func:`extract_activations`, what
fine-tuning the blocks above a frozen prefix trains from).

The loop is chunked: each chunk of ``chunk_size`` samples is prepared once (text: tokenised
once), extracted (text sorted by length inside the chunk, so a batch pads to similar lengths and
wastes no compute) and saved atomically before the next begins. Peak memory is one chunk, not
the data set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from graftlab.backbones import Backbone, create_backbone
from graftlab.backbones.base import Prepared, resolve_layers, resolve_pooling
from graftlab.backbones.registry import Description, describe_backbone, layer_key
from graftlab.data.arrays import in_memory
from graftlab.data.domain import Domain
from graftlab.errors import ConfigError, DataError
from graftlab.features.budget import MAX_BATCH, BatchPlan, activation_bytes, memory_budget, plan
from graftlab.features.cache import FeatureCache
from graftlab.features.runtime import fast_allocator
from graftlab.paths import onnx_dir

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
BACKENDS = ("auto", "torch", "onnx")
ONNX_MIN_SAMPLES = 256  # below this, exporting costs more than it saves


class _Forward:
    """``forward_layers`` through ONNX Runtime when asked (built on the first batch, checked
    against eager there), else eager PyTorch. Falls back to eager on any export problem.
    Eager runs the backbone's inference copy (:meth:`Backbone.for_inference`), made when first
    needed; ONNX exports, and checks against, the backbone itself."""

    def __init__(self, model: Backbone, layers: list[str], use_onnx: bool, folder,
                 explicit: bool = False) -> None:
        self.model, self.layers, self.use_onnx, self.folder = model, layers, use_onnx, folder
        self.explicit = explicit
        self.runner = None
        self.eager: Backbone | None = None
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
                from graftlab.features.onnx_backend import fall_back

                fall_back(self.model.name, exc, explicit=self.explicit)  # raises if explicit
                self.use_onnx, self.backend = False, "torch"
        return self.backbone.forward_layers(batch, self.layers)

    @property
    def backbone(self) -> Backbone:
        """The model that preprocesses and runs batches: for eager, the inference copy."""
        if self.use_onnx:
            return self.model
        if self.eager is None:
            self.eager = self.model.for_inference()
        return self.eager


def as_domain(data: Domain | np.ndarray | Sequence[str], modality: str) -> Domain:
    """Accept a Domain, an image array or a list of texts."""
    domain = data if isinstance(data, Domain) else in_memory(data, modality)
    if domain.modality != modality:
        raise DataError(
            f"data {domain.name!r} is {domain.modality} but the backbone takes {modality}.",
            hint="pick a backbone of the data's modality (`graftlab backbones`).",
        )
    return domain


def _describe(backbone: str | Backbone, options: dict) -> tuple[Description, Backbone | None]:
    """The backbone's description, and the model if it had to be built for it."""
    if isinstance(backbone, Backbone) and options:
        create_backbone(backbone, **options)  # raises: options cannot change a built backbone
    # A registered backbone describes its cache key and layers without loading weights, so a
    # cache hit never builds the model; anything else is built now.
    desc = describe_backbone(backbone, **options) if isinstance(backbone, str | Backbone) else None
    model = backbone if isinstance(backbone, Backbone) else None
    if desc is None:
        model = create_backbone(backbone, **options)
        desc = Description.of(model)
    return desc, model


def _order(prepared: Prepared) -> np.ndarray:
    """Positions to batch in: text longest first (a batch pads almost nothing)."""
    if prepared.lengths is not None:
        return np.argsort(-prepared.lengths, kind="stable")
    return np.arange(len(prepared))


class _Sizer:
    """The batch plan of each chunk (:mod:`graftlab.features.budget`): activation memory
    estimated from one sample (the chunk's longest text) once per input shape, so the
    batches in flight fit the memory budget. ``batch_size`` given: that size, and only the
    number of ONNX batches in flight is fitted to the budget."""

    def __init__(self, model: Backbone, layers: list[str], forward: _Forward,
                 batch_size: int | None, budget: int) -> None:
        self.model, self.layers, self.forward = model, layers, forward
        self.batch_size, self.budget = batch_size, budget
        self.per_sample: dict[tuple, int] = {}

    def __call__(self, prepared: Prepared, first: np.ndarray) -> BatchPlan:
        workers = max(1, torch.get_num_threads()) if self.forward.use_onnx else 1
        if self.batch_size is not None and workers == 1:
            return BatchPlan(self.batch_size, 1, 0)  # nothing to fit
        sample = prepared.batch(first[:1])
        key = tuple((name, tuple(t.shape)) for name, t in sample.items())
        if key not in self.per_sample:
            self.per_sample[key] = activation_bytes(self.model, sample, self.layers)
        chosen = plan(self.per_sample[key], workers=workers, budget=self.budget,
                      cap=MAX_BATCH.get(self.model.modality, 32), batch_size=self.batch_size)
        log.debug("extraction batches: %s (%.1f MiB of activations per sample, budget %.0f "
                  "MiB)", chosen, chosen.per_sample / 2**20, self.budget / 2**20)
        return chosen


# What one batch's layer output becomes: one array per sample (a pooled vector, a feature map,
# a text's unpadded token states).
Reduce = Callable[[torch.Tensor, dict[str, torch.Tensor]], Sequence[np.ndarray]]


def _run_chunk(forward: _Forward, domain: Domain, start: int, stop: int, layers: list[str],
               reduce: Reduce, ragged: bool, sizer: _Sizer, tick: Progress | None
               ) -> dict[str, Any]:
    """Per layer, the chunk ``start:stop`` as stored: one array with a row per sample, or
    ``(rows, lengths)`` when ``ragged``. With ONNX Runtime, several batches are in flight at
    once (the graph and pooling release the GIL), as many as the memory budget allows."""
    n = stop - start
    prepared = forward.backbone.prepare(domain.inputs[start:stop])  # a view or a short list
    out: dict[str, Any] = {layer: [None] * n if ragged else None for layer in layers}

    @torch.inference_mode()
    def job(pos: np.ndarray) -> tuple[np.ndarray, dict[str, Sequence[np.ndarray]]]:
        batch = prepared.batch(pos)
        acts = forward(batch)
        return pos, {layer: reduce(acts[layer], batch) for layer in layers}

    def store(pos: np.ndarray, reduced: dict[str, Sequence[np.ndarray]]) -> None:
        for layer, values in reduced.items():
            if ragged:
                for p, value in zip(pos, values, strict=True):
                    out[layer][p] = value
                continue
            if out[layer] is None:
                out[layer] = np.empty((n, *values.shape[1:]), dtype=np.float32)
            out[layer][pos] = values
        if tick:
            tick(len(pos), 0)

    order = _order(prepared)
    chosen = sizer(prepared, order)
    batches = [order[i:i + chosen.batch_size] for i in range(0, n, chosen.batch_size)]
    if not forward.ready:  # the first batch builds (and checks) the ONNX session
        store(*job(batches.pop(0)))
    workers = min(forward.workers, chosen.workers)
    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(workers) as pool:
            for pos, reduced in pool.map(job, batches):
                store(pos, reduced)
    else:
        for pos in batches:
            store(*job(pos))
    if ragged:
        for layer, samples in out.items():
            lengths = np.fromiter(map(len, samples), dtype=np.int64, count=n)
            out[layer] = (np.concatenate(samples), lengths)
    return out


def _concat(chunks: list[Any], ragged: bool) -> Any:
    if not ragged:
        return np.concatenate(chunks)
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


@contextmanager
def _eval_mode(model: Backbone):
    """Extract in eval mode (no dropout), then give every module back its own mode."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def _extract(backbone: str | Backbone, model: Backbone | None, options: dict, domain: Domain,
             entries: dict[str, Any], layers: list[str], reducer: Callable[[Backbone], Reduce],
             ragged: bool, *, batch_size: int | None, chunk_size: int,
             progress: Progress | None,
             backend: str, info: dict) -> dict[str, Any]:
    """The chunked loop under both public functions: cached layers load, the others are
    extracted chunk by chunk (saved as they go when ``entries`` is not empty, so an
    interrupted run resumes). The model is built only when something must be extracted;
    ``reducer(model)`` says what each batch's layer output becomes; ``batch_size`` None sizes
    batches from the memory budget (:mod:`graftlab.features.budget`)."""
    budget = memory_budget()  # a bad GRAFTLAB_EXTRACT_MEMORY_MB fails before any work
    n = len(domain)
    results: dict[str, Any] = {}
    for layer, entry in entries.items():
        cached = entry.load()
        if cached is not None:
            results[layer] = cached
    todo = [layer for layer in layers if layer not in results]
    if not todo:
        if progress:
            progress(n, n)
        return results
    spans = [(a, min(n, a + chunk_size)) for a in range(0, n, chunk_size)]
    model = model if model is not None else create_backbone(backbone, **options)
    use_onnx = backend == "onnx" or (backend == "auto" and n >= ONNX_MIN_SAMPLES)
    forward = _Forward(model, todo, use_onnx, onnx_dir(), explicit=backend == "onnx")
    sizer = _Sizer(model, todo, forward, batch_size, budget)
    done = 0
    memory: dict[str, list[Any]] = {layer: [] for layer in todo}

    def tick(k: int, _: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress(done, n)

    with fast_allocator(), _eval_mode(model):
        for start, stop in spans:
            if entries and all(entries[layer].load_chunk(start, stop) is not None
                               for layer in todo):
                tick(stop - start, 0)
                continue
            chunk = _run_chunk(forward, domain, start, stop, todo, reducer(model), ragged,
                               sizer, tick)
            for layer in todo:
                if entries:
                    entries[layer].save_chunk(start, stop, chunk.pop(layer))
                else:
                    memory[layer].append(chunk.pop(layer))
    for layer in todo:
        if entries:
            meta = {"backbone": model.name, "layer": layer, "data": domain.name,
                    "modality": model.modality, "backend": forward.backend, **info}
            results[layer] = entries[layer].finalize(spans, meta)
        else:
            results[layer] = _concat(memory[layer], ragged)
    log.info("extracted %s x %d samples with %s (%s)", todo, n, model.name, forward.backend)
    return results


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
    ``ONNX_MIN_SAMPLES`` samples on. ``batch_size`` None (the default) sizes batches from the
    memory budget (:mod:`graftlab.features.budget`: big for small inputs, smaller for large
    ones). The backbone's train/eval modes are left as they were.
    """
    _check_backend(backend)
    options = backbone_options or {}
    desc, model = _describe(backbone, options)
    name = desc.key.get("name", "backbone")
    domain = as_domain(data, desc.modality)
    layer_list = resolve_layers(name, desc.layers, list(layers) if layers is not None else None)
    pooling = resolve_pooling(desc.modality, pooling, desc.default_pooling)
    _check_batch_size(batch_size)
    store = _store(cache, cache_dir)

    def entries_for(d: Domain) -> dict:
        fingerprint = d.fingerprint()
        return {layer: store.entry({"backbone": layer_key(desc, model, layer), "layer": layer,
                                    "pooling": pooling, "data": fingerprint, "n": len(d)})
                for layer in layer_list}

    if store and domain.origin is not None:
        root, rows = domain.origin
        # A split that is most of its data set (or whose data set is cached already) is served
        # from one extraction of the whole: every other split, strategy and seed then hits.
        if 2 * len(domain) >= len(root) or all(e.complete for e in entries_for(root).values()):
            built = model is not None and not isinstance(backbone, Backbone)
            whole = extract_layers(model if built else backbone, root, layers=layer_list,
                                   pooling=pooling, batch_size=batch_size,
                                   cache_dir=cache_dir, chunk_size=chunk_size,
                                   progress=progress, backend=backend,
                                   backbone_options=None if built else backbone_options)
            return {layer: np.asarray(whole[layer][rows]) for layer in layer_list}

    def pool(model: Backbone) -> Reduce:
        return lambda x, batch: model.pool(x, pooling, batch).float().numpy()

    results = _extract(backbone, model, options, domain, entries_for(domain) if store else {},
                       layer_list, pool, False, batch_size=batch_size, chunk_size=chunk_size,
                       progress=progress, backend=backend, info={"pooling": pooling})
    return {layer: results[layer] for layer in layer_list}


def extract_features(backbone: str | Backbone, data: Domain | np.ndarray | Sequence[str], *,
                     layer: str | None = None, **options: Any) -> np.ndarray:
    """Pooled features ``(N, D)`` of one layer (default: the backbone's last)."""
    result = extract_layers(backbone, data, layers=None if layer is None else [layer], **options)
    return next(iter(result.values()))


def _check_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, int | np.integer) or batch_size < 1):
        raise ConfigError(f"batch_size must be a whole number of at least 1, got {batch_size!r}.",
                          hint="leave it unset (None) to size batches from the memory budget "
                          "(GRAFTLAB_EXTRACT_MEMORY_MB), or pass e.g. batch_size=32.")


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}.",
                          hint="use 'auto' (ONNX Runtime for larger sets), 'torch' or 'onnx'.")


def _store(cache: bool, cache_dir: str | None) -> FeatureCache | None:
    if not cache:
        return None
    store = FeatureCache(cache_dir)
    store.check_writable()
    return store
