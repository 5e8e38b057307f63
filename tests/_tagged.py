"""Tagged sentences for the token-labelling tests, in words the ``tiny_tagging_bert`` fixture
knows (tests/conftest.py: 'paris' and 'london' split into two sub-tokens each), and a writer of
them as a CoNLL-style file (token<TAB>tag per line, a blank line between sentences)."""

from __future__ import annotations

from pathlib import Path

SENTENCES = [["john", "lives", "in", "paris"], ["mary", "visits", "london"],
             ["john", "loves", "new", "york"], ["the", "city", "of", "paris"],
             ["mary", "and", "john"], ["london", "and", "new", "york"]]
TAGS = [["B-per", "O", "O", "B-loc"], ["B-per", "O", "B-loc"],
        ["B-per", "O", "B-loc", "I-loc"], ["O", "O", "O", "B-loc"],
        ["B-per", "O", "B-per"], ["B-loc", "O", "B-loc", "I-loc"]]


def write_conll(path: Path, times: int = 1) -> Path:
    """The sentences ``times`` over, as a CoNLL-style file at ``path``."""
    blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(words, tags, strict=True))
              for words, tags in zip(SENTENCES, TAGS, strict=True)]
    path.write_text("\n\n".join(blocks * times) + "\n")
    return path
