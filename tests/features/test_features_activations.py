"""Unpooled activations through the feature cache (what cached fine-tuning trains from):
the layer's outputs as they are, text unpadded on disk and padded on return, a hit costs no
forward pass, and a split is served from its whole data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from graftlab.backbones import wrap_module
from graftlab.data import Domain
from graftlab.errors import NotFoundError
from graftlab.features import FeatureCache, activation_batch, extract_activations
from graftlab.features import extract as extract_module

TEXTS = ["Short.", "A much longer sentence, padding its neighbours.", "Medium text.", "ok",
         "Transfer learning, offline.", "One more line.", "x"]


class _TinyText(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 8)
        self.proj = nn.Linear(8, 8)

    def forward(self, input_ids, attention_mask):
        return self.proj(self.emb(input_ids))


def _characters(texts):
    """One token per character: lengths are the texts' lengths (as sequence_lengths says)."""
    ids = torch.zeros(len(texts), max(map(len, texts)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, text in enumerate(texts):
        ids[i, :len(text)] = torch.tensor([ord(c) % 63 + 1 for c in text])
        mask[i, :len(text)] = 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture
def tiny_text():
    torch.manual_seed(0)
    return wrap_module(_TinyText(), name="tiny_text", modality="text", preprocess=_characters)


def _no_forward(backbone, monkeypatch):
    """From here on, running the backbone fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the backbone ran: this should have been a cache hit")

    monkeypatch.setattr(backbone, "forward_layers", refuse)


def test_text_activations_are_each_texts_tokens_padded_to_the_longest(tiny_text):
    out = extract_activations(tiny_text, TEXTS, "emb", cache=False, batch_size=3)
    lengths = [len(t) for t in TEXTS]
    assert set(out) == {"acts", "attention_mask"}
    assert out["acts"].shape == (len(TEXTS), max(lengths), 8)
    assert out["acts"].dtype == torch.float32 and out["attention_mask"].dtype == torch.long
    assert out["attention_mask"].sum(1).tolist() == lengths
    with torch.no_grad():
        for i, text in enumerate(TEXTS):
            alone = tiny_text.forward_layers(_characters([text]), ["emb"])["emb"][0]
            torch.testing.assert_close(out["acts"][i, :len(text)], alone)
            assert not out["acts"][i, len(text):].any()  # padding is zeros
            assert out["attention_mask"][i, :len(text)].all()


def test_a_batch_of_text_activations_is_cut_to_its_longest_text(tiny_text, tiny_backbone,
                                                                images):
    acts = extract_activations(tiny_text, TEXTS, "emb", cache=False)
    batch = activation_batch(acts, np.array([3, 0, 6]))  # "ok", "Short.", "x"
    assert batch["acts"].shape == (3, 6, 8) and batch["attention_mask"].shape == (3, 6)
    assert torch.equal(batch["acts"], acts["acts"][[3, 0, 6], :6])
    assert batch["attention_mask"].sum(1).tolist() == [2, 6, 1]
    maps = extract_activations(tiny_backbone, images(4), "2", cache=False)
    assert torch.equal(activation_batch(maps, torch.tensor([2, 1]))["acts"],
                       maps["acts"][[2, 1]])


def test_the_cache_round_trips_text_and_a_second_call_is_a_hit(tiny_text, monkeypatch):
    first = extract_activations(tiny_text, TEXTS, "emb", chunk_size=3, batch_size=2)
    (entry,) = FeatureCache().entries()
    # Stored unpadded: one row per token, over three chunks of different token counts.
    assert entry["shape"] == [sum(map(len, TEXTS)), 8] and entry["pooling"] == "none"
    assert entry["key"]["activations"] == "unpooled" and entry["key"]["n"] == len(TEXTS)
    _no_forward(tiny_text, monkeypatch)
    second = extract_activations(tiny_text, TEXTS, "emb", chunk_size=3)
    assert second.keys() == first.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_images_come_back_as_the_layers_maps_and_round_trip(tiny_backbone, images,
                                                            monkeypatch):
    x = images(10)
    first = extract_activations(tiny_backbone, x, "2", chunk_size=4)
    with torch.no_grad():
        expected = tiny_backbone.forward_layers(tiny_backbone.preprocess(x), ["2"])["2"]
    assert list(first) == ["acts"] and first["acts"].shape == (10, 16, 6, 6)
    torch.testing.assert_close(first["acts"], expected)
    _no_forward(tiny_backbone, monkeypatch)
    second = extract_activations(tiny_backbone, x, "2")
    assert torch.equal(first["acts"], second["acts"])
    second["acts"] += 1  # a tensor of its own: the read-only cache file is untouched
    assert torch.equal(first["acts"], extract_activations(tiny_backbone, x, "2")["acts"])


@pytest.mark.parametrize("modality", ["text", "image"])
def test_a_split_equals_the_rows_of_its_whole_data_set(modality, tiny_text, tiny_backbone,
                                                       images, monkeypatch):
    inputs = [f"{t} #{i}" for i, t in enumerate(TEXTS * 4)] if modality == "text" \
        else images(28)
    backbone, layer = (tiny_text, "emb") if modality == "text" else (tiny_backbone, "2")
    whole = Domain("toy", modality, inputs)
    order = np.random.default_rng(0).permutation(len(whole))
    big, small = whole.subset(order[:20]), whole.subset(order[20:])
    got_big = extract_activations(backbone, big, layer)
    (entry,) = FeatureCache().entries()  # the whole data set was extracted, once
    assert entry["key"]["n"] == len(whole)
    _no_forward(backbone, monkeypatch)  # the whole is cached: the small split is a hit too
    got_small = extract_activations(backbone, small, layer)
    reference = extract_activations(backbone, whole, layer)
    for got, rows in [(got_big, order[:20]), (got_small, order[20:])]:
        assert got.keys() == reference.keys()
        if modality == "text":  # a split pads to its own longest text
            width = int(got["attention_mask"].sum(1).max())
            assert got["acts"].shape[1] == width
            assert not reference["attention_mask"][rows, width:].any()
        for key in got:
            expected = reference[key][rows]
            assert torch.equal(got[key], expected[:, :got[key].shape[1]]), key
    assert len(FeatureCache().entries()) == 1


def test_a_small_split_of_an_uncached_set_extracts_only_itself(tiny_text):
    whole = Domain("toy", "text", TEXTS)
    extract_activations(tiny_text, whole.subset(np.arange(2)), "emb")
    (entry,) = FeatureCache().entries()
    assert entry["key"]["n"] == 2


def test_an_interrupted_extraction_resumes_from_its_saved_chunks(tiny_text, monkeypatch):
    real, calls = extract_module._run_chunk, []

    def failing_second(*args, **kwargs):
        calls.append(args[2])  # the chunk's first sample
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "_run_chunk", failing_second)
    with pytest.raises(KeyboardInterrupt):
        extract_activations(tiny_text, TEXTS, "emb", chunk_size=3)
    assert FeatureCache().entries() == []  # nothing half-written is published
    calls.clear()
    monkeypatch.setattr(extract_module, "_run_chunk",
                        lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    resumed = extract_activations(tiny_text, TEXTS, "emb", chunk_size=3)
    assert calls == [3, 6]  # the first chunk came from disk
    fresh = extract_activations(tiny_text, TEXTS, "emb", cache=False)
    for key in fresh:
        assert torch.equal(resumed[key], fresh[key]), key


def test_a_corrupt_text_entry_is_rebuilt(tiny_text, caplog):
    first = extract_activations(tiny_text, TEXTS, "emb")
    (entry,) = FeatureCache().entries()
    rows = FeatureCache().root / entry["id"] / "features.npy"
    array = np.load(rows)
    np.save(rows, array + 1)  # same shape, wrong numbers: the checksum catches it
    second = extract_activations(tiny_text, TEXTS, "emb")
    assert "corrupt" in caplog.text
    assert torch.equal(first["acts"], second["acts"])


def test_an_unknown_layer_names_the_known_ones(tiny_text):
    with pytest.raises(NotFoundError, match=r"unknown layer 'embb'. Known layers: emb, proj, "
                       r"output. Did you mean 'emb'\?"):
        extract_activations(tiny_text, TEXTS, "embb")


def test_extraction_leaves_the_backbones_modes_as_they_were(tiny_text):
    tiny_text.train()
    tiny_text.module.emb.eval()
    extract_activations(tiny_text, TEXTS, "emb", cache=False)
    assert tiny_text.training and tiny_text.module.proj.training
    assert not tiny_text.module.emb.training


@pytest.mark.slow
def test_a_minilm_cache_hit_never_builds_the_model(minilm, monkeypatch):
    """By name, a registered backbone is described without its weights: a hit builds nothing."""
    built = []
    real = extract_module.create_backbone
    monkeypatch.setattr(extract_module, "create_backbone",
                        lambda *a, **k: built.append(a[0]) or real(*a, **k))
    first = extract_activations("minilm_l6", TEXTS, "layer.2", backend="torch")
    assert built == ["minilm_l6"]
    second = extract_activations("minilm_l6", TEXTS, "layer.2")
    assert built == ["minilm_l6"]
    for key in first:
        assert torch.equal(first[key], second[key]), key
    batch = minilm.preprocess(TEXTS)
    with torch.no_grad():
        hidden = minilm.forward_layers(batch, ["layer.2"])["layer.2"]
    assert torch.equal(first["attention_mask"], batch["attention_mask"])
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(first["acts"][mask], hidden[mask], atol=1e-5, rtol=1e-5)
    assert not first["acts"][~mask].any()
