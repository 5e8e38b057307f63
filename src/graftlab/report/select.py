"""The source-selection report: what each part of the pool kept, a picture of kept vs dropped
samples (PCA of the features, the target beside them), and the accuracy-vs-fraction-kept
curve when the target has labels to score it (labels the selector never saw)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graftlab.report.plots import _plt, color, to_svg
from graftlab.report.run import markdown_table


def kept_vs_dropped(f_pool: np.ndarray, kept: np.ndarray, groups: np.ndarray,
                    f_target: np.ndarray, max_points: int = 3000, seed: int = 0) -> str:
    """Two panels on one PCA of pool and target: kept (by part) and dropped, then the target."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    ps = rng.permutation(len(f_pool))[:max_points]
    pt = rng.permutation(len(f_target))[:max_points // 2]
    pca = PCA(2, random_state=seed).fit(np.vstack([f_pool[ps], f_target[pt]]))
    xy, xy_t = pca.transform(f_pool[ps]), pca.transform(f_target[pt])
    is_kept = np.isin(ps, kept)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
    axes[0].scatter(xy[~is_kept, 0], xy[~is_kept, 1], s=4, color="#bbbbbb", label="dropped",
                    linewidths=0)
    for i, name in enumerate(dict.fromkeys(groups.tolist())):
        sel = is_kept & (groups[ps] == name)
        axes[0].scatter(xy[sel, 0], xy[sel, 1], s=5, color=color(i), label=f"kept: {name}",
                        linewidths=0)
    axes[1].scatter(xy_t[:, 0], xy_t[:, 1], s=5, color="#333333", label="target", linewidths=0)
    for ax, title in zip(axes, ("pool: kept and dropped", "target"), strict=True):
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(markerscale=3, frameon=False, fontsize=7)
    return to_svg(fig)


def fraction_curve(rows: Sequence[dict], metric: str = "target_accuracy") -> str:
    """Target accuracy against the fraction of the pool kept, one line per selector."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, name in enumerate(dict.fromkeys(r["selector"] for r in rows)):
        mine = sorted((r for r in rows if r["selector"] == name and r[metric] is not None),
                      key=lambda r: r["fraction"])  # a point of one class has no accuracy
        ax.plot([r["fraction"] for r in mine], [100 * r[metric] for r in mine], "o-",
                color=color(i), label=name, markersize=4)
    ax.set_xlabel("fraction of the pool kept")
    ax.set_ylabel("target accuracy, %")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return to_svg(fig)


def selection_summary(record: dict, curve: Sequence[dict]) -> str:
    """Markdown: the kept-per-part table, the emptied parts named, the curve's table."""
    rows = [{"part": name, "kept": p["kept"], "of": p["total"],
             "kept %": round(100 * p["kept"] / p["total"], 1)}
            for name, p in record["parts"].items()]
    text = (f"# Source selection: {record['selector']}, keep fraction "
            f"{record['keep_fraction']}\n\nKept {record['kept']} of {record['pool']} pool "
            "samples.\n\n" + markdown_table(rows) + "\n")
    if record.get("dropped_shared"):
        text += ("\nLeft out before selection, as samples the target was made from (no target "
                 "image may blend one trained on): " + ", ".join(
                     f"{n} of {part}" for part, n in record["dropped_shared"].items())
                 + ".\n")
    if record.get("dropped_duplicates"):
        text += ("\nLeft out before selection, as samples also in the target: " + ", ".join(
            f"{n} of {part}" for part, n in record["dropped_duplicates"].items()) + ".\n")
    if record["emptied_parts"]:
        text += f"\nNo sample left of: {', '.join(record['emptied_parts'])}.\n"
    if record.get("part_scores"):
        text += "\nPart scores: " + ", ".join(f"{k} {v:.3f}" for k, v in
                                             record["part_scores"].items()) + "\n"
    text += "\n![kept vs dropped](kept_vs_dropped.svg)\n"
    if curve:
        text += ("\nTarget accuracy of a logistic regression on the kept features (target "
                 "labels score the curve only; the selector never reads them):\n\n"
                 + markdown_table([{**{k: r[k] for k in ("selector", "fraction", "kept")},
                                    "target_accuracy": "— (one class kept)"
                                    if r["target_accuracy"] is None else r["target_accuracy"]}
                                   for r in curve])
                 + "\n\n![accuracy vs fraction kept](fraction_curve.svg)\n")
    return text
