"""The report in an artifact: metrics JSON, a Markdown summary and PNG plots.

    ARTIFACT_DIR/report/
        metrics.json            the evaluation (the `seqcast evaluate --json` object) plus
                                "training" {history, calibration} and "data" (cleaning report)
        report.md               model vs baselines side by side, calibration, training, data
        training_curves.png     train / validation loss per head and epoch
        reliability.png         reliability diagrams before / after calibration (validation)
                                and on the test points, purchase head and behavior confidence
        confusion_matrix.png    next behavior on the test points, row-normalized

Inputs, as `model.train.fit` produces them:
    history      list of per-epoch dicts {"epoch", "train_loss", "val_loss", ...} where the
                 losses are per-head dicts (or plain floats), optionally "train_total",
                 "val_total", "events_per_s"; or a dict {"epochs": [...], ...}
    calibration  `model.calibrate.Calibration` or its `to_dict()`: {"temperatures": {head: T},
                 "before": {head: reliability}, "after": {head: reliability}} with reliability
                 as `model.metrics.Reliability.to_dict()`; heads "behavior", "purchase", ...
Matplotlib draws through its object API on Agg canvases: no pyplot, no global backend.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from model.features import BEHAVIOR_NAMES

logger = logging.getLogger(__name__)

REPORT_DIR = "report"

# (head, metric, label, higher is better)
TABLE_ROWS = (
    ("next_behavior", "macro_auc", "next behavior: macro AUC", True),
    ("next_behavior", "log_loss", "next behavior: log loss", False),
    ("next_behavior", "accuracy", "next behavior: accuracy", True),
    ("next_behavior", "macro_f1", "next behavior: macro F1", True),
    ("purchase", "auc", "purchase: ROC AUC", True),
    ("purchase", "pr_auc", "purchase: PR AUC", True),
    ("purchase", "log_loss", "purchase: log loss", False),
    ("purchase", "ece", "purchase: ECE", False),
    ("return", "auc", "return: ROC AUC", True),
    ("return", "log_loss", "return: log loss", False),
    ("next_item", "recall@20", "next item: Recall@20", True),
    ("next_item", "ndcg@10", "next item: NDCG@10", True),
    ("next_item", "unseen_rate", "next item: unseen target rate", False),
    ("next_category", "recall@20", "next category: Recall@20", True),
    ("next_category", "ndcg@10", "next category: NDCG@10", True),
    ("next_category", "unseen_rate", "next category: unseen target rate", False),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _fmt(value: Any) -> str:
    v = _number(value)
    return "—" if v is None else f"{v:.4f}"


def _columns(evaluation: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    cols: dict[str, Mapping[str, Any]] = {"model": evaluation.get("model", {})}
    if "model_int8" in evaluation:  # the quantized sibling, next to what it approximates
        cols["model int8"] = evaluation["model_int8"]
    cols.update(evaluation.get("baselines", {}))
    return cols


def comparison_table(evaluation: Mapping[str, Any]) -> str:
    """Markdown table, one row per metric, model and baselines side by side; the best value
    of each row in bold (a head a baseline does not answer shows —)."""
    cols = _columns(evaluation)
    names = list(cols)
    lines = [
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for head, metric, label, higher in TABLE_ROWS:
        values = [_number(cols[n].get(head, {}).get(metric)) for n in names]
        present = [v for v in values if v is not None]
        if not present:
            continue
        best = max(present) if higher else min(present)
        cells = [
            "—" if v is None else (f"**{v:.4f}**" if v == best and len(present) > 1 else f"{v:.4f}")
            for v in values
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _epochs(history: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if isinstance(history, Mapping):
        return list(history.get("epochs", []))
    return list(history)


def _losses(record: Mapping[str, Any], key: str) -> dict[str, float]:
    """Per-head losses of an epoch record; a plain float counts as head "total"."""
    value = record.get(key)
    if isinstance(value, Mapping):
        numbers = {k: _number(v) for k, v in value.items()}
        return {k: v for k, v in numbers.items() if v is not None}
    out: dict[str, float] = {}
    for candidate in (value, record.get(key.replace("_loss", "_total"))):
        number = _number(candidate)
        if number is not None:
            out["total"] = number
    return out


def _calibration_dict(calibration: Any) -> dict[str, Any]:
    if calibration is None:
        return {}
    if hasattr(calibration, "to_dict"):
        return dict(calibration.to_dict())
    return dict(calibration)


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_training_curves(history: list[Mapping[str, Any]], path: Path) -> None:
    """One panel per head (and the total): training and validation loss by epoch."""
    train = [_losses(r, "train_loss") for r in history]
    val = [_losses(r, "val_loss") for r in history]
    heads = sorted({h for d in train + val for h in d}, key=lambda h: (h != "total", h))
    if "total" not in heads and heads:
        for t, v in zip(train, val, strict=True):
            t["total"], v["total"] = sum(t.values()), sum(v.values())
        heads.insert(0, "total")
    epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    n = max(len(heads), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _new_figure(4.2 * cols, 3.0 * rows)
    for i, head in enumerate(heads):
        ax = fig.add_subplot(rows, cols, i + 1)
        for series, label, style in ((train, "train", "-o"), (val, "validation", "-s")):
            points = [(e, d[head]) for e, d in zip(epochs, series, strict=True) if head in d]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=label, markersize=3)
        ax.set_title(head)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if not heads:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no training history", ha="center")
    fig.tight_layout()
    fig.savefig(path)


def _reliability_curve(ax: Axes, bins: Mapping[str, Any], label: str, style: str) -> None:
    conf = [c for c, n in zip(bins["mean_confidence"], bins["count"], strict=True) if n]
    outcome = [o for o, n in zip(bins["mean_outcome"], bins["count"], strict=True) if n]
    ece = _number(bins.get("ece"))
    suffix = f" (ECE {ece:.3f})" if ece is not None else ""
    ax.plot(conf, outcome, style, label=label + suffix, markersize=4)


def plot_reliability(
    calibration: Mapping[str, Any], evaluation: Mapping[str, Any], path: Path
) -> None:
    """Reliability diagrams: validation before / after temperature scaling and the test
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


