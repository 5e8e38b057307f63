"""Pools of named parts: a table's source column, a folder of part folders, bundled names;
and the pools that cannot be used, named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graftlab.errors import DataError
from graftlab.select.parts import load_pool


def test_a_table_with_a_source_column(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label,source\ngood film,pos,movies\nbad film,neg,movies\n"
                    "nice phone,pos,amazon\nbroken,neg,amazon\nfine,pos,amazon\n")
    pool = load_pool(str(path))
    assert [n for n, _ in pool.parts] == ["movies", "amazon"]
    assert pool.groups.tolist() == ["movies"] * 2 + ["amazon"] * 3
    joined = pool.domain()
    assert joined.inputs[2] == "nice phone" and len(joined) == 5
    with pytest.raises(DataError, match="has no column 'domain' naming each row's part"):
        load_pool(str(path), source_column="domain")


def test_a_folder_of_part_folders(tmp_path):
    for part, value in [("a", 20), ("b", 200)]:
        for label in ("x", "y"):
            (tmp_path / part / label).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(
                    tmp_path / part / label / f"{i}.png")
    pool = load_pool(str(tmp_path))
    assert pool.groups.tolist() == ["a"] * 4 + ["b"] * 4 and pool.classes == ["x", "y"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no sub-folders; each part of the pool"):
        load_pool(str(tmp_path / "empty"))


def test_bad_pools_are_named(tmp_path):
    with pytest.raises(DataError, match="pool 'mnist' has one part"):
        load_pool("mnist")
    for part, size in [("a", 8), ("b", 16)]:
        for label in ("x", "y"):
            (tmp_path / part / label).mkdir(parents=True)
            Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(
                tmp_path / part / label / "0.png")
    pool = load_pool(str(tmp_path))  # parts of two sizes: the later resized, and said
    assert pool.domain().inputs.shape[1:] == (8, 8, 3)


def test_pool_parts_of_other_sizes_are_resized_to_the_first_with_a_warning(tmp_path, caplog):
    for part, size in [("a", 8), ("b", 16)]:
        for label in ("x", "y"):
            (tmp_path / part / label).mkdir(parents=True)
            Image.fromarray(np.full((size, size, 3), 200, np.uint8)).save(
                tmp_path / part / label / "0.png")
    pool = load_pool(str(tmp_path))
    assert [d.inputs.shape[1:3] for _, d in pool.parts] == [(8, 8), (8, 8)]
    assert "pool part 'b' has images of (16, 16) but 'a' of (8, 8): resized" in caplog.text


def test_a_sampled_pool_keeps_each_samples_part(monkeypatch):
    """select_source maps the pool's part names through the sample's rows (a sample used to
    be refused: "N pool-part names for n source samples")."""
    import graftlab.features as features
    from graftlab.config import SelectSection
    from graftlab.data import Domain
    from graftlab.select.parts import Pool
    from graftlab.workflows.select import select_source

    rng = np.random.default_rng(0)
    parts = [(name, Domain(name, "image", np.full((40, 4, 4, 3), value, np.uint8),
                           labels=np.arange(40) % 2, classes=["x", "y"]))
             for name, value in (("near", 10), ("far", 240))]
    pool = Pool(parts, ["x", "y"])
    target = Domain("t", "image", rng.integers(0, 30, (20, 4, 4, 3), dtype=np.uint8))
    monkeypatch.setattr(features, "extract_features",
                        lambda backbone, d, **kw: d.inputs.reshape(len(d), -1)[:, :2]
                        .astype(float) + rng.normal(0, 0.1, (len(d), 2)))
    sample = pool.domain().sample(30, seed=0)
    section = SelectSection(selector="task_similarity")  # scores parts: needs the groups
    kept, record, _ = select_source(sample, target, pool.groups, section, "any", {})
    total = {name: int((pool.groups[sample.meta["dataset_rows"]] == name).sum())
             for name in ("near", "far")}
    assert {n: p["total"] for n, p in record["parts"].items()} == total
    assert record["keep_fraction"] == 0.5 and len(kept) == 15  # the default: half
    assert record["parts"]["near"]["kept"] == min(15, total["near"])  # near ranks first


def test_selection_options_without_a_selector_are_named_and_the_fraction_defaults_to_half():
    from graftlab.config import FitConfig, SelectConfig
    from graftlab.errors import ConfigError
    from graftlab.workflows.select import check_selector

    fit = FitConfig.model_validate({"data": {"path": "digits"},
                                    "select": {"keep_fraction": 0.3}})
    with pytest.raises(ConfigError, match=r"--keep-fraction .* given without a selector"):
        check_selector(fit.select)
    fit = FitConfig.model_validate({"data": {"path": "digits"}, "select": {"selector": "knn"}})
    assert fit.select.fraction == 0.5
    # `graftlab select`: naming a selector (or only a fraction) keeps the other default
    chosen = SelectConfig.model_validate({"data": {"pool": "a+b", "target": "t"},
                                          "select": {"selector": "kliep"}}).select
    assert (chosen.selector, chosen.fraction) == ("kliep", 0.5)
    chosen = SelectConfig.model_validate({"data": {"pool": "a+b", "target": "t"},
                                          "select": {"keep_fraction": 1}}).select
    assert (chosen.selector, chosen.fraction) == ("knn", 1.0)


def test_the_curve_scores_target_labels_by_class_name(caplog):
    from graftlab.data import Domain
    from graftlab.workflows.select import _pool_codes

    target = Domain("t", "text", ["a", "b", "c"], labels=np.array([0, 1, 2]),
                    classes=["3", "7", "cat"])
    codes = _pool_codes(target, [str(d) for d in range(10)])
    assert codes.tolist() == [3, 7, -1]  # the target's own ids would have been 0, 1, 2
    assert "no samples of the target's class(es) cat" in caplog.text
    assert _pool_codes(target, ["dog", "wolf"]) is None
    assert "none of the pool's" in caplog.text


def test_a_selector_of_pool_parts_is_refused_where_there_is_one_data_set():
    from graftlab.config import SelectSection
    from graftlab.errors import ConfigError
    from graftlab.workflows.select import check_selector

    section = SelectSection(selector="task_similarity")
    with pytest.raises(ConfigError, match="scores the named parts of a pool") as exc:
        check_selector(section, pooled=False)
    assert "knn" in exc.value.hint and "task_similarity" not in exc.value.hint.split(";")[0]
    check_selector(section)  # a pool (adapt, select): fine


def test_a_selection_that_keeps_too_few_is_blamed_not_the_limit():
    from graftlab.data import Domain
    from graftlab.errors import ConfigError
    from graftlab.workflows.common import check_source_size

    kept = Domain("s", "image", np.zeros((6, 4, 4, 3), np.uint8), labels=np.arange(6) % 3,
                  classes=["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"selection by knn at keep fraction 0.2 kept too "
                       r"few: source 's' has 6 samples of 3 classes") as exc:
        check_source_size(kept, 0.1, 300, selected="selection by knn at keep fraction 0.2")
    assert "--keep-fraction" in exc.value.hint and "--limit" not in str(exc.value)


def test_parts_whose_class_names_partly_overlap_are_refused(tmp_path):
    """{cat, dog} and {dog, zebra}: by position b's dog would become cat; refused, naming
    both lists (disjoint names, as a relabelled poisoned part has, still go by position)."""
    for part, labels in [("a", ("cat", "dog")), ("b", ("dog", "zebra"))]:
        for label in labels:
            (tmp_path / part / label).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
                tmp_path / part / label / "0.png")
    with pytest.raises(DataError, match=r"they share \['dog'\] but not the rest"):
        load_pool(str(tmp_path))


def test_a_table_row_without_a_part_is_named(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label,source\ngood film,pos,movies\nbad film,neg,\n"
                    "nice phone,pos,amazon\nbroken,neg,amazon\n")
    with pytest.raises(DataError, match=r"1 row\(s\) name no part in column 'source' "
                                        r"\(line\(s\) 3\)"):
        load_pool(str(path))


def test_target_samples_found_in_the_pool_are_left_out_and_a_target_part_refused(tmp_path,
                                                                                  caplog):
    from graftlab.data import load_data

    path = tmp_path / "pool.csv"
    path.write_text("text,label,source\ngood film,pos,movies\nbad film,neg,movies\n"
                    "nice phone,pos,amazon\nbroken,neg,amazon\nfine,pos,amazon\n")
    target = tmp_path / "target.csv"
    target.write_text("text,label\nnice phone,pos\ngreat tweet,pos\nsad tweet,neg\n")
    pool = load_pool(str(path), target=load_data(target))
    assert pool.duplicates == {"amazon": 1} and "nice phone" not in pool.domain().inputs
    assert "as samples also in the target: 1 of amazon" in caplog.text
    whole = tmp_path / "whole.csv"
    whole.write_text("text,label\ngood film,pos\nbad film,neg\n")
    with pytest.raises(DataError, match="every sample of pool part 'movies' is also in the "
                                        "target"):
        load_pool(str(path), target=load_data(whole))
