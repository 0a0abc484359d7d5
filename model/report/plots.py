"""The report's PNG plots: training curves, reliability diagrams, the confusion matrix.

Matplotlib draws through its object API on Agg canvases: no pyplot, no global backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from model.features import BEHAVIOR_NAMES
from model.report.inputs import head_losses, number, total_loss

TOTAL = "total (weighted, early stopping's)"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_training_curves(
    history: list[Mapping[str, Any]], path: Path, restored_epoch: int | None = None
) -> None:
    training_curves(history, restored_epoch).savefig(path)


def training_curves(history: list[Mapping[str, Any]], restored_epoch: int | None) -> Figure:
    """One panel per head, after the weighted total early stopping compared: training and
    validation loss by epoch, the restored epoch marked."""
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for i, r in enumerate(history):
        epoch = int(r.get("epoch", i + 1))
        for split in ("train", "val"):
            values = head_losses(r, split)
            total = total_loss(r, split)
            if total is not None:
                values = {TOTAL: total, **values}
            for head, v in values.items():
                series.setdefault(head, {}).setdefault(split, []).append((epoch, v))
    heads = sorted(series, key=lambda h: (h != TOTAL, h))
    n = max(len(heads), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _new_figure(4.2 * cols, 3.0 * rows)
    for i, head in enumerate(heads):
        ax = fig.add_subplot(rows, cols, i + 1)
        for split, label, style in (("train", "train", "-o"), ("val", "validation", "-s")):
            points = series[head].get(split)
            if points:
                ax.plot(*zip(*points, strict=True), style, label=label, markersize=3)
        if restored_epoch is not None:
            ax.axvline(restored_epoch, linestyle="--", color="grey",
                       label=f"restored (epoch {restored_epoch})")
        ax.set_title(head)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if not heads:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no training history", ha="center")
    fig.tight_layout()
    return fig


def _reliability_curve(ax: Axes, bins: Mapping[str, Any], label: str, style: str) -> None:
    conf = [c for c, n in zip(bins["mean_confidence"], bins["count"], strict=True) if n]
    outcome = [o for o, n in zip(bins["mean_outcome"], bins["count"], strict=True) if n]
    ece = number(bins.get("ece"))
    suffix = f" (ECE {ece:.3f})" if ece is not None else ""
    ax.plot(conf, outcome, style, label=label + suffix, markersize=4)


def plot_reliability(
    calibration: Mapping[str, Any], evaluation: Mapping[str, Any], path: Path
) -> None:
    """Reliability diagrams: held-apart validation points before / after calibration and the test
    points, for the purchase head and the next-behavior confidence (top label)."""
    model = evaluation.get("model", {})
    panels = (
        ("purchase", "purchase", "purchase within the horizon", "predicted probability"),
        ("behavior", "next_behavior", "next behavior (top label)", "confidence"),
    )
    fig = _new_figure(10, 4.2)
    for i, (calib_head, eval_head, title, xlabel) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
        before = calibration.get("before", {}).get(calib_head)
        after = calibration.get("after", {}).get(calib_head)
        test = model.get(eval_head, {}).get("reliability")
        for bins, label, style in (
            (before, "validation, before", "-o"),
            (after, "validation, after", "-s"),
            (test, "test (calibrated)", "-^"),
        ):
            if bins:
                _reliability_curve(ax, bins, label, style)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)


def plot_confusion(matrix: Sequence[Sequence[int]] | np.ndarray, path: Path) -> None:
    """Row-normalized confusion matrix (true class per row) with the counts written in."""
    counts = np.asarray(matrix, dtype=np.float64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    fig = _new_figure(5, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    fig.colorbar(image, ax=ax, label="share of the true class")
    names = list(BEHAVIOR_NAMES)[: len(counts)]
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("next behavior (test points)")
    for r in range(len(counts)):
        for c in range(len(counts)):
            color = "white" if share[r, c] > 0.5 else "black"
            ax.text(c, r, f"{int(counts[r, c])}", ha="center", va="center", color=color)
    fig.tight_layout()
    fig.savefig(path)
