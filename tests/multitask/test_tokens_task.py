"""The ``tokens`` task type in a multi-task model: NER beside a sentence-level task on one trunk.
First-sub-token labels, masks (a sentence without tags adds nothing to the token loss: checked
on the gradient), each weighting, one forward pass, save/load, and the errors. A tiny two-layer
BERT whose vocabulary splits 'paris' and 'london' into two sub-tokens keeps it fast."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graftlab.data import TaggedSentences
from graftlab.errors import DataError
from graftlab.methods.multitask import WEIGHTINGS, MultiTask, TaskLoss
from graftlab.multitask import MultiTaskGrafter, join_tasks, make_task
from graftlab.multitask.tasks import as_column
from tests._tagged import SENTENCES, TAGS

UNTAGGED = ["john loves paris", "mary loves london", "the city of london", "mary loves john",
            "new york", "paris and london loves mary", "loves loves", "the city"]
TEXTS = [" ".join(s) for s in SENTENCES] + UNTAGGED
# the tagged sentences carry no mood except two; the untagged ones carry it: masks both ways
MOOD = [None, None, "love", "plain", None, "plain", "love", "love", "plain", "love", "plain",
        "love", "love", "plain"]
TASKS = {"entities": "tokens", "mood": "classification"}


def _y():
    return {"entities": TAGS + [None] * len(UNTAGGED), "mood": MOOD}


def _fit(backbone: str, **kw) -> MultiTaskGrafter:
    tasks = {"entities": {"type": "tokens", "head_options": {"dropout": 0.0}},
             "mood": "classification"}
    options = {"tasks": tasks, "backbone": backbone, "epochs": 60, "batch_size": 4,
               "lr": 5e-2, "dropout": 0.0, "seed": 0, **kw}
    return MultiTaskGrafter(**options).fit(TEXTS, _y())


def test_a_token_task_beside_a_classification_task_learns_both_in_one_pass(tiny_tagging_bert,
                                                                            monkeypatch):
    m = _fit(tiny_tagging_bert)
    assert m.record_["cached_activations"]["layer"] == "layer.1"  # head_only: cached tokens
    pred = m.predict(SENTENCES)  # word lists are joined as the tagger joins them
    assert pred["entities"] == TAGS
    scores = m.score(TEXTS, _y())
    assert scores["entities"]["entity_f1"] == 1.0 and scores["entities"]["n"] == 6
    assert scores["mood"]["accuracy"] >= 0.8 and scores["mood"]["n"] == 11
    # an untagged text gets one tag per word too, and every task comes from one forward pass
    head, calls = m.model_.head, []
    forward = head.forward
    monkeypatch.setattr(head, "forward", lambda x, mask=None: calls.append(x) or forward(x, mask))
    out = m.predict(["mary loves paris", "new york"])
    assert len(calls) == 1 and [len(t) for t in out["entities"]] == [3, 2]
    assert set(out["mood"]) <= {"love", "plain"} and len(out["mood"]) == 2
    raw = m.decision_function(["mary loves paris"])
    # [CLS] mary loves par ##is [SEP]: one row of logits per token, the padding cut
    assert raw["entities"][0].shape == (6, 4) and raw["mood"].shape == (1, 2)


def test_labels_sit_at_first_sub_tokens_and_an_untagged_sample_is_all_ignored(
        tiny_tagging_bert):
    from graftlab.backbones import create_backbone

    backbone = create_backbone(tiny_tagging_bert)
    task = make_task("entities", "tokens")
    encoded = task.fit(as_column([TAGS[0], None]))
    labels = task.tensor(encoded, [TEXTS[0], "mary loves london"], backbone)
    b_loc, b_per, o = (task.targets.classes.index(t) for t in ("B-loc", "B-per", "O"))
    # [CLS] john lives in par ##is [SEP]: 'paris' at its first piece, ##is and specials -100
    assert labels[0].tolist() == [-100, b_per, o, o, b_loc]
    assert (labels[1] == -100).all()
    assert task.present(labels).tolist() == [True, False]


def test_a_sample_without_tags_gives_no_token_loss_gradient(tiny_tagging_bert):
    """The gradient of the loss on the model's outputs: zero at every token of the untagged
    sentence (and at the tagged one's ignored tokens), and for the row whose class is missing."""
    from graftlab.backbones import create_backbone

    backbone = create_backbone(tiny_tagging_bert)
    tags, mood = make_task("entities", "tokens"), make_task("mood", "classification")
    texts = [TEXTS[0], "mary loves london", "the city"]
    targets = {"entities": tags.tensor(tags.fit(as_column([TAGS[0], None, None])), texts,
                                       backbone),
               "mood": torch.as_tensor(mood.fit(as_column([None, "love", "plain"])))}
    outputs = {"entities": torch.nn.Parameter(torch.randn(3, 7, tags.num_outputs)),
               "mood": torch.nn.Parameter(torch.randn(3, mood.num_outputs))}

    class Fixed(torch.nn.Module):
        def forward(self, inputs):
            return dict(outputs)

    losses = [TaskLoss(n, 0, t.num_outputs, t.loss, t.present, (t.metric, t.metric_sum))
              for n, t in (("entities", tags), ("mood", mood))]
    method = MultiTask(Fixed(), losses, WEIGHTINGS.create("equal", ["entities", "mood"]),
                       lambda: [])
    method({"inputs": {}, "targets": targets})["loss"].backward()
    grad = outputs["entities"].grad
    assert torch.count_nonzero(grad[1:]) == 0  # the untagged sentences
    assert torch.count_nonzero(grad[0, [0, 5, 6]]) == 0  # [CLS], ##is, [SEP]
    assert torch.count_nonzero(grad[0, 1:5]) > 0
    assert torch.count_nonzero(outputs["mood"].grad[0]) == 0  # mood missing on row 0
    assert torch.count_nonzero(outputs["mood"].grad[1:]) > 0
    sums = method.evaluate({"inputs": {}, "targets": targets})
    assert sums["entities_labelled"] == 1 and sums["mood_labelled"] == 2 and sums["count"] == 3


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "pcgrad"])
def test_each_weighting_trains_with_a_token_task(tiny_tagging_bert, weighting):
    m = _fit(tiny_tagging_bert, weighting=weighting, shared=8, epochs=3,
             validation_fraction=0.25)
    last = m.history_[-1]
    assert {"val_entities_loss", "val_entities_accuracy", "val_mood_accuracy"} <= set(last)
    assert 0.0 <= last["val_entities_accuracy"] <= 1.0 and np.isfinite(last["val_loss"])
    if weighting == "uncertainty":
        assert set(m.record_["log_variances"]) == {"entities", "mood"}
    pred = m.predict(SENTENCES[:2])
    assert [len(t) for t in pred["entities"]] == [4, 3]


