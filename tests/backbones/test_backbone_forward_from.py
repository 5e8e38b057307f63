"""Resuming a backbone from a layer's output (``forward_from``): the same numbers as running it
from the raw inputs, so fine-tuning the upper blocks can train from cached activations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from graftlab.errors import ConfigError
from graftlab.features import activation_batch, extract_activations
from graftlab.heads import create_head

TEXTS = ["Short.", "A much longer sentence, which pads every shorter neighbour in its batch.",
         "Medium length text here.", "ok", "Transfer learning, offline and cached.",
         "One more line with a few words."]
LABELS = torch.tensor([0, 1, 1, 0, 1, 0])


def test_a_layer_at_or_before_the_start_is_refused_with_the_layers_named(tiny_backbone):
    with pytest.raises(ConfigError, match=r"cannot resume tiny from '1' to 0, 1: layers must "
                       r"come after the start layer\.\nHINT: ask for a layer after '1'"):
        tiny_backbone.check_resume("1", ["0", "1", "2"])
    assert tiny_backbone.check_resume("0", ["2"]) == (0, ["2"])


@pytest.mark.slow
def test_efficientnet_takes_and_ignores_an_attention_mask(lite0):
    x = lite0.preprocess(np.zeros((2, 32, 32, 3), np.uint8))
    with torch.no_grad():
        acts = lite0.forward_layers(x, ["blocks.13", "head"])
        resumed = lite0.forward_from("blocks.13", acts["blocks.13"], ["head"],
                                     attention_mask=None)
    torch.testing.assert_close(resumed["head"], acts["head"])


@pytest.fixture(scope="module")
def encoder(minilm):
    """A private copy of MiniLM: these tests flip requires_grad and train modes."""
    return copy.deepcopy(minilm)


@pytest.mark.slow
@pytest.mark.parametrize("start,layers", [("embeddings", ["layer.0", "layer.5"]),
                                          ("layer.3", ["layer.4", "layer.5"]),
                                          ("layer.4", ["layer.5"])])
def test_text_resumed_from_a_layer_equals_the_full_forward(encoder, start, layers):
    batch = encoder.preprocess(TEXTS)
    with torch.no_grad():
        full = encoder.forward_layers(batch, [start, *layers])
        resumed = encoder.forward_from(start, full[start], layers,
                                       attention_mask=batch["attention_mask"])
    assert list(resumed) == layers
    for layer in layers:
        assert resumed[layer].dtype == full[layer].dtype == torch.float32
        torch.testing.assert_close(resumed[layer], full[layer], atol=1e-6, rtol=1e-6)
    # The model is whole again: its own embeddings and all six layers.
    assert type(encoder.model.embeddings).__name__ == "BertEmbeddings"
    assert len(encoder.model.encoder.layer) == 6


@pytest.mark.slow
def test_without_a_mask_every_token_counts(encoder):
    batch = encoder.preprocess(TEXTS[:1])  # one text: no padding, the mask is all ones
    with torch.no_grad():
        full = encoder.forward_layers(batch, ["layer.2", "layer.5"])
        resumed = encoder.forward_from("layer.2", full["layer.2"], ["layer.5"])
    torch.testing.assert_close(resumed["layer.5"], full["layer.5"], atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_the_model_is_restored_when_a_resumed_forward_fails(encoder):
    with pytest.raises(Exception):
        encoder.forward_from("layer.3", torch.zeros(2, 5, 7), ["layer.5"])  # wrong width
    assert type(encoder.model.embeddings).__name__ == "BertEmbeddings"
    assert len(encoder.model.encoder.layer) == 6


def _train_top(encoder, k: int) -> str:
    """Freeze all but the top ``k`` encoder layers (frozen: eval, no grad); the start layer."""
    encoder.requires_grad_(False).eval()
    names = [n for n, _ in encoder.blocks()]
    for name, block in encoder.blocks()[-k:]:
        block.requires_grad_(True).train()
    return names[-k - 1]


def _step(encoder, head, pooling, batch, start=None):
    """Loss and gradients of one step, from raw inputs or (``start``) cached activations."""
    encoder.zero_grad()
    head.zero_grad()
    torch.manual_seed(0)  # the same dropout draws in the trained layers and the head
    if start is None:
        x = encoder.forward_layers(batch, ["layer.5"])["layer.5"]
    else:
        x = encoder.forward_from(start, batch["acts"], ["layer.5"],
                                 attention_mask=batch.get("attention_mask"))["layer.5"]
    if head.input_kind == "pooled":
        x = encoder.pool(x, pooling, batch)
    loss = torch.nn.functional.cross_entropy(head(x, batch.get("attention_mask")),
                                             batch["labels"])
    loss.backward()
    grads = {n: p.grad.clone() for module in (encoder, head)
             for n, p in module.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.slow
@pytest.mark.parametrize("head_name,options,pooling", [
    ("linear", {}, "mean"), ("linear", {}, "cls"), ("linear", {}, "max"),
    ("sequence", {"kind": "attention"}, None), ("sequence", {"kind": "gru"}, None)])
@pytest.mark.parametrize("rows", ["all", "short", "short-trimmed"])
def test_training_the_top_layers_from_cached_activations_equals_a_full_step(
        encoder, head_name, options, pooling, rows):
    """last_k with k=2 on MiniLM: same loss and gradients from the cache as from the texts.
    ``all``: the batch is the cached set (same padding). ``short``: three short texts whose
    cached rows keep the padding of the set's longest text (more than the batch of texts has:
    it must change nothing; dropout off, since its draws follow the padded shape).
    ``short-trimmed``: the same rows through activation_batch, cut to their longest text."""
    start = _train_top(encoder, 2)
    assert start == "layer.3"
    torch.manual_seed(1)
    head = create_head(head_name, in_features=384, num_outputs=2, **options)
    cached = extract_activations(encoder, TEXTS, start, backend="torch")
    assert cached["acts"].shape[1] > 5 and cached["attention_mask"].dtype == torch.long
    index = np.arange(len(TEXTS)) if rows == "all" else np.array([3, 0, 2])
    if rows == "short":
        encoder.eval()
        head.eval()
        from_cache = {key: value[index] for key, value in cached.items()}
    else:  # dropout on: the same draws in the trained layers and the head
        head.train()
        from_cache = activation_batch(cached, index)
    from_cache["labels"] = LABELS[index]
    raw = {**encoder.preprocess([TEXTS[i] for i in index]), "labels": LABELS[index]}
    extra = from_cache["acts"].shape[1] - raw["input_ids"].shape[1]
    assert extra > 0 if rows == "short" else extra == 0
    loss_a, grads_a = _step(encoder, head, pooling, raw)
    loss_b, grads_b = _step(encoder, head, pooling, from_cache, start=start)
    torch.testing.assert_close(loss_a, loss_b, atol=1e-5, rtol=1e-5)
    assert grads_a.keys() == grads_b.keys()
    trained = {n.split(".")[3] for n in grads_a if n.startswith("model.encoder.layer.")}
    assert trained == {"4", "5"} and any(not n.startswith("model.") for n in grads_a)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4,
                                   msg=name)
