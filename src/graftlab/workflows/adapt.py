"""``graftlab adapt``: source_only and the chosen methods on labelled source + unlabelled target,
label-free selection, and the negative-transfer guard.

Every run trains ``source_only`` beside the methods. The label-free validators score them;
the rank vote of information maximisation, SND and ensemble agreement picks one; when
it picks ``source_only``, or the pick loses held-out source accuracy, adaptation is judged to
hurt and the source-only model is kept (``guard=False`` keeps the best adaptation instead).
Otherwise, with two methods or more, the kept model is the refined student (``keep="auto"``
or ``"refined"``; :mod:`graftlab.adapt.refine`): the adapted models' consensus, outliers left
out, pseudo-labels the target's confident samples, and the member with the highest information
maximisation trains again on them beside the source. ``keep="average"`` keeps the mean
probabilities of all adapted models (outliers included), ``keep="selected"`` the pick alone.
The guard's source check applies to the student as well: if it loses more than 5 points of
held-out source accuracy against source_only, the guarded pick is kept instead. And the guard
checks the student for collapse: when its SND (soft neighbourhood density, a validator) is
above source_only's, the target was most often drawn into wrong, tight clusters, and
source_only is kept (chosen on 28 pairs and measured on unseen ones: BENCHMARKS.md "Domain
adaptation", round 4). When the target seems to lack some source classes (source_only
predicts them under half as often as its most predicted class: the partial-label check of
:mod:`graftlab.evaluate.selection`) and ``pada`` is among the methods, a method, the student
or the average that draws more of the target onto them than source_only is left out
(unweighted alignment does that on a partial target; PADA weighs those classes down), and
held-out source accuracy is counted on the classes left, so PADA is not refused for the
classes it gave up on purpose. Without ``pada`` the report says which classes look absent.
Every validator's pick is reported.
Target labels, when the target has them, are read only to report target accuracy and how
often each validator's pick matches the oracle's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from graftlab import _atomic
from graftlab.adapt.adapter import Adapter
from graftlab.evaluate.validators import (ensemble_agreement, mmd, proxy_a_distance,
                                       validate)
from graftlab.data.domain import Domain, dataset_rows, without_shared
from graftlab.evaluate.selection import (MAX_DRAWN, absent_mass, class_scores, collapsed,
                                         loses_source, mean_score, present_source_accuracy,
                                         select)
from graftlab.report.run import environment
from graftlab.track import Tracker, check_tracker, open_tracker
from graftlab.workflows.adapt_checks import (_check_labels, check_keep, check_methods,
                                             check_options, check_setups,
                                             check_target_holdout, check_target_size)

Progress = Callable[[str, int, int], None]


class AdaptInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during ``graftlab adapt``, after the finished runs were written
    (results.json, a report.md of them); nothing was selected, no model kept."""

    def __init__(self, results: dict, folder: Path) -> None:
        self.results, self.folder = results, folder
        super().__init__(f"interrupted; the finished runs are in {folder}/report.md")


def interrupted_report(results: dict) -> str:
    """report.md of an interrupted adaptation: the runs that finished, and what did not."""
    from graftlab.report import markdown_table

    finished = results["runs"] + results.get("refined", [])
    held = all("heldout_target_accuracy" in r for r in finished)
    rows = []
    for r in finished:
        row = {"method": r["method"] if r["method"] != "refined" else
               f"refined ({r.get('student')})", "seed": r["seed"],
               "held-out source accuracy %": round(100 * r["source_accuracy"], 1)}
        if "target_accuracy" in r:
            key = "heldout_target_accuracy" if held else "target_accuracy"
            row["target accuracy %" + (" (held out)" if held else "")] = round(100 * r[key], 1)
        row.update({v: round(float(x), 3) for v, x in r.get("validators", {}).items()})
        rows.append(row)
    return (f"# Domain adaptation: interrupted\n\n{results['source']['name']} -> "
            f"{results['target']['name']}. Stopped after {len(finished)} of "
            f"{results['planned_runs']} runs, so no method was selected and no model kept. "
            "Re-run the command to finish (this folder: `--out` it with `--overwrite`)."
            f"\n\nRuns that finished:\n\n{markdown_table(rows)}\n")


