"""MultiTaskGrafter: masks, weightings, one forward pass, save/load, and its error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graftlab.errors import ConfigError, DataError, NotFittedError, NotFoundError
from graftlab.methods.multitask import PCGrad, Uncertainty, project_conflicts
from graftlab.multitask import MultiTaskGrafter, join_tasks

TEXTS = ["a great film", "awful and dull", "truly wonderful", "boring mess", "lovely acting",
         "terrible plot"] * 4
SENT = ["pos", "neg"] * 12
RATE = [3.0 - 6.0 * (i % 2) + 0.1 * i for i in range(24)]
TASKS = {"sentiment": "classification", "rating": "regression"}
OPTS = {"max_length": 16}


def _y():
    """Sentiment missing on every third text, the rating on others."""
    return {"sentiment": [s if i % 3 else None for i, s in enumerate(SENT)],
            "rating": [r if i % 3 != 1 else np.nan for i, r in enumerate(RATE)]}


def _fit(**kw):
    opts = {"tasks": TASKS, "shared": 16, "epochs": 4, "batch_size": 8, "lr": 3e-3,
            "backbone_options": OPTS, **kw}
    return MultiTaskGrafter(**opts).fit(TEXTS, _y())


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "pcgrad"])
def test_each_weighting_learns_both_tasks_from_partly_labelled_samples(weighting):
    m = _fit(weighting=weighting)
    scores = m.score(TEXTS, {"sentiment": SENT, "rating": RATE})
    assert scores["sentiment"]["accuracy"] >= 0.8 and scores["sentiment"]["n"] == 24
    assert scores["rating"]["pearson_r"] > 0.6
    pred = m.predict(TEXTS[:5])
    assert set(pred) == {"sentiment", "rating"} and pred["rating"].shape == (5,)
    assert set(pred["sentiment"]) <= {"pos", "neg"}
    if weighting == "uncertainty":
        assert set(m.record_["log_variances"]) == {"sentiment", "rating"}


def test_one_forward_pass_gives_every_task(monkeypatch):
    m = _fit(epochs=1)
    calls = []
    head = m.model_.head
    monkeypatch.setattr(head, "forward", lambda x, mask=None: calls.append(x) or
                        head.classify(head.embed(x)))
    out = m.decision_function(TEXTS[:3])
    assert len(calls) == 1 and out["sentiment"].shape == (3, 2) and out["rating"].shape == (3, 1)


def test_a_missing_label_adds_nothing_to_its_tasks_loss():
    m = _fit(epochs=1)
    y = _y()
    y["rating"] = [100.0 if np.isnan(r) else r for r in y["rating"]]
    again = MultiTaskGrafter(**m.get_params()).fit(TEXTS, _y())
    np.testing.assert_allclose(again.decision_function(TEXTS)["rating"],
                               m.decision_function(TEXTS)["rating"], atol=1e-6)
    changed = MultiTaskGrafter(**m.get_params()).fit(TEXTS, y)
    assert not np.allclose(changed.decision_function(TEXTS)["rating"],
                           m.decision_function(TEXTS)["rating"])


def test_validation_reports_each_task_over_its_labelled_rows():
    m = _fit(epochs=2, validation_fraction=0.25)
    last = m.history_[-1]
    assert {"val_loss", "val_sentiment_loss", "val_sentiment_accuracy", "val_rating_mse"} <= \
        set(last)
    assert 0.0 <= last["val_sentiment_accuracy"] <= 1.0
    assert not any(k.endswith("_labelled") for k in last)


@pytest.mark.parametrize("strategy", ["head_only", "last_k"])
def test_save_and_load_give_the_same_predictions(tmp_path, strategy):
    m = _fit(epochs=1, strategy=strategy, k=1, weighting="pcgrad")
    folder = m.save(tmp_path / "mt")
    config = json.loads((folder / "config.json").read_text())
    assert config["estimator"] == "MultiTaskGrafter"
    assert [t["name"] for t in config["outputs"]] == ["sentiment", "rating"]
    assert config["outputs"][0]["classes"] == ["neg", "pos"]
    assert config["outputs"][1]["columns"] == [2, 3]
    loaded = MultiTaskGrafter.load(folder)
    for task, out in m.decision_function(TEXTS).items():
        np.testing.assert_allclose(loaded.decision_function(TEXTS)[task], out, atol=1e-5)
    assert list(loaded.predict(TEXTS)["sentiment"]) == list(m.predict(TEXTS)["sentiment"])


def test_pcgrad_removes_the_conflicting_component():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    out = project_conflicts(g)
    assert float(out[0] @ g[1]) >= -1e-6 and float(out[1] @ g[0]) >= -1e-6
    agreeing = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert torch.equal(project_conflicts(agreeing), agreeing)


def test_pcgrad_loss_keeps_its_value_and_gives_the_projected_gradient():
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    losses = {"a": w[0] * 1.0, "b": -w[0] + w[1]}  # gradients (1, 0) and (-1, 1): conflict
    loss = PCGrad(["a", "b"]).combine(losses, [w])
    assert float(loss.detach()) == pytest.approx(1.0)
    loss.backward()
    expected = project_conflicts(torch.tensor([[1.0, 0.0], [-1.0, 1.0]])).sum(0)
    torch.testing.assert_close(w.grad, expected)


def test_uncertainty_weighting_is_kendalls_formula():
    u = Uncertainty(["a", "b"])
    with torch.no_grad():
        u.log_vars.copy_(torch.tensor([0.0, np.log(4.0)]))
    loss = u.combine({"a": torch.tensor(2.0), "b": torch.tensor(8.0)}, [])
    assert float(loss.detach()) == pytest.approx(2.0 / 2 + 8.0 / 8 + np.log(4.0) / 2)


def test_join_tasks_merges_texts_labelled_in_different_files():
    x, y = join_tasks({"sentiment": (["good", "bad"], ["pos", "neg"]),
                       "rating": (["bad", "meh"], [-2.0, 0.1])})
    assert x == ["good", "bad", "meh"]
    assert y == {"sentiment": ["pos", "neg", None], "rating": [None, -2.0, 0.1]}
    with pytest.raises(DataError, match="labelled both 'pos' and 'neg'"):
        join_tasks({"s": (["good", "good"], ["pos", "neg"])})
    assert join_tasks({"s": (["good", "good"], ["pos", "neg"])}, conflicts="first") == \
        (["good"], {"s": ["pos"]})


# ---------------------------------------------------------------- errors
def test_a_task_name_used_twice_is_refused():
    tasks = [{"name": "s", "type": "classification"}, {"name": "s", "type": "regression"}]
    with pytest.raises(ConfigError, match="task name 's' is used twice"):
        MultiTaskGrafter(tasks=tasks).fit(TEXTS, {"s": SENT})


def test_a_sample_with_no_label_for_any_task_is_refused():
    y = _y()
    y["sentiment"][1] = None  # row 1's rating is already missing
    with pytest.raises(DataError, match=r"1 samples carry no label for any task \(rows \[1\]\)"):
        MultiTaskGrafter(tasks=TASKS, backbone_options=OPTS).fit(TEXTS, y)


def test_a_head_that_does_not_fit_the_task_is_refused():
    tasks = {"sentiment": {"type": "classification", "head": "sequence"}}
    with pytest.raises(ConfigError, match="(?s)task 'sentiment' \\(classification\\) reads pooled "
                       "features, but head 'sequence' takes tokens input.*linear, mlp"):
        MultiTaskGrafter(tasks=tasks).fit(TEXTS, {"sentiment": SENT})


@pytest.mark.parametrize(("kw", "y", "error", "match"), [
    ({"tasks": {"s": "clasification"}}, {"s": SENT}, NotFoundError,
     "unknown task type 'clasification'.*Did you mean 'classification'"),
    ({"tasks": TASKS, "weighting": "gradnorm"}, _y(), NotFoundError,
     "unknown loss weighting 'gradnorm'"),
    ({"tasks": TASKS, "strategy": "linear_probe"}, _y(), ConfigError,
     "solves one linear head"),
    ({"tasks": {}}, {}, ConfigError, "no tasks given"),
    ({"tasks": TASKS}, {"sentiment": SENT, "stars": SENT}, DataError,
     r"labels for \['stars'\], which are not tasks"),
    ({"tasks": TASKS}, SENT, DataError, "targets are a dict"),
    ({"tasks": TASKS}, {"sentiment": SENT[:3]}, DataError, "3 labels for 24 inputs"),
])
def test_bad_input_is_explained(kw, y, error, match):
    with pytest.raises(error, match=match):
        MultiTaskGrafter(backbone_options=OPTS, **kw).fit(TEXTS, y)


def test_predict_before_fit_is_explained():
    with pytest.raises(NotFittedError, match="MultiTaskGrafter is not fitted yet"):
        MultiTaskGrafter(tasks=TASKS).predict(TEXTS)


def test_join_tasks_takes_a_domains_class_names_and_else_its_targets():
    from graftlab.data import Domain

    labelled = Domain("s", "text", ["good", "bad"], labels=[1, 0], classes=["neg", "pos"],
                      targets=np.array([2.0, -2.0]))
    rated = Domain("r", "text", ["bad", "meh"], targets=np.array([-2.0, 0.1]))
    _, y = join_tasks({"sentiment": (labelled, None), "rating": (rated, None)})
    assert y["sentiment"] == ["pos", "neg", None]
    assert y["rating"][0] is None and y["rating"][1:] == pytest.approx([-2.0, 0.1])


@pytest.mark.slow  # MiniLM through the ONNX exporter (~20 s)
def test_the_model_exports_as_one_onnx_graph_with_every_tasks_outputs(tmp_path):
    import onnxruntime as ort

    from graftlab.deploy.engines import ModelGraph
    from graftlab.features.onnx_backend import export_graph

    m = _fit(epochs=1)
    graph = ModelGraph([m.model_], list(m.model_.backbone.probe_batch()))
    batch = m.model_.backbone.preprocess(TEXTS[:5])
    sample = {n: batch[n] for n in graph.names}
    export_graph(graph, sample, tmp_path / "model.onnx", outputs={"outputs": {0: "batch"}},
                 text=True)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    (out,) = session.run(None, {n: t.numpy() for n, t in sample.items()})
    eager = m.decision_function(TEXTS[:5])
    layout = {t["name"]: t["columns"] for t in m.output_layout()}
    for task, (a, b) in layout.items():
        np.testing.assert_allclose(out[:, a:b], eager[task], atol=1e-4)


def test_it_clones_and_prints_like_a_scikit_learn_estimator():
    from sklearn.base import clone

    est = MultiTaskGrafter(tasks=TASKS, weighting="pcgrad", shared=8)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert "pcgrad" in repr(est)
