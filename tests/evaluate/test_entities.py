"""The entity-level scorer equals seqeval's default (conlleval chunking) on random and edge-case
tag sequences; seqeval is the reference, installed for the tests only."""

from __future__ import annotations

import random
import warnings

import pytest

from graftlab.errors import DataError
from graftlab.evaluate.entities import entity_scores, entity_spans

seqeval = pytest.importorskip("seqeval.metrics", reason="seqeval (the reference scorer) is not "
                              "installed: pip install 'graftlab[ner]'")
from seqeval.metrics import f1_score  # noqa: E402
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support  # noqa: E402
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

EDGE = [
    (["O", "O"], ["O", "O"]),                                  # no entity anywhere
    (["B-per", "I-per"], ["O", "O"]),                          # nothing predicted
    (["O"], ["B-per"]),                                        # nothing true
    (["I-per", "I-per", "O"], ["B-per", "I-per", "O"]),        # I- at the start
    (["B-per", "I-loc", "O"], ["B-per", "B-loc", "O"]),        # type change inside
    (["B-geo-loc", "I-geo-loc"], ["B-geo-loc", "I-geo-loc"]),  # a hyphen in the type
    (["B-per", "B-per", "I-per"], ["B-per", "I-per", "I-per"]),  # boundaries differ
    (["O", "I-per"], ["B-per", "I-per"]),                      # I- after O
    (["S-per", "B-loc", "E-loc", "I-loc"], ["S-per", "B-loc", "I-loc", "E-loc"]),  # IOBES
]
TAGS = ["O", "O", "O", "B-per", "I-per", "B-loc", "I-loc", "B-geo-loc", "I-geo-loc", "E-per",
        "S-loc"]


def _random_pairs(seed: int, n: int = 30) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    true, pred = [], []
    for _ in range(n):
        length = rng.randint(1, 12)
        true.append([rng.choice(TAGS) for _ in range(length)])
        pred.append([t if rng.random() < 0.6 else rng.choice(TAGS) for t in true[-1]])
    return true, pred


def _check_equal(true, pred):
    ours = entity_scores(true, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on 0/0 (and on E-/S- in default mode)
        p, r, f, s = precision_recall_fscore_support(true, pred, average="micro")
        assert (ours.micro.precision, ours.micro.recall, ours.micro.f1) == pytest.approx(
            (p, r, f), abs=1e-12)
        assert ours.micro.support == s
        p, r, f, s = precision_recall_fscore_support(true, pred, average=None)
        macro = f1_score(true, pred, average="macro")  # nan (a mean of nothing) when no entity
    types = sorted({e[0] for seq in (*true, *pred) for e in get_entities(seq)})
    assert list(ours.per_type) == types
    assert ours.macro_f1 == (pytest.approx(macro, abs=1e-12) if types else 0.0)
    for i, kind in enumerate(types):
        score = ours.per_type[kind]
        assert (score.precision, score.recall, score.f1, score.support) == pytest.approx(
            (p[i], r[i], f[i], s[i]), abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_equals_seqeval_on_random_sequences(seed):
    _check_equal(*_random_pairs(seed))


@pytest.mark.parametrize("true, pred", EDGE)
def test_equals_seqeval_on_edge_cases(true, pred):
    _check_equal([true], [pred])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert entity_spans(true) == get_entities(true)
        assert entity_spans(pred) == get_entities(pred)


def test_all_edge_cases_together():
    _check_equal([t for t, _ in EDGE], [p for _, p in EDGE])


def test_spans_of_a_sentence():
    assert entity_spans(["B-per", "I-per", "O", "I-loc"]) == [("per", 0, 1), ("loc", 3, 3)]
    report = entity_scores([["B-per", "I-per", "O"]], [["B-per", "O", "O"]])
    assert report.micro.correct == 0 and report.micro.predicted == 1  # boundaries must match
    assert report.as_dict()["per_type"]["per"]["support"] == 1


def test_bad_input_is_named():
    with pytest.raises(DataError, match="sentence 0: 2 true tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(DataError, match="1 true tag sequences but 2 predicted"):
        entity_scores([["O"]], [["O"], ["O"]])
    with pytest.raises(DataError, match="tag 'PER' is neither 'O' nor a prefix"):
        entity_scores([["PER"]], [["O"]])