@dataclass
class SeedData:
    """One seed's data: the source split into training and held-out parts; the target split
    (at random, never by its labels) into the part adaptation trains on and, when the target
    has labels to score with, a held-out part no training sees."""

    src_train: Domain
    src_val: Domain
    target: Domain  # unlabelled: what the methods adapt to
    y_target: np.ndarray | None
    held: Domain | None = None  # unlabelled, never trained on; scored with y_held
    y_held: np.ndarray | None = None
    src_weight: np.ndarray | None = None  # a selection's weights of src_train's samples

    @classmethod
    def split(cls, source: Domain, target: Domain, y_t: np.ndarray | None, seed: int,
              holdout: float, target_holdout: float,
              source_weight: np.ndarray | None = None) -> SeedData:
        tr, va = train_test_split(np.arange(len(source)), test_size=holdout, random_state=seed,
                                  stratify=source.labels)
        parts = (source.subset(tr), source.subset(va))
        weight = None if source_weight is None else np.asarray(source_weight)[tr]
        if y_t is None or not target_holdout:
            return cls(*parts, target, y_t, src_weight=weight)
        adapt, held = train_test_split(np.arange(len(target)), test_size=target_holdout,
                                       random_state=seed)  # no stratify: labels only score
        adapt, held = np.sort(adapt), np.sort(held)
        return cls(*parts, target.subset(adapt), y_t[adapt], target.subset(held), y_t[held],
                   weight)


def run_adapt(source: Domain, target: Domain, *, methods: list[str], seeds: int = 1,
              first_seed: int = 0, holdout: float = 0.1, target_holdout: float = 0.2,
              guard: bool = True, keep: str = "auto", label_map: dict[str, str] | None = None,
              folder: Path | None = None, progress: Progress | None = None,
              tracker: Tracker | None = None, source_weight: np.ndarray | None = None,
              **adapter_kw: Any) -> dict:
    """Train source_only and ``methods`` for each seed; score, select, guard; return results
    (and write results.json into ``folder`` after every run when given). ``label_map``
    renames target classes to source ones (target labels only ever score the result).
    When the target has labels, a random ``target_holdout`` share of it is held out of
    training in each seed: every model is scored on the part it adapted to (transductive,
    ``target_accuracy``) and on that held-out part (``heldout_target_accuracy``).
    Samples that one domain was made from the other's (mnist_m from mnist) are dropped first.
    ``keep="refined"`` trains and keeps a student self-trained on the adapted models'
    consensus (see :mod:`graftlab.adapt.refine`), ``keep="average"`` keeps the average of the
    adapted models (see :mod:`graftlab.adapt.average`), unless the guard keeps source_only;
    both need two methods or more. ``"auto"`` (the default) is ``"refined"`` when there are
    two methods or more, else the selected one. ``tracker``: one nested run per model trained
    (:mod:`graftlab.track`). ``source_weight``: one weight >= 0 per source sample (a weighting
    selection's), which every model's source loss uses."""
    chosen = check_methods(methods)
    tracker = tracker or Tracker()
    check_options(adapter_kw)
    check_setups(chosen, adapter_kw)
    check_keep(keep, chosen)
    check_target_holdout(target_holdout)
    if source_weight is not None:
        from graftlab.select import check_weights

        source_weight = check_weights(source_weight, len(source), "source sample weights")
    reduced, target, dropped = without_shared(source, target)
    if source_weight is not None and dropped["source"]:
        source_weight = source_weight[np.isin(dataset_rows(source), dataset_rows(reduced))]
    source = reduced
    target = _check_labels(source, target, label_map)
    check_target_size(target, target_holdout, warn=folder is None)  # the command warned
    y_t = target.labels if target.labelled else None
    target_in = target.unlabelled()
    if target_in.origin is None:  # a root of its own: predictions then read the feature cache
        target_in = target_in.subset(np.arange(len(target_in)))
    results: dict[str, Any] = {
        "format": "graftlab.adapt/2", "status": "running", "source": source.describe(),
        "target": {**target_in.describe(), "labelled_for_evaluation": y_t is not None,
                   "held_out": target_holdout if y_t is not None else 0.0},
        "dropped_shared": dropped, "methods": chosen, "keep": keep,
        "label_map": label_map or {},
        "config": {k: v for k, v in adapter_kw.items() if k != "callbacks"},
        "environment": environment(), "runs": [], "average": [], "refined": []}
    tracker.log_params({k: results[k] for k in ("source", "target", "methods", "keep")}
                       | {"seeds": seeds, "guard": guard, **results["config"]})
    mode = keep if keep != "auto" else "refined" if len(chosen) > 2 else "selected"
    total, t0 = seeds * (len(chosen) + (mode == "refined")), time.perf_counter()
    models: dict[str, Adapter] = {}
    try:
        for seed in range(first_seed, first_seed + seeds):
            data = SeedData.split(source, target_in, y_t, seed, holdout, target_holdout,
                                  source_weight)
            _run_seed(results, models if seed == first_seed else {}, data, seed, chosen,
                      mode == "refined", adapter_kw, (folder, progress, total), tracker)
    except KeyboardInterrupt:
        if folder is None or not results["runs"]:
            raise
        results["status"] = "interrupted"
        results["planned_runs"] = total
        _write(folder, results)
        _atomic.write_text(folder / "report.md", interrupted_report(results))
        raise AdaptInterrupted(results, folder) from None
    results.update(select(results["runs"], chosen, guard))
    if mode == "refined" and not _student_passes(results, guard):
        mode = "selected"  # keep the guarded pick instead
    if mode == "average" and not _average_passes(results, guard):
        mode = "selected"
    results["kept"] = results["selected"] if results["guard"]["kept_source_only"] or \
        mode == "selected" else mode
    if results["kept"] == "refined" and collapsed(results, guard):
        results["kept"] = "source_only"
    results["status"] = "complete"
    results["seconds_total"] = time.perf_counter() - t0
    # the kept model's representation when it is one model, else the selected one's
    results["shown"] = results["kept"] if results["kept"] in ("refined", "source_only") \
        else results["selected"]
    results["distances"] = _distances(models, results["shown"], source, target_in)
    results["_models"] = models
    return results


