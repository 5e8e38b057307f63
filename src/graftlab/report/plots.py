"""Figures for reports, as standalone SVG text (inlined in HTML, saved beside Markdown).

matplotlib with the Agg backend; glyphs become paths, so a figure renders the same on any
machine, offline, without fonts installed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "graftlab"})
    return plt


def to_svg(fig) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: it is inlined


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def tradeoff(rows: Sequence[dict], *, metric: str, label: str, scale: float) -> str:
    """Score (mean ± std) against trainable parameters and against wall time, side by side."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, xlabel in [(axes[0], "trainable_params", "trainable parameters (log)"),
                            (axes[1], "seconds_median", "wall time per run, s (log)")]:
        for i, row in enumerate(rows):
            x = max(row[key], 1e-3)
            ax.errorbar(x, row[f"{metric}_mean"] * scale, yerr=row[f"{metric}_std"] * scale,
                        fmt="o", color=color(i), capsize=3, markersize=6)
            ax.annotate(row["strategy"], (x, row[f"{metric}_mean"] * scale),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.margins(x=0.25, y=0.15)
    fig.suptitle(f"{label} against cost (mean ± std over seeds)")
    return to_svg(fig)


def curves(runs: Sequence[dict], strategies: Sequence[str]) -> str:
    """Training loss and held-out accuracy (or, for regression, loss) by epoch, mean over seeds,
    one line per strategy."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    held_out = "val_accuracy" if any("val_accuracy" in h for r in runs for h in r["history"]) \
        else "val_loss"
    for i, strategy in enumerate(strategies):
        histories = [r["history"] for r in runs if r["strategy"] == strategy and r["history"]]
        if not histories:
            continue
        for ax, key in [(axes[0], "train_loss"), (axes[1], held_out)]:
            per_epoch: dict[int, list[float]] = {}
            for history in histories:
                for h in history:
                    if key in h:
                        per_epoch.setdefault(h["epoch"] + 1, []).append(h[key])
            if not per_epoch:
                continue
            xs = sorted(per_epoch)
            ys = [float(np.mean(per_epoch[x])) for x in xs]
            style = {"marker": "o", "markersize": 3} if len(xs) > 1 else \
                {"marker": "*", "markersize": 10, "linestyle": "none"}
            ax.plot(xs, ys, color=color(i), label=strategy, **style)
    axes[0].set_title("training loss")
    axes[1].set_title(f"held-out {held_out[4:]} (scored each epoch, never used to select)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6),
                   bbox_to_anchor=(0.5, -0.08), frameon=False)
    return to_svg(fig)


def confusions(matrices: dict[str, np.ndarray], classes: Sequence[str]) -> str:
    """Row-normalised confusion matrices (summed over seeds), one panel per strategy."""
    plt = _plt()
    n = len(matrices)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    size = 2.2 + 0.18 * len(classes)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    annotate = len(classes) <= 12
    for ax, (name, m) in zip(axes.flat, matrices.items()):
        m = np.asarray(m, dtype=float)
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(name)
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks, [str(c)[:8] for c in classes], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [str(c)[:8] for c in classes], fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if annotate:
            for (r, c), v in np.ndenumerate(norm):
                if v >= 0.005:
                    ax.text(c, r, f"{v * 100:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if v > 0.6 else "black")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return to_svg(fig)


def class_weights(names: Sequence[str], mean: np.ndarray, std: np.ndarray, *,
                  cut: float) -> str:
    """A bar per source class: PADA's weight (0-1, mean over seeds, one std whiskers), grey
    below ``cut`` (the classes the target seems to lack)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 1.5), 3.0))
    x = np.arange(len(names))
    ax.bar(x, mean, yerr=std, color=[color(0) if m >= cut else "#bbbbbb" for m in mean],
           capsize=2)
    ax.axhline(cut, color="#888888", lw=0.8, ls="--")
    ax.set_xticks(x, [str(n) for n in names], rotation=45 if len(names) > 12 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("class weight")
    ax.set_xlabel("source class")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle("how much of each source class the target seems to hold (PADA)")
    return to_svg(fig)


def embed_2d(arrays: Sequence[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """t-SNE of each array to 2-D (same perplexity for all, set by their size)."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(arrays[0]) - 1) // 3)))
    return [TSNE(2, init="pca", perplexity=perplexity, random_state=seed)
            .fit_transform(np.asarray(x, dtype=np.float64)) for x in arrays]


def feature_map(panels: Sequence[tuple[str, np.ndarray]], labels: np.ndarray,
                classes: Sequence[str]) -> str:
    """2-D embeddings of the same samples, one panel per feature set, coloured by class (or by
    the target value when ``classes`` is empty: regression)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (title, xy) in zip(axes[0], panels):
        if classes:
            for k, name in enumerate(classes):
                sel = labels == k
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=color(k), label=str(name),
                               alpha=0.8, linewidths=0)
        else:
            points = ax.scatter(xy[:, 0], xy[:, 1], s=6, c=labels, cmap="viridis",
                                linewidths=0)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    if classes:
        fig.tight_layout()
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper center", markerscale=2, frameon=False,
                   ncol=min(len(names), 10), bbox_to_anchor=(0.5, 0.02))
    else:
        fig.colorbar(points, ax=list(axes[0]), label="target", shrink=0.8)
    return to_svg(fig)