def _when(ts: Any) -> str:
    v = _number(ts)
    if v is None:
        return "—"
    return datetime.fromtimestamp(v, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _protocol_md(evaluation: Mapping[str, Any]) -> list[str]:
    p = evaluation.get("protocol", {})
    split = p.get("split", {})
    return [
        "## Protocol",
        "",
        f"- Test points: **{evaluation.get('n_test_points', '—')}** — every event from the test "
        f"cutoff ({_when(split.get('test_cutoff'))}) to the end of the log "
        f"({_when(split.get('end'))}), each predicted from the events before it "
        f"(window {p.get('window_len', '—')}).",
        f"- Training used events before {_when(split.get('val_cutoff'))}; validation (early "
        "stopping, calibration) the events up to the test cutoff. Baselines are fitted on "
        "everything before the test cutoff.",
        f"- Purchase / return horizon {p.get('horizon_seconds', '—')} s; labels whose horizon "
        "runs past the end of the log are censored and excluded.",
        f"- Next item / category: full ranking over {p.get('n_items', '—')} items and "
        f"{p.get('n_categories', '—')} categories; targets outside a model's vocabulary are "
        "misses; ties take the expected rank.",
        "",
    ]


def _per_class_md(evaluation: Mapping[str, Any]) -> list[str]:
    cols = _columns(evaluation)
    names = [n for n in cols if "per_class_auc" in cols[n].get("next_behavior", {})]
    if not names:
        return []
    lines = [
        "### Next behavior: one-vs-rest AUC per class",
        "",
        "| class | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for cls in BEHAVIOR_NAMES:
        cells = [_fmt(cols[n]["next_behavior"]["per_class_auc"].get(cls)) for n in names]
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _calibration_md(calibration: Mapping[str, Any]) -> list[str]:
    temps = calibration.get("temperatures", {})
    heads = sorted(set(temps) | set(calibration.get("before", {})))
    if not heads:
        return ["## Calibration", "", "No calibration was fitted.", ""]
    lines = [
        "## Calibration (validation points)",
        "",
        "Temperature scaling per head; ECE with 15 equal-width bins (behavior: top-label).",
        "",
        "| head | temperature | ECE before | ECE after |",
        "|---|---:|---:|---:|",
    ]
    for head in heads:
        before = calibration.get("before", {}).get(head, {}).get("ece")
        after = calibration.get("after", {}).get(head, {}).get("ece")
        lines.append(f"| {head} | {_fmt(temps.get(head))} | {_fmt(before)} | {_fmt(after)} |")
    return [*lines, ""]


def _training_md(history: list[Mapping[str, Any]]) -> list[str]:
    if not history:
        return []
    lines = [
        "## Training",
        "",
        "| epoch | train loss | validation loss | events/s |",
        "|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(history):
        train = _losses(r, "train_loss")
        val = _losses(r, "val_loss")
        t = train.get("total", sum(train.values()))
        v = val.get("total", sum(val.values()))
        rate = _number(r.get("events_per_s"))
        lines.append(
            f"| {r.get('epoch', i + 1)} | {t:.4f} | {v:.4f} | "
            f"{'—' if rate is None else f'{rate:,.0f}'} |"
        )
    return [*lines, ""]


def _data_md(value: Any, indent: int = 0) -> list[str]:
    """The data report (DataReport.to_dict(), as metrics.json stores it) as nested lists."""
    pad = "  " * indent
    if isinstance(value, Mapping):
        lines = []
        for k, v in value.items():
            if isinstance(v, Mapping | list) and v:
                lines.append(f"{pad}- {k}:")
                lines.extend(_data_md(v, indent + 1))
            else:
                lines.append(f"{pad}- {k}: {v}")
        return lines
    if isinstance(value, list):
        return [f"{pad}- {v}" for v in value]
    return [f"{pad}- {value}"]


def render_markdown(
    evaluation: Mapping[str, Any],
    history: list[Mapping[str, Any]],
    calibration: Mapping[str, Any],
    data_report: Mapping[str, Any] | None,
) -> str:
    lines = [
        "# seqcast model report",
        "",
        *_protocol_md(evaluation),
        "## Model vs baselines (test points)",
        "",
        "Best of each row in bold. log loss, ECE and unseen rate: lower is better.",
        "",
        comparison_table(evaluation),
        "",
        *_per_class_md(evaluation),
        "![confusion matrix](confusion_matrix.png)",
        "",
        *_calibration_md(calibration),
        "![reliability](reliability.png)",
        "",
        *_training_md(history),
        "![training curves](training_curves.png)",
        "",
        "## Data",
        "",
        *(_data_md(data_report) if data_report else ["No data report."]),
        "",
    ]
    return "\n".join(lines)


def write_report(
    out_dir: Path,
    evaluation: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    calibration: Any,
    data_report: Mapping[str, Any] | None,
) -> None:
    """Write out_dir/report/: metrics.json, report.md and the PNG plots."""
    out = Path(out_dir) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    epochs = _epochs(history)
    calib = _calibration_dict(calibration)
    metrics = {
        **evaluation,
        "training": {"history": epochs, "calibration": calib},
        "data": data_report,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_jsonable))
    plot_training_curves(epochs, out / "training_curves.png")
    plot_reliability(calib, evaluation, out / "reliability.png")
    matrix = evaluation.get("model", {}).get("next_behavior", {}).get("confusion_matrix")
    plot_confusion(matrix if matrix else np.zeros((4, 4)), out / "confusion_matrix.png")
    (out / "report.md").write_text(render_markdown(evaluation, epochs, calib, data_report))
    logger.info("report written to %s", out)


def _jsonable(value: Any) -> Any:
    """numpy scalars / arrays in the inputs -> plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