def _average_passes(results: dict, guard: bool) -> bool:
    """Whether the guard lets the average of the adapted models be kept: not when it would
    hold methods the partial-label check left out (recorded as ``average_rejected``)."""
    partial = results.get("partial")
    if guard and partial and partial["acts"] and partial["flagged"]:
        results["guard"]["average_rejected"] = partial["flagged"]
        return False
    return True


def _student_passes(results: dict, guard: bool) -> bool:
    """The guard's source check on the refined student (it is not the vote's pick): its
    held-out source accuracy against source_only's, on the classes the target seems to hold
    when the partial-label check acts; and that check's own tests: whether the student drew
    more of the target onto those classes than source_only, and whether it learned from (or
    is) a method the check left out (as the average is refused). Records what it measured in
    ``results["guard"]``; False (keep the guarded pick) only with the guard on."""
    partial, student = results.get("partial"), results["refined"]
    acts = bool(partial and partial["acts"])
    if acts:
        absent = partial["absent"]
        drop = partial["present_source_accuracy"]["source_only"] - \
            present_source_accuracy(student, "refined", absent)
        drawn = absent_mass(student, "refined", absent) - \
            absent_mass(results["runs"], "source_only", absent)
        results["guard"]["refined_drawn"] = drawn
        taught = sorted({m for r in student for m in [*r["members"], r["student"]]}
                        & set(partial["flagged"]))
    else:
        drop = mean_score(results["runs"], "source_only", "source_accuracy") - \
            float(np.mean([r["source_accuracy"] for r in student]))
        drawn, taught = 0.0, []
    results["guard"]["refined_source_drop"] = drop
    if guard and taught:
        results["guard"]["refined_taught_by_flagged"] = taught
    if guard and (loses_source(drop) or drawn > MAX_DRAWN or taught):
        results["guard"]["refined_rejected"] = True
        return False
    return True


