"""Joining the tasks' data by input: a text labelled twice in one task."""

from __future__ import annotations

import pytest

from graftlab.errors import DataError


def test_a_config_may_keep_the_first_of_two_labels_a_text_was_given(tmp_path):
    from graftlab.config import MultiTaskConfig
    from graftlab.workflows.multitask import load_tasks

    (tmp_path / "a.csv").write_text("text,label\ngood,pos\ngood,neg\nbad,neg\nfine,pos\n")
    (tmp_path / "b.csv").write_text("text,label\ngood,x\nbad,y\n")
    raw = {"tasks": [{"name": "a", "type": "classification", "data": str(tmp_path / "a.csv")},
                     {"name": "b", "type": "classification", "data": str(tmp_path / "b.csv")}]}
    with pytest.raises(DataError, match=r"conflicts: first"):
        load_tasks(MultiTaskConfig.model_validate(raw))
    inputs, labels = load_tasks(MultiTaskConfig.model_validate({**raw, "conflicts": "first"}))
    assert labels["a"][list(inputs).index("good")] == "pos"


def test_a_task_without_a_training_label_is_named_and_seeds_without_one_are_said():
    import numpy as np

    from graftlab.multitask.tasks import check_labels, tasks_from
    from graftlab.workflows.multitask import summarise

    tasks = tasks_from({"a": "classification", "r": "regression"})
    with pytest.raises(DataError, match="task 'r' has no labelled training sample"):
        check_labels(tasks, {"a": ["x", "y", "x"], "r": [None, None, None]}, 3)
    runs = [{"model": "m", "total_params": 1,
             "tasks": {"a": {"accuracy": 0.5, "n": 2}, **({"r": {"rmse": 1.0, "n": 2}}
                                                         if seed else {})}}
            for seed in range(2)]
    (row,) = summarise(runs)  # seed 0 had no test rating: no KeyError, and it is counted
    assert row["metrics"]["r.rmse"] == {"mean": 1.0, "std": 0.0, "seeds": 1}
    assert row["metrics"]["a.accuracy"]["seeds"] == 2 and np.isfinite(
        row["metrics"]["a.accuracy"]["mean"])


def _load(tmp_path, *tasks):
    from graftlab.config import MultiTaskConfig
    from graftlab.workflows.multitask import load_tasks

    return load_tasks(MultiTaskConfig.model_validate({"tasks": list(tasks)}))


def test_tasks_whose_data_cannot_serve_them_are_named_before_training(tmp_path):
    sent = tmp_path / "sent.csv"
    sent.write_text("text,label\ngood,pos\nbad,neg\nfine,pos\nawful,neg\n")
    rating = tmp_path / "rating.csv"
    rating.write_text("text,score\ngood,1.5\nbad,-2\n")
    # a classification task on numeric targets only
    with pytest.raises(DataError, match=r"task 'c' \(classification\): data "
                                        r"'vader_ratings:tweets' has no class labels; it holds "
                                        r"numeric targets(?s:.*)type: regression"):
        _load(tmp_path, {"name": "c", "type": "classification", "data": "vader_ratings:tweets"})
    # a misspelled target column is named, with the columns there are
    with pytest.raises(DataError, match=r"task 'r': column\(s\) 'nope' not found in .*; its "
                                        r"columns are: 'text', 'score'"):
        _load(tmp_path, {"name": "r", "type": "regression", "data": str(rating),
                         "target_column": "nope"})
    # texts and images: one model reads one kind
    with pytest.raises(DataError, match=r"different kinds of input \(s: text, d: image\)"):
        _load(tmp_path, {"name": "s", "type": "classification", "data": str(sent)},
              {"name": "d", "type": "classification", "data": "digits"})


def test_a_split_that_leaves_a_task_one_class_names_the_task():
    import numpy as np

    from graftlab.multitask.estimator import _fit_task
    from graftlab.multitask.tasks import tasks_from

    task = tasks_from({"topic": "classification"})["topic"]
    with pytest.raises(DataError, match=r"task 'topic': (?s:.*)change train.seed or test_size"):
        _fit_task("topic", task, np.array(["story", "story", None], dtype=object))
