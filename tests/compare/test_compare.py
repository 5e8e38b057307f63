"""graftlab compare: one run over tiny images, its report (every section, numbers equal to
results.json), the cache reuse, Ctrl-C, and the bad-input messages."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from graftlab.workflows.compare import CompareInterrupted, run_compare
from graftlab.workflows.compare import minimum_per_class
from graftlab.data import Domain
from graftlab.errors import ConfigError, DataError, NotFoundError
from graftlab.report.compare import SECTIONS

from _tiny import KW, STRATEGIES, tiny_domain  # noqa: E402

pytestmark = pytest.mark.slow  # trains end to end (make test-fast skips it)


def test_every_strategy_and_the_scratch_baseline_ran_on_every_seed(compared):
    results, folder, _, events = compared
    saved = json.loads((folder / "results.json").read_text())
    assert saved["status"] == "complete"
    assert {(r["strategy"], r["seed"]) for r in saved["runs"]} == {
        (s, seed) for s in [*STRATEGIES, "scratch"] for seed in range(2)}
    for run in saved["runs"]:
        assert 0 <= run["accuracy"] <= 1 and len(run["per_class_recall"]) == 3
        assert np.asarray(run["confusion"]).sum() == 12  # the 25% test split
        assert run["peak_rss_mib"] > 50 and run["seconds"] > 0
    # the splits are the same for every strategy of a seed: same confusion row sums
    rows = {(r["strategy"], r["seed"]): np.asarray(r["confusion"]).sum(1).tolist()
            for r in saved["runs"]}
    assert rows[("full", 1)] == rows[("linear_probe", 1)] == rows[("scratch", 1)]
    assert any("[8/8]" in e[0] for e in events)
    assert saved["verdict"]["recommended"] in [*STRATEGIES]


def test_strategies_share_one_extraction_of_the_whole_data_set(compared):
    results, _, cache, _ = compared
    # linear_probe's pooled features and last_k's activations: one entry each, for all 48
    # samples, whatever the number of seeds and splits
    assert sorted(e["pooling"] for e in cache) == ["avg", "none"]
    assert all(e["shape"][0] == 48 for e in cache)
    records = {r["strategy"]: r["record"] for r in results["runs"] if r["seed"] == 0}
    assert records["linear_probe"]["feature_cache"] and "cached_activations" in records["last_k"]
    assert results["summary"][[r["strategy"] for r in results["summary"]].index(
        "linear_probe")]["trainable_params"] < results["summary"][-1]["trainable_params"]


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.ids, self._open = [], set(), None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "td" and "data-key" in attrs:
            self._open = [attrs["data-key"], json.loads(attrs["data-value"]), ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            self.cells.append(tuple(self._open))
            self._open = None


def test_html_report_has_every_section_and_the_numbers_of_results_json(compared):
    _, folder, _, _ = compared
    saved = json.loads((folder / "results.json").read_text())
    page = (folder / "report.html").read_text()
    parser = _Cells()
    parser.feed(page)
    assert {key for key, _ in SECTIONS} <= parser.ids
    assert page.count("<svg") >= 4 and "http" not in page.split("<svg")[0]  # self-contained
    by_strategy = {row["strategy"]: row for row in saved["summary"]}
    table = [c for c in parser.cells if c[0] in ("strategy", "accuracy_mean", "macro_f1_mean",
                                                 "trainable_params", "seeds")]
    current = None
    checked = 0
    for key, value, text in table:
        if key == "strategy":
            current = by_strategy[value]
            continue
        assert value == current[key]
        if key.endswith("_mean"):  # "91.7 ± 2.4" shows mean and std in percent
            mean, std = map(float, re.findall(r"[\d.]+", text))
            metric = key[:-5]
            assert abs(mean - 100 * current[f"{metric}_mean"]) <= 0.05
            assert abs(std - 100 * current[f"{metric}_std"]) <= 0.05
        else:
            assert int(text.replace(",", "")) == current[key]
        checked += 1
    assert checked == 4 * len(saved["summary"])
    recalls = [c for c in parser.cells if c[0] in saved["classes"]]
    flat = [v for row in saved["summary"] for v in row["per_class_recall"]]
    assert [float(c[2]) for c in recalls] == pytest.approx([100 * v for v in flat], abs=0.05)
    assert saved["verdict"]["text"].split("**")[1] in page


def test_markdown_report_and_figures_are_written(compared):
    _, folder, _, _ = compared
    md = (folder / "report.md").read_text()
    for _, title in SECTIONS:
        assert f"## {title}" in md
    for name in ("tradeoff", "curves", "confusion", "map"):
        svg = (folder / "figures" / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and f"figures/{name}.svg" in md
    assert (folder / "model" / "model.safetensors").is_file()


def test_ctrl_c_leaves_a_report_of_what_finished(tmp_path, monkeypatch):
    import graftlab.workflows.compare as run_module

    real, calls = run_module._one, []

    def interrupt_third(*args, **kw):
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(run_module, "_one", interrupt_third)
    with pytest.raises(CompareInterrupted) as stop:
        run_compare(tiny_domain(), strategies=["linear_probe", "last_k"], out=tmp_path / "r",
                    **KW)
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["status"] == "interrupted" and len(saved["runs"]) == 2
    assert stop.value.results["run_folder"] == str(tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Run interrupted" in page and 'id="results"' in page


def test_ctrl_c_before_any_run_finished_leaves_no_folder_in_the_way(tmp_path, monkeypatch):
    import graftlab.workflows.compare as run_module

    def interrupt(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_one", interrupt)
    with pytest.raises(KeyboardInterrupt) as stop:
        run_compare(tiny_domain(), strategies=["linear_probe"], out=tmp_path / "r", **KW)
    assert not isinstance(stop.value, CompareInterrupted)  # nothing to report
    assert not (tmp_path / "r").exists()  # the same --out works again


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(NotFoundError, match="linar_probe.*Known strategies.*linear_probe") as info:
        run_compare(tiny_domain(), strategies=["linar_probe"])
    assert "scratch" in str(info.value)


def test_check_compare_checks_every_option_before_the_data(tmp_path):
    from graftlab.workflows.compare import DEFAULT_STRATEGIES, check_compare

    chosen, modality = check_compare(strategies=None, out=tmp_path / "run")
    assert chosen == [*DEFAULT_STRATEGIES, "scratch"] and modality == "image"
    assert check_compare(strategies=["full", "scratch"], scratch=True)[0] == ["full", "scratch"]
    assert not (tmp_path / "run").exists()  # checked, not created
    with pytest.raises(ConfigError, match="--batch-size must be an integer >= 1, got 0"):
        check_compare(strategies=["full"], batch_size=0)
    with pytest.raises(ConfigError, match="nothing to compare"):
        check_compare(strategies=[], scratch=False)


def test_too_small_a_data_set_names_the_minimum():
    need = minimum_per_class(0.25)
    small = tiny_domain(per_class=need - 1)
    with pytest.raises(DataError, match=f"at least {need} samples") as info:
        run_compare(small, strategies=["linear_probe"], **KW)
    assert "'tl': " in str(info.value)


def test_an_existing_run_folder_is_never_overwritten_unless_asked(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="(?s)already exists.*--overwrite"):
        run_compare(tiny_domain(), strategies=["linear_probe"], out=out, **KW)
    with pytest.raises(ConfigError, match="--overwrite refuses .*holds no results.json"):
        run_compare(tiny_domain(), strategies=["linear_probe"], out=out, overwrite=True, **KW)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    first = run_compare(tiny_domain(), strategies=["linear_probe"], out=out, scratch=False,
                        feature_map=False, **{**KW, "seeds": 1})
    again = run_compare(tiny_domain(), strategies=["linear_probe"], out=out, overwrite=True,
                        scratch=False, feature_map=False, **{**KW, "seeds": 1})
    assert first["run_folder"] == again["run_folder"] == str(out)


def test_without_out_each_run_gets_a_new_folder(tmp_path):
    kw = {**KW, "seeds": 1}
    a = run_compare(tiny_domain(), strategies=["linear_probe"], runs_dir=tmp_path,
                    scratch=False, feature_map=False, **kw)
    b = run_compare(tiny_domain(), strategies=["linear_probe"], runs_dir=tmp_path,
                    scratch=False, feature_map=False, **kw)
    assert a["run_folder"] != b["run_folder"]


def test_regression_is_scored_with_r2_and_mae(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (40, 32, 32, 3), dtype=np.uint8)
    size = rng.integers(4, 28, 40)
    for i, s in enumerate(size):
        x[i, :s, :s] = 250
    d = Domain("sizes", "image", x, targets=size.astype(float))
    results = run_compare(d, strategies=["linear_probe", "last_k"], out=tmp_path / "r",
                          **{**KW, "epochs": 3})
    assert results["task"] == "regression"
    assert {"r2_mean", "mae_mean", "r2_std"} <= set(results["summary"][0])
    assert "accuracy_mean" not in results["summary"][0]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "R²" in page and "MAE" in page and "Not applicable to regression" in page
    assert results["verdict"]["metric"] == "r2" and (tmp_path / "r" / "figures" / "map.svg").exists()


def test_an_empty_strategy_list_means_none_not_the_defaults(tmp_path):
    results = run_compare(tiny_domain(), strategies=[], out=tmp_path / "r", feature_map=False,
                          **{**KW, "seeds": 1, "epochs": 1})
    assert [r["strategy"] for r in results["runs"]] == ["scratch"]
    with pytest.raises(ConfigError, match="nothing to compare"):
        run_compare(tiny_domain(), strategies=[], scratch=False, **KW)


@pytest.mark.parametrize("kw, error, message", [
    ({"test_size": 1.5}, ConfigError, "--test-size must be a number > 0 and < 1, got 1.5"),
    ({"seeds": 0}, ConfigError, "--seeds must be an integer >= 1, got 0"),
    ({"task": "ranking"}, ConfigError, "task must be auto, classification or regression"),
    ({"strategies": ["full", "full"]}, ConfigError, "more than once"),
    ({"task": "regression"}, DataError, "has no numeric targets to regress on"),
])
def test_bad_options_are_explained(kw, error, message):
    args = {"strategies": ["linear_probe"], **KW, **kw}
    with pytest.raises(error, match=re.escape(message)):
        run_compare(tiny_domain(), **args)


def test_data_without_labels_or_targets_and_too_few_for_regression_are_explained():
    x = tiny_domain().inputs
    with pytest.raises(DataError, match="has no labels; compare scores strategies"):
        run_compare(Domain("bare", "image", x), task="classification", **KW)
    few = Domain("few", "image", x[:12], targets=np.arange(12.0))
    with pytest.raises(DataError, match="has 12 samples; a regression comparison .* at least"):
        run_compare(few, **KW)


def test_the_saved_model_predicts_the_class_names(compared):
    from graftlab import Grafter

    _, folder, _, _ = compared
    model = Grafter.load(folder / "model")
    assert sorted(model.classes_.tolist()) == ["br", "tl", "tr"]
    assert set(model.predict(tiny_domain(4).inputs).tolist()) <= {"tl", "br", "tr"}


def test_the_shared_extraction_is_its_own_cost_line(compared):
    results, folder, _, events = compared
    shared = results["extraction"]
    readers = sorted(s for names in shared["what"].values() for s in names)
    assert readers == ["last_k", "linear_probe"] and shared["seconds"] > 0
    assert any(e[0].startswith("shared feature extraction") for e in events)
    for report in ("report.md", "report.html"):
        assert "Shared feature extraction: " in (folder / report).read_text()
        assert "read from the cache by last_k, linear_probe; not in their times" in \
            (folder / report).read_text()


def test_overwrite_refuses_a_folder_whose_results_json_is_not_graftlabs(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"accuracy": 0.9}')  # somebody else's results
    with pytest.raises(ConfigError, match="(?s)--overwrite refuses.*only replaces a run folder "
                                          "it wrote itself"):
        run_compare(tiny_domain(), strategies=["linear_probe"], out=out, overwrite=True, **KW)
    assert (out / "results.json").read_text() == '{"accuracy": 0.9}'


def test_ctrl_c_during_the_feature_map_still_leaves_the_report(tmp_path, monkeypatch):
    import graftlab.workflows.compare as run_module

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_feature_map", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_compare(tiny_domain(), strategies=["linear_probe"], out=tmp_path / "r",
                    feature_map=True, scratch=False, **{**KW, "seeds": 1})
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="results"' in page and "linear_probe" in page
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["summary"] and saved["status"] == "complete"  # every run had finished


def test_overwrite_keeps_the_earlier_run_until_the_new_one_has_results(tmp_path, monkeypatch):
    import graftlab.workflows.compare as run_module

    out = tmp_path / "run"
    kw = {"strategies": ["linear_probe"], "out": out, "scratch": False, "feature_map": False,
          **{**KW, "seeds": 1}}
    run_compare(tiny_domain(), **kw)
    earlier = (out / "results.json").read_text()

    def fails(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(run_module, "_one", fails)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_compare(tiny_domain(), overwrite=True, **kw)
    assert (out / "results.json").read_text() == earlier  # put back, not lost
    assert not (tmp_path / ".run.previous").exists()  # nothing left aside
    monkeypatch.undo()
    again = run_compare(tiny_domain(), overwrite=True, **kw)
    assert again["run_folder"] == str(out) and not (tmp_path / ".run.previous").exists()


def test_the_setup_names_a_given_test_set_and_a_missing_scratch_baseline(compared):
    import copy

    from graftlab.report.compare import _setup_lines

    results = copy.deepcopy(compared[0])
    results["config"]["test_data"] = {"name": "my-test", "size": 12}
    results["runs"] = [r for r in results["runs"] if r["strategy"] != "scratch"]
    text = " ".join(_setup_lines(results))
    assert "Test set: my-test (12 samples), given (--test-data)" in text
    assert "train/test split" not in text
    assert "asked for, but the run stopped before it ran" in text  # scratch was asked for
    results["config"]["strategies"] = [s for s in results["config"]["strategies"]
                                       if s != "scratch"]
    assert "No from-scratch baseline ran" in " ".join(_setup_lines(results))