def _run_seed(results: dict, models: dict[str, Adapter], data: SeedData, seed: int,
              chosen: list[str], refining: bool, adapter_kw: dict,
              out: tuple[Path | None, Progress | None, int], tracker: Tracker) -> None:
    """One seed: every method trained and scored, then (with two methods or more) the
    ensemble agreement, the average's scores and the refined student; the models go into
    ``models`` (the caller's for the first seed, a throw-away dict for the others)."""
    folder, progress, total = out
    adapted = chosen[1:]
    weights = _shared_weights(data.src_train, data.src_val, data.target, adapter_kw)
    scored: dict[str, Scored] = {}
    for method in chosen:
        if progress:
            progress(f"[{len(results['runs']) + 1}/{total}] {method} seed {seed}",
                     len(results["runs"]), total)
        t = time.perf_counter()
        with tracker.nested(f"{method} seed {seed}") as sub:
            adapter = Adapter(method=method, seed=seed,
                              **_tracked(_own_checkpoints(adapter_kw, method, seed), sub))
            adapter.fit(data.src_train, data.src_train.labels, target=data.target,
                        sample_weight=data.src_weight)
            scored[method] = _score(adapter, data, weights)
            scored[method].run.update(method=method, seed=seed, seconds=time.perf_counter() - t,
                                      trainable_params=int(adapter.trainable_params_),
                                      history=adapter.history_, **adapter.method_summary_)
            sub.log_metrics({**scored[method].run, **scored[method].run["validators"]})
        results["runs"].append(scored[method].run)
        if "classes" not in results:  # PADA's class weights follow this order
            from graftlab.workflows.common import class_names

            results["classes"] = [str(c) for c in class_names(data.src_train,
                                                              adapter.classes_)]
        models[method] = adapter
        _write(folder, results)
    if len(adapted) < 2:  # one method's agreement with itself says nothing
        return
    probs = {m: scored[m].target for m in chosen}
    for method, agreement in zip(chosen, ensemble_agreement(list(probs.values()),
                                                             list(range(1, len(chosen)))),
                                 strict=True):
        scored[method].run["validators"]["ensv"] = agreement
    results["average"].append(_average_scores(seed, [scored[m] for m in adapted],
                                              models["source_only"].classes_, data))
    if refining:
        with tracker.nested(f"refined seed {seed}") as sub:
            run, student = _refine(results, adapted, probs, seed, data, weights,
                                   _tracked(adapter_kw, sub), progress, total)
            sub.log_metrics({**run, **run["validators"]})
        results["refined"].append(run)
        models["refined"] = student
        _write(folder, results)


def _write(folder: Path | None, results: dict) -> None:
    if folder is not None:
        _atomic.write_json(folder / "results.json", results)


def _tracked(adapter_kw: dict, run: Tracker) -> dict:
    """The options with the tracked run's callback added to the caller's callbacks."""
    return {**adapter_kw, "callbacks": [*(adapter_kw.get("callbacks") or []), run.callback()]}


def _shared_weights(src_train: Domain, src_val: Domain, target: Domain, adapter_kw: dict
                    ) -> np.ndarray:
    """Importance weights of the held-out source samples from the frozen backbone's features:
    one density-ratio estimate for every candidate, so their iwv scores compare (weights
    from each model's own features differ from model to model, and adapted features that
    hide the domain make their weights, and so their scores, incomparable)."""
    from graftlab.evaluate.validators import importance_weights
    from graftlab.features import extract_features

    name = adapter_kw.get("backbone", "efficientnet_lite0")
    options = adapter_kw.get("backbone_options")
    f_val, f_s, f_t = (np.asarray(extract_features(name, d, backbone_options=options))
                       for d in (src_val, src_train, target))
    return importance_weights(f_val, f_s, f_t)


@dataclass
class Scored:
    """A model's scores (``run``) and its probabilities on the target it adapted to, the
    held-out source and the held-out target (None without one)."""

    run: dict
    target: np.ndarray
    val: np.ndarray
    held: np.ndarray | None


def _score(adapter: Adapter, data: SeedData, weights: np.ndarray | None = None) -> Scored:
    """The run's scores: validators, held-out source accuracy, and target accuracy when the
    target's labels are known (on the target adapted to, and on the held-out part)."""
    probs_t = adapter.predict_proba(data.target)
    f_t, f_s = adapter.transform(data.target), adapter.transform(data.src_train)
    f_v, probs_v = adapter.transform(data.src_val), adapter.predict_proba(data.src_val)
    labels_v = np.searchsorted(adapter.classes_, data.src_val.labels)
    run = {"validators": validate(probs_t, f_t, features_s=f_s, features_val_s=f_v,
                                  probs_val_s=probs_v, labels_val_s=labels_v, weights=weights),
           "source_accuracy": _accuracy(data.src_val.labels, adapter.classes_, probs_v),
           **class_scores(probs_t, probs_v, data.src_val.labels, adapter.classes_)}
    held = adapter.predict_proba(data.held) if data.held is not None else None
    _target_scores(run, adapter.classes_, data, probs_t, held)
    return Scored(run, probs_t, probs_v, held)


def _accuracy(labels: np.ndarray, classes: np.ndarray, probs: np.ndarray) -> float:
    return float(accuracy_score(labels, classes[probs.argmax(1)]))


