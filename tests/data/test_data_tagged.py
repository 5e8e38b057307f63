"""Tagged sentences: the CoNLL-style reader, its errors (file and line), the bundled WNUT-16."""

from __future__ import annotations

import pytest

from graftlab.data import TaggedSentences, list_datasets, load_tagged, read_conll
from graftlab.data.tagged import bio_problem, held_out_split
from graftlab.errors import DataError


def _write(tmp_path, text: str):
    path = tmp_path / "ner.conll"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_tabs_spaces_blank_lines_and_docstart(tmp_path):
    path = _write(tmp_path, "-DOCSTART- O\n\nJohn\tB-person\nlives O\n\t\n\nParis  B-loc\n")
    s = read_conll(path)
    assert s.tokens == [["John", "lives"], ["Paris"]]
    assert s.tags == [["B-person", "O"], ["B-loc"]]
    assert s.classes == ["B-loc", "B-person", "O"]
    assert s.entity_types() == ["loc", "person"]
    assert s.texts == ["John lives", "Paris"]


def test_multi_column_files_name_the_tag_column(tmp_path):
    path = _write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    with pytest.raises(DataError, match=r"ner.conll:1: 'EU NNP B-NP B-ORG' holds 4 fields, not "
                       r"one token and one tag(.|\n)*column=-1"):
        read_conll(path)
    assert read_conll(path, column=-1).tags == [["B-ORG", "O"]]
    assert read_conll(path, column=2).tags == [["B-NP", "B-VP"]]  # the chunk tags


@pytest.mark.parametrize("text, line, words", [
    ("John B-person\nSmith I-person\n\nlives O\nin I-loc\n", 5, "'I-loc' follows 'O'"),
    ("John B-person\nParis I-loc\n", 2, "'I-loc' follows 'B-person'"),
    ("in O\n\nParis I-loc\n", 3, "follows the sentence's start"),
    ("in X-loc\n", 1, "neither 'O' nor 'B-TYPE'"),
])
def test_invalid_bio_names_file_and_line(tmp_path, text, line, words):
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match="BIO scheme") as exc:
        read_conll(path)
    assert f"{path}:{line}:" in str(exc.value) and words in str(exc.value)


def test_line_without_tag_names_file_and_line(tmp_path):
    path = _write(tmp_path, "John B-person\nlives\n")
    with pytest.raises(DataError, match=r"ner.conll:2: 'lives' has a token but no tag"):
        read_conll(path)


def test_token_and_tag_counts_that_differ_on_a_line(tmp_path):
    with pytest.raises(DataError, match=r"ner.conll:2: 'New York B-loc' holds 3 fields"):
        read_conll(_write(tmp_path, "in O\nNew York B-loc\n"))
    with pytest.raises(DataError, match=r"ner.conll:1: 'New York\\tB-loc': the token 'New York' "
                       "holds whitespace"):
        read_conll(_write(tmp_path, "New York\tB-loc\n"))


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="holds no tagged tokens"):
        read_conll(_write(tmp_path, "\n\n"))
    with pytest.raises(DataError, match="no such file"):
        read_conll(tmp_path / "nope.conll")


def test_in_memory_sentences_are_checked():
    with pytest.raises(DataError, match="sentence 1: 2 words but 1 tags"):
        TaggedSentences([["a"], ["b", "c"]], [["O"], ["O"]])
    with pytest.raises(DataError, match="sentence 0: 'I-x' follows the sentence's start"):
        TaggedSentences([["a"]], [["I-x"]])
    with pytest.raises(DataError, match="got a str"):
        TaggedSentences(["a b"], [["O", "O"]])
    assert bio_problem(["B-a", "I-a", "O", "B-b", "B-a", "I-a"]) is None


def test_held_out_split_is_seeded_and_disjoint():
    keys = [i % 50 for i in range(100)]  # every key twice
    train, test = held_out_split(keys, 0.2, seed=3)
    assert len(test) == 20 and len(train) == 80 and not set(train) & set(test)
    assert not {keys[i] for i in train} & {keys[i] for i in test}  # a repeat stays on one side
    assert (held_out_split(keys, 0.2, seed=3)[1] == test).all()
    assert (held_out_split(keys, 0.2, seed=4)[1] != test).any()