@pytest.mark.parametrize("strategy", ["head_only", "last_k"])
def test_save_and_load_give_the_same_predictions(tiny_tagging_bert, tmp_path, strategy):
    m = _fit(tiny_tagging_bert, epochs=2, strategy=strategy, k=1, shared=8)
    if strategy == "last_k":
        assert m.record_["cached_activations"]["layer"] == "layer.0"
    folder = m.save(tmp_path / "mt")
    config = json.loads((folder / "config.json").read_text())
    assert [(t["name"], t["type"], t["output"]) for t in config["outputs"]] == \
        [("entities", "tokens", "entities"), ("mood", "classification", "mood")]
    assert config["outputs"][0]["classes"] == ["B-loc", "B-per", "I-loc", "O"]
    loaded = MultiTaskGrafter.load(folder)
    a, b = m.decision_function(TEXTS), loaded.decision_function(TEXTS)
    np.testing.assert_allclose(a["mood"], b["mood"], atol=1e-5)
    for x, z in zip(a["entities"], b["entities"], strict=True):
        np.testing.assert_allclose(x, z, atol=1e-5)
    assert loaded.predict(TEXTS)["entities"] == m.predict(TEXTS)["entities"]


def test_join_tasks_takes_tagged_sentences_as_texts_and_tags():
    texts, y = join_tasks({"entities": (TaggedSentences(SENTENCES[:2], TAGS[:2]), None),
                           "mood": (["mary visits london", "new york"], ["plain", "love"])})
    assert texts == ["john lives in paris", "mary visits london", "new york"]
    assert y == {"entities": [TAGS[0], TAGS[1], None], "mood": [None, "plain", "love"]}


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(("entities", "match"), [
    ([TAGS[0][:3]] + TAGS[1:], r"row 0 has 3 tags for 4 words \('john lives in paris'\)"),
    (["B-per"] + TAGS[1:], "row 0 is labelled 'B-per'; a token task's label is a list of tags"),
])
def test_tags_that_do_not_fit_the_words_are_explained(tiny_tagging_bert, entities, match):
    y = {"entities": entities + [None] * len(UNTAGGED), "mood": MOOD}
    with pytest.raises(DataError, match=match):
        MultiTaskGrafter(tasks=TASKS, backbone=tiny_tagging_bert, epochs=1).fit(TEXTS, y)


def test_a_token_task_with_a_sample_level_head_is_refused():
    from graftlab.errors import ConfigError

    with pytest.raises(ConfigError, match="(?s)task 'entities' \\(tokens\\) needs one output per "
                       "token, but head 'sequence' gives one per sample.*head 'token'"):
        make_task("entities", {"type": "tokens", "head": "sequence"})


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_the_head_pools_tokens_as_the_text_backbones_pool_them(pooling):
    """The sample-level tasks beside a token task see what they would see without it."""
    from graftlab.backbones.base import Backbone
    from graftlab.heads import create_head
    from graftlab.heads.multitask import pool_tokens

    x, mask = torch.randn(3, 5, 8), torch.tensor([[1] * 5, [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    expected = Backbone.pool(None, x, pooling, {"attention_mask": mask})
    torch.testing.assert_close(pool_tokens(x, mask, pooling), expected)
    head = create_head("multitask", in_features=8, num_outputs=5, pooling=pooling, dropout=0.0,
                       tasks=[{"name": "e", "outputs": 3, "head": "token",
                               "head_options": {"dropout": 0.0}}, {"name": "s", "outputs": 2}])
    out = head(x, mask)
    assert head.input_kind == "tokens" and list(out) == ["e", "s"]
    assert out["e"].shape == (3, 5, 3)
    torch.testing.assert_close(out["s"], head.tasks["s"](expected))


def test_a_tokens_task_refuses_tags_outside_bio_before_training():
    import numpy as np
    import pytest

    from graftlab.errors import DataError
    from graftlab.multitask.tasks import tasks_from

    task = tasks_from({"ner": "tokens"})["ner"]
    with pytest.raises(DataError, match=r"task 'ner': row 0, word 0: .*PER"):
        task.fit(np.array([["PER", "O"]], dtype=object))