def _target_scores(run: dict, classes: np.ndarray, data: SeedData, probs_t: np.ndarray,
                   probs_h: np.ndarray | None) -> None:
    """Target accuracy on the part adapted to and on the held-out part, where labels exist."""
    if data.y_target is not None:
        run["target_accuracy"] = _accuracy(data.y_target, classes, probs_t)
    if probs_h is not None:
        run["heldout_target_accuracy"] = _accuracy(data.y_held, classes, probs_h)


def _own_checkpoints(adapter_kw: dict, run: str, seed: int) -> dict:
    """Each run checkpoints into its own subfolder of ``checkpoint_dir``: one shared folder
    would let a run resume from another method's finished checkpoint and train nothing."""
    folder = adapter_kw.get("checkpoint_dir")
    if folder is None:
        return adapter_kw
    return {**adapter_kw, "checkpoint_dir": str(Path(folder) / f"{run}_seed{seed}")}


def _refine(results: dict, adapted: list[str], probs: dict[str, np.ndarray], seed: int,
            data: SeedData, weights: np.ndarray, adapter_kw: dict, progress: Progress | None,
            total: int, student_by: str = "info_max") -> tuple[dict, Adapter]:
    """The seed's refinement (:mod:`graftlab.adapt.refine`): the consensus of the adapted
    models that are not outliers teaches a student (by default the one of them with the
    highest information maximisation), trained again on source + the teacher's
    pseudo-labels."""
    from graftlab.adapt import refine

    runs = {r["method"]: r for r in results["runs"] if r["seed"] == seed}
    fraction = adapter_kw.get("pseudo_fraction", 0.5)
    step = refine.plan({m: probs[m] for m in adapted},
                       {m: runs[m]["validators"]["info_max"] for m in adapted}, fraction,
                       student_by)
    if progress:
        progress(f"refine: {step['student']} on the consensus of {', '.join(step['members'])}"
                 f" seed {seed}", len(results["runs"]), total)
    t = time.perf_counter()
    student = Adapter(method=step["student"], seed=seed,
                      **_own_checkpoints(adapter_kw, f"refined_{step['student']}", seed))
    student.fit(data.src_train, data.src_train.labels, target=data.target,
                teacher_proba=step["teacher"], sample_weight=data.src_weight)
    run = _score(student, data, weights).run
    run.update(method="refined", seed=seed, student=step["student"], student_by=student_by,
               members=step["members"],
               outliers=step["outliers"], agreement=step["agreement"], margin=step["margin"],
               pseudo_labels=step["pseudo_labels"], seconds=time.perf_counter() - t,
               trainable_params=int(student.trainable_params_))
    if data.y_target is not None:
        run["teacher_accuracy"] = _accuracy(data.y_target, student.classes_, step["teacher"])
    return run, student


def _average_scores(seed: int, members: list[Scored], classes: np.ndarray, data: SeedData
                    ) -> dict:
    """Held-out source (and, with labels, target) accuracy of the adapted models' average."""
    mean = {part: np.mean([getattr(m, part) for m in members], axis=0)
            if getattr(members[0], part) is not None else None
            for part in ("target", "val", "held")}
    out = {"seed": seed, "source_accuracy": _accuracy(data.src_val.labels, classes,
                                                      mean["val"])}
    _target_scores(out, classes, data, mean["target"], mean["held"])
    return out


def _distances(models: dict[str, Adapter], selected: str, source: Domain, target: Domain
               ) -> dict:
    """Distances between the domains on the same samples: in the frozen backbone's pooled
    features (before), and in the trained representation (what the methods align: with an
    mlp head its bottleneck) of source_only and of the selected model (after)."""
    from graftlab.features import extract_features

    rng = np.random.default_rng(0)
    s_idx = np.sort(rng.choice(len(source), min(500, len(source)), replace=False))
    t_idx = np.sort(rng.choice(len(target), min(500, len(target)), replace=False))
    s, t = source.subset(s_idx), target.subset(t_idx)
    ref = models["source_only"]
    before = [np.asarray(extract_features(ref.backbone, d, backbone_options=ref.backbone_options))
              for d in (s, t)]
    plain = [ref.transform(d) for d in (s, t)]
    after = [models[selected].transform(d) for d in (s, t)]
    return {"before": {"proxy_a_distance": proxy_a_distance(*before), "mmd": mmd(*before)},
            "source_only": {"proxy_a_distance": proxy_a_distance(*plain), "mmd": mmd(*plain)},
            "after": {"proxy_a_distance": proxy_a_distance(*after), "mmd": mmd(*after),
                      "model": selected}}


