"""``graftlab compare`` on tagged sentences: several ways of training one token tagger (NER), on
the same held-out sentences, scored entity by entity (seqeval's default), per type.

Every seed holds out the same share of distinct sentences for every strategy (or, with a
held-out file, or for ``wnut16:train`` whose held-out set is ``wnut16:test``, the same test
set with new training noise). Training options not given keep ``graftlab tag``'s defaults
(chosen on ``benchmarks/ner.py --design``). The run folder holds ``results.json`` (every run,
written after each one), ``report.md``/``report.html`` (micro F1 and every type's F1 per
strategy, a figure) and ``model/``: the best strategy's seed-0 tagger.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from graftlab import _atomic
from graftlab.config import CompareConfig, TagConfig
from graftlab.errors import ConfigError, named_once, unknown_name
from graftlab.report.run import environment
from graftlab.workflows.common import check_backbone, check_out_folder, run_folder
from graftlab.workflows.compare import CompareInterrupted
from graftlab.workflows.tag import held_out, tagger_from

log = logging.getLogger(__name__)

FORMAT = "graftlab.compare-tokens/1"
DEFAULT_STRATEGIES = ("head_only", "last_k", "lora")
Progress = Callable[[str, int, int], None]


def tag_config(config: CompareConfig, seed: int, strategy: str) -> TagConfig:
    """``graftlab tag``'s config for one run of the comparison: the data and backbone from
    compare's, the training options compare was given, ``tag``'s defaults for the rest."""
    data, m, t = config.data, config.model, config.train
    train = {"strategy": strategy, "seed": seed, "epochs": t.epochs,
             "batch_size": t.batch_size,
             **{k: v for k, v in (("lr", t.lr), ("lr_backbone", t.lr_backbone)) if v is not None}}
    return TagConfig.model_validate({
        "data": {"path": data.path, "test_data": data.test_data, "test_size": data.test_size,
                 "column": data.column},
        "model": {"backbone": m.backbone, "max_length": m.max_length},
        "train": train, "runs_dir": config.runs_dir})


def check_tokens_compare(config: CompareConfig) -> list[str]:
    """Refuse what a token comparison cannot do, by name; the strategies to run."""
    from graftlab.train.strategies import STRATEGIES

    data, m, t = config.data, config.model, config.train
    refused = {"--target-column": data.target_column, "--limit": data.limit,
               "--select": config.select.selector, "--image-size": m.image_size,
               "--track": config.track}
    given = [name for name, value in refused.items() if value is not None]
    given += [name for name, value, default in (("--text-column", data.text_column, "text"),
                                                ("--label-column", data.label_column, "label"))
              if value != default]
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be used when comparing token taggers "
                          f"({data.path!r} holds tagged sentences).",
                          hint="drop those options; token comparisons score entities on "
                          "held-out sentences" + (
                              " read one word and its tag per line (a multi-column CoNLL file: "
                              "data.column=-1 names the tag's column)" if any(
                                  g.endswith("column") for g in given) else "") + ".")
    chosen = list(DEFAULT_STRATEGIES if t.strategies is None else t.strategies)
    solved = [n for n, cls in STRATEGIES.items() if cls.solved]  # a head on pooled features
    for name in chosen:
        if name not in STRATEGIES or name in solved:
            raise unknown_name("strategy for a token tagger", name,
                               [n for n in STRATEGIES if n not in solved],
                               hint=f"{', '.join(solved)} pools a whole text; a tagger needs "
                               "a prediction per word.")
    if not chosen:
        raise ConfigError("no strategies to compare.", hint="give --strategies, e.g. "
                          "head_only,last_k,lora.")
    named_once(chosen, "strategies")
    if check_backbone(m.backbone, max_length=m.max_length) != "text":
        raise ConfigError(f"backbone {m.backbone!r} is not a text encoder; tagging words needs "
                          "one.", hint="use minilm_l6 or hf:PATH (`graftlab backbones`).")
    check_out_folder(config.out, config.runs_dir, config.overwrite, "compare-tokens")
    return chosen


def run_compare_tokens(config: CompareConfig, *, progress: Progress | None = None) -> dict:
    """Fit one :class:`~graftlab.tagger.TokenTagger` per strategy and seed; write the run
    folder (results after every run, the report and the best strategy's model at the end).
    Ctrl-C writes the report of the runs that finished, then raises
    :class:`~graftlab.workflows.compare.CompareInterrupted`."""
    chosen = check_tokens_compare(config)
    t = config.train
    if t.scratch:
        log.warning("compare on tagged sentences: no from-scratch baseline (a tagger is "
                    "grafted onto a pretrained encoder); running the strategies only")
    splits = {seed: held_out(tag_config(config, seed, chosen[0]))
              for seed in range(t.seeds)}  # every bad file is named before training
    todo = [(seed, s) for seed in range(t.seeds) for s in chosen]
    with run_folder(config.out, config.runs_dir, config.overwrite, "compare-tokens") as folder:
        t0 = time.perf_counter()
        results = {"format": FORMAT, "task": "tokens", "status": "running",
                   "config": config.model_dump(), "strategies": chosen,
                   "test_data": splits[0][2], "seeds": t.seeds,
                   "fixed_test": len({source for _, _, source in splits.values()}) == 1,
                   "train": len(splits[0][0]),
                   "test": len(splits[0][1]), "runs": [], "environment": environment(),
                   "run_folder": str(folder)}
        fitted = folder / ".taggers"  # seed 0's tagger per strategy, until the best is known
        try:
            for step, (seed, strategy) in enumerate(todo):
                if progress:
                    progress(f"{strategy} seed {seed}", step, len(todo))
                results["runs"].append(_run(config, seed, strategy, splits[seed], fitted))
                _atomic.write_json(folder / "results.json", results)
        except KeyboardInterrupt:  # the runs that finished keep their report
            results["status"] = "interrupted"
            if results["runs"]:
                _finish(folder, results, chosen, fitted, t0)
            raise CompareInterrupted(results) from None
        results["status"] = "complete"
        _finish(folder, results, chosen, fitted, t0)
    return results


def _run(config: CompareConfig, seed: int, strategy: str, split: tuple, fitted: Path) -> dict:
    """One tagger fitted and scored; seed 0's saved under ``fitted`` (not held in memory)."""
    cfg = tag_config(config, seed, strategy)
    train, test, _ = split
    tagger = tagger_from(cfg)
    start = time.perf_counter()
    tagger.fit(train)
    fit_seconds = time.perf_counter() - start
    report = tagger.evaluate(test)
    if seed == 0:
        tagger.save(fitted / strategy)
    return {"strategy": strategy, "seed": seed, "entity": report.as_dict(),
            "trainable_params": int(tagger.trainable_params_), "fit_seconds": fit_seconds,
            "train": cfg.train.model_dump()}


def _finish(folder: Path, results: dict, chosen: list[str], fitted: Path, t0: float) -> None:
    """The summary, the best strategy's seed-0 tagger saved (when it finished), the report."""
    from graftlab.report.compare_tokens import write_report

    results["summary"] = summarise(results["runs"], chosen)
    best = max(results["summary"], key=lambda row: row["f1_mean"])["strategy"]
    results.update(recommended=best, seconds_total=time.perf_counter() - t0)
    if (fitted / best).is_dir():
        os.replace(fitted / best, folder / "model")
        results["model"] = {"strategy": best, "seed": 0, "folder": "model",
                            "load_with": "graftlab.TokenTagger.load"}
    shutil.rmtree(fitted, ignore_errors=True)  # the other strategies' taggers
    _atomic.write_json(folder / "results.json", results)
    write_report(folder, results)


def summarise(runs: list[dict], strategies: list[str]) -> list[dict]:
    """Per strategy: micro precision/recall/F1 and macro F1 (mean and std over seeds, in %),
    each type's mean F1, trainable parameters and the median fit time."""
    out = []
    for strategy in strategies:
        mine = [r["entity"] for r in runs if r["strategy"] == strategy]
        if not mine:
            continue
        row = {"strategy": strategy, "seeds": len(mine)}
        for key, get in (("f1", lambda e: e["micro"]["f1"]),
                         ("precision", lambda e: e["micro"]["precision"]),
                         ("recall", lambda e: e["micro"]["recall"]),
                         ("macro_f1", lambda e: e["macro_f1"])):
            values = [100 * get(e) for e in mine]
            row[f"{key}_mean"] = statistics.mean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        types = sorted({k for e in mine for k in e["per_type"]})
        # a type scores only where it occurs (a seed's held-out split may lack it)
        row["per_type"] = {k: statistics.mean(100 * e["per_type"][k]["f1"] for e in mine
                                              if k in e["per_type"]) for k in types}
        row["support"] = {k: mine[0]["per_type"][k]["support"]
                          for k in types if k in mine[0]["per_type"]}
        done = [r for r in runs if r["strategy"] == strategy]
        row["trainable_params"] = done[0]["trainable_params"]
        row["fit_seconds_median"] = statistics.median(r["fit_seconds"] for r in done)
        out.append(row)
    return out