def test_bundled_wnut16_split():
    train, test = load_tagged("wnut16:train"), load_tagged("wnut16:test")
    assert len(train) + len(test) == 2394 and 0.18 < len(test) / 2394 < 0.22
    assert len(train.entity_types()) == 10
    assert not set(map(tuple, train.tokens)) & set(map(tuple, test.tokens))
    spec = next(s for s in list_datasets() if s.name == "wnut16")
    assert "MIT" in spec.licence and "Strauss" in spec.description


def test_a_missing_file_is_named():
    with pytest.raises(DataError, match="'nope.conll' is neither an existing file nor a bundled"):
        load_tagged("nope.conll")


def test_a_class_data_set_is_not_tagged():
    with pytest.raises(DataError, match="one label per text, not tags per word"):
        load_tagged("digits")


def test_conll_reading_names_encoding_and_columns_and_skips_comments(tmp_path):
    from graftlab.data.tagged import read_conll

    latin = tmp_path / "latin.conll"
    latin.write_bytes("John\tB-per\ncaf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.conll:2 is not UTF-8 text"):
        read_conll(latin)
    four = tmp_path / "four.conll"
    four.write_text("John NNP B-NP B-per\n")
    with pytest.raises(DataError, match="there is no column 5"):
        read_conll(four, column=5)
    noted = tmp_path / "noted.conll"
    noted.write_text("\ufeff# a comment line\nJohn\tB-per\n#\tO\nlives\tO\n")
    got = read_conll(noted)
    assert got.tokens == [["John", "#", "lives"]]  # a '#' token stays a token


def test_a_conllu_file_trains_on_its_words_and_prediction_reads_the_same_words(tmp_path):
    """CoNLL-U: ID FORM ... with the tag last (column=-1): the words are FORM, not the IDs,
    and multi-word and empty-node lines are skipped, as prediction reads the file."""
    from graftlab.data.tagged import iter_word_sentences

    path = tmp_path / "ner.conllu"
    path.write_text("# sent_id = 0\n1\tApple\tapple\tX\t_\tB-org\n1-2\tApple's\t_\t_\t_\t_\n"
                    "2\thired\thire\tV\t_\tO\n2.1\tghost\t_\t_\t_\t_\n3\tBob\tbob\tN\t_\tB-per\n")
    got = read_conll(path, column=-1)
    assert got.tokens == [["Apple", "hired", "Bob"]] and got.tags == [["B-org", "O", "B-per"]]
    assert [words for _, words in iter_word_sentences(path)] == got.tokens


def test_prediction_skips_comment_lines_as_training_does(tmp_path):
    from graftlab.data.tagged import iter_word_sentences

    path = tmp_path / "cm.conll"
    path.write_text("# sent_id = 1\nJohn\tB-per\nSmith\tI-per\nlives\tO\n")
    assert read_conll(path).tokens == [["John", "Smith", "lives"]]
    assert [words for _, words in iter_word_sentences(path)] == [["John", "Smith", "lives"]]


@pytest.mark.parametrize(("tag", "why"), [("0", "a zero where the letter O was meant"),
                                          ("b-per", "BIO prefixes are capitals"),
                                          ("S-per", "BIOES/BILOU: write S-/U- as B-")])
def test_a_tag_outside_bio_says_what_it_likely_is(tag, why):
    from graftlab.data.tagged import bio_problem

    assert why in bio_problem(["O", tag])[1]


def test_a_tag_column_reads_a_file_not_a_bundled_test_set(tmp_path):
    """data.column names the training file's tag column; a bundled held-out set takes none."""
    from graftlab.config import TagConfig
    from graftlab.workflows.tag import held_out

    path = tmp_path / "train.conll"
    path.write_text("John NN I-NP B-person\nlives VB I-VP O\n\nMary NN I-NP B-person\n")
    config = TagConfig.model_validate({"data": {"path": str(path), "column": -1,
                                                "test_data": "wnut16:test"}})
    train, test, name = held_out(config)
    assert train.tags[0] == ["B-person", "O"] and name == "wnut16:test" and len(test) > 100