def adapt_to_folder(source: Domain, target: Domain, *, methods: list[str],
                    runs_dir: str | Path = "runs", out: str | Path | None = None,
                    overwrite: bool = False, feature_map: bool = True,
                    progress: Progress | None = None, limit: int | None = None,
                    track: str | None = None, **kw: Any) -> dict:
    """run_adapt, then the run folder: results.json, report.html/.md, the kept model.

    Options, the backbone, the output location and the data are checked before the folder
    exists; an error after that marks it ``failed`` (or removes it if no run finished)."""
    from graftlab.workflows.common import (check_backbone, check_modality, check_source_size, run_folder)

    chosen = check_methods(methods)
    selection = kw.pop("selection", None)  # what a source selection kept, for the report
    check_options(kw)
    check_setups(chosen, kw)
    check_keep(kw.get("keep", "auto"), chosen)
    _check_labels(source, target, kw.get("label_map"))  # modality first, then labels
    check_target_size(target, kw.get("target_holdout", 0.2))
    options = kw.get("backbone_options") or {}
    backbone = kw.get("backbone", "efficientnet_lite0")
    modality = check_backbone(backbone, image_size=options.get("image_size"),
                              max_length=options.get("max_length"))
    check_modality(source, modality, backbone, "source")
    check_source_size(source, kw.get("holdout", 0.1), limit)
    check_tracker(track)
    with run_folder(out, runs_dir, overwrite, "adapt") as folder, \
            open_tracker(track, folder, run_name=folder.name, outputs=True) as tracker:
        return _to_folder(source, target, folder, chosen, methods=methods,
                          feature_map=feature_map, progress=progress, tracker=tracker,
                          selection=selection, **kw)


def _named(grafter, source: Domain):
    """A copy of ``grafter`` (trained on class ids) that predicts the user's label names, as
    a model saved by ``graftlab fit`` does; a regressor as it is."""
    import copy

    from graftlab.train.targets import ClassTargets
    from graftlab.workflows.common import class_names

    if not isinstance(grafter.targets_, ClassTargets) or not source.classes:
        return grafter
    names = np.asarray(class_names(source, grafter.classes_))
    order = np.argsort(names, kind="stable")  # sorted, as a fitted model's classes are
    named = copy.copy(grafter)
    linears = [m for m in grafter.model_.head.modules() if isinstance(m, torch.nn.Linear)]
    if (order != np.arange(len(order))).any() and linears and \
            linears[-1].out_features == len(order):  # the output rows, in the names' order
        named.model_ = copy.deepcopy(grafter.model_)
        last = [m for m in named.model_.head.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.copy_(last.weight[torch.as_tensor(order)])
            last.bias.copy_(last.bias[torch.as_tensor(order)])
        names = names[order]
    named._set_targets(ClassTargets(names), np.zeros(0))
    return named


def _to_folder(source: Domain, target: Domain, folder: Path, chosen: list[str], *,
               methods: list[str], feature_map: bool, progress: Progress | None,
               selection: dict | None = None, **kw: Any) -> dict:
    from graftlab.report.adapt import domain_map, write_report

    results = run_adapt(source, target, methods=methods, folder=folder, progress=progress, **kw)
    models = results.pop("_models")
    if selection is not None:
        results["selection"] = selection
    if results["kept"] == "average":
        from graftlab.adapt.average import AveragedModel

        AveragedModel({m: _named(models[m].grafter_, source)
                       for m in chosen[1:]}).save(folder / "model")
        results["model"] = {"method": "average", "members": chosen[1:],
                            "seed": kw.get("first_seed", 0), "folder": "model",
                            "load_with": "graftlab.adapt.average.AveragedModel.load"}
    else:  # one model: the refined student or the selected method
        _named(models[results["kept"]].grafter_, source).save(folder / "model")
        results["model"] = {"method": results["kept"], "seed": kw.get("first_seed", 0),
                            "folder": "model", "load_with": "graftlab.Grafter.load"}
        if results["kept"] == "refined":
            student = results["refined"][0]
            results["model"].update(student=student["student"], members=student["members"])
    results["run_folder"] = str(folder)
    _atomic.write_json(folder / "results.json", results)
    write_report(folder, results, None)  # a report even if Ctrl-C comes during the map
    if feature_map:
        if progress:
            progress("2-D map of source and target (t-SNE)", 0, 1)
        figure = domain_map(models, results["shown"], source, target.unlabelled())
        write_report(folder, results, figure)
    return results
