"""``graftlab tag``: token classification (NER) on tagged sentences, scored entity by entity on
a held-out set, saved. The data is a CoNLL-style file or a bundled tagged set (``wnut16:train``,
whose held-out set is ``wnut16:test``); without a test set, a seeded share of the sentences is
held out. Everything is checked before training starts; the run folder is written last."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from graftlab.config import TagConfig
from graftlab.data import TaggedSentences, load_tagged
from graftlab.data.tagged import held_out_split
from graftlab.errors import ConfigError, DataError
from graftlab.report import markdown_table, write_run
from graftlab.workflows.common import check_backbone, check_cache, check_writable, new_folder


def held_out(config: TagConfig) -> tuple[TaggedSentences, TaggedSentences, str]:
    """Train and test sentences, and where the test set came from."""
    data = config.data
    options = {} if data.column is None else {"column": data.column}
    train = load_tagged(data.path, **options)
    test_name = data.test_data
    if test_name is None and data.path.startswith("wnut16") and data.path != "wnut16:test":
        test_name = "wnut16:test"
    if test_name is not None:
        test_options = options if Path(test_name).expanduser().exists() else {}  # a file
        return train, load_tagged(test_name, **test_options), test_name  # a bundled set: none
    keys = [tuple(words) for words in train.tokens]
    train_idx, test_idx = held_out_split(keys, data.test_size, config.train.seed)
    if not len(train_idx) or not len(test_idx):
        raise DataError(f"{data.path}: {len(train)} sentences cannot be split "
                        f"{1 - data.test_size:.0%}/{data.test_size:.0%}.",
                        hint="add sentences, or give a held-out file with --test-data.")
    return (train.subset(train_idx), train.subset(test_idx),
            f"{data.test_size:.0%} of {data.path} held out (seed {config.train.seed})")


def run_tag(config: TagConfig, *, progress: Callable[[str, int, int], None] | None = None
            ) -> dict:
    """Fit a TokenTagger as configured; write the run folder (with the saved model) and the
    entity-level scores (micro and per type)."""
    t0 = time.perf_counter()
    m = config.model
    if check_backbone(m.backbone, max_length=m.max_length) != "text":
        raise ConfigError(f"backbone {m.backbone!r} is not a text encoder; tagging words needs "
                          "one.", hint="use minilm_l6 or hf:PATH (`graftlab backbones`).")
    check_writable(config.runs_dir, "runs_dir")
    check_cache()
    train, test, test_source = held_out(config)
    tagger = tagger_from(config)
    tagger.fit(train, progress=progress)
    report = tagger.evaluate(test)
    metrics = {"entity": report.as_dict(), "train": len(train), "test": len(test),
               "test_data": test_source, "trainable_params": int(tagger.trainable_params_),
               "seconds": round(time.perf_counter() - t0, 2), "history": tagger.history_,
               "record": tagger.record_}
    folder = new_folder(config.runs_dir, "tag")
    tagger.save(folder / "model")
    rows = [{"type": "all (micro)", **_row(report.micro)}]
    rows += [{"type": kind, **_row(score)} for kind, score in report.per_type.items()]
    summary = (f"# Token classification: {m.backbone} on {config.data.path} "
               f"({config.train.strategy})\n\nEntity-level scores (seqeval's default) on "
               f"{test_source}, {len(test)} sentences:\n\n" + markdown_table(rows)
               + "\n\nThe fitted model is in `model/` (load it with "
               "`graftlab.TokenTagger.load`).\n")
    write_run(folder, config=config.model_dump(), metrics=metrics, summary=summary)
    return {**metrics, "rows": rows, "run_folder": str(folder)}


def tagger_from(config: TagConfig):
    """The (unfitted) :class:`~graftlab.tagger.TokenTagger` a tag config describes."""
    from graftlab.tagger import TokenTagger

    m = config.model
    options = {"max_length": m.max_length} if m.max_length else None
    return TokenTagger(backbone=m.backbone, head=m.head, head_options=m.head_options or None,
                       layer=m.layer, backbone_options=options, **config.train.model_dump())


def _row(score) -> dict:
    return {"precision": round(100 * score.precision, 1), "recall": round(100 * score.recall, 1),
            "f1": round(100 * score.f1, 1), "support": score.support}
