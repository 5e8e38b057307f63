"""benchmarks/extraction.py's paired rounds: the order turns each round, and a ratio is the
median of same-round ratios (so a slow spell on the shared machine hits both sides)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import extraction

    yield extraction
    sys.modules.pop("extraction", None)


def test_rounds_alternate_the_order_and_run_once_cases_once(bench):
    order = []

    def case(name):
        return lambda r: order.append((r, name)) or {"per_s": 1.0, "seconds": 1.0,
                                                     "peak_rss_mib": 1.0}

    runs = bench.paired({"a": case("a"), "b": case("b"), "slow": case("slow")}, 3,
                        once=["slow"])
    assert order == [(0, "a"), (0, "b"), (0, "slow"), (1, "b"), (1, "a"), (2, "a"), (2, "b")]
    assert [run["round"] for run in runs["a"]] == [0, 1, 2] and len(runs["slow"]) == 1


def test_the_ratio_is_the_median_of_same_round_ratios(bench):
    def runs(*speeds):
        return [{"per_s": s, "seconds": 100 / s, "peak_rss_mib": 500.0, "round": r}
                for r, s in enumerate(speeds)]

    # A busy second round halves both: the paired ratio stays 1.5, the ratio of medians not.
    summary = bench.summarise({"base": runs(100, 50, 90), "ours": runs(150, 75, 135),
                               "once": runs(40)}, "base")
    assert summary["ours"]["ratios"] == [1.5, 1.5, 1.5] and summary["ours"]["ratio"] == 1.5
    assert summary["ours"]["per_s"] == 135 and summary["ours"]["runs"] == 3
    assert summary["once"]["ratios"] == [0.4] and summary["base"]["ratio"] == 1.0
