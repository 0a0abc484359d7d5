"""The report in an artifact: files, the comparison table and its columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from eventlogs import event_log

from model import metrics
from model.baselines.registry import Fitting, fit_baseline
from model.evaluation.protocol import Horizon
from model.evaluation.scoring import score_points
from model.report import comparison_table, write_report
from model.report.plots import TOTAL, training_curves
from model.sequences import EventLog, TimeSplit
from model.sequences import test_points as points_of


def funnel_log() -> tuple[EventLog, TimeSplit]:
    """Three users walking items 0..3 one a minute, every third event a cart and every
    fourth a buy; the last quarter of the time span is the test period."""
    rows = [
        (u, k % 4, k % 2, 3 if k % 4 == 3 else 1 if k % 3 == 2 else 0, 1_000_000 + 60 * k + u)
        for u in range(3)
        for k in range(30)
    ]
    log = event_log(rows, ["u0", "u1", "u2"], ["a", "b", "c", "d"], ["x", "y"])
    return log, TimeSplit.by_fraction(log, 0.25, 0.25)


def test_report_files_from_a_baseline_evaluation(tmp_path: Path) -> None:
    log, split = funnel_log()
    h = Horizon(window_len=4, horizon=240, return_gap=60)  # horizons inside the log
    points = points_of(log, split, h.window_len, h.horizon, h.return_gap)
    scorers = {n: fit_baseline(n, Fitting(log, split, h)) for n in ("popularity", "markov", "last")}
    evaluation = {
        "n_test_points": len(points),
        "model": score_points(scorers["markov"], log, points),
        "baselines": {name: score_points(s, log, points) for name, s in scorers.items()},
    }
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    calibration = {
        "chosen": {"purchase": "isotonic"},
        "candidates": {"purchase": {"none": 0.21, "isotonic": 0.03}},
        "before": {"purchase": metrics.reliability(p**2, rng.uniform(size=200) < p).to_dict()},
        "after": {"purchase": metrics.reliability(p, rng.uniform(size=200) < p).to_dict()},
    }
    # Weighted, epoch 1 has the lower validation loss; the heads' plain sum
    # would pick epoch 2.
    history = [
        {
            "epoch": 1,
            "train_loss": {"behavior": 1.2, "item": 8.0},
            "val_loss": {"behavior": 1.1, "item": 7.5},
            "train_total": 11.6,
            "val_total": 10.8,
            "events_per_s": 31000.0,
        },
        {
            "epoch": 2,
            "train_loss": {"behavior": 1.3, "item": 7.0},
            "val_loss": {"behavior": 1.2, "item": 7.3},
            "train_total": 10.9,
            "val_total": 10.9,
            "events_per_s": 32000.0,
        },
    ]
    write_report(tmp_path, evaluation, history, calibration, {"rows_read": 72, "cleaning": []},
                 restored_epoch=1)
    report = tmp_path / "report"
    for png in ("training_curves.png", "reliability.png", "confusion_matrix.png"):
        data = (report / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
    saved = json.loads((report / "metrics.json").read_text())
    assert saved["n_test_points"] == len(points)
    assert saved["training"]["calibration"]["chosen"]["purchase"] == "isotonic"
    md = (report / "report.md").read_text()
    assert "| metric | model | popularity | markov | last |" in md
    assert "| read | every data row of the file | 72 | |" in md and "| purchase | isotonic |" in md
    assert "none 0.2100, isotonic 0.0300" in md
    assert saved["training"]["restored_epoch"] == 1
    lines = md.splitlines()
    assert "| **1** (restored) | 11.6000 | 10.8000 | 31,000 |" in lines
    assert "| 2 | 10.9000 | 10.9000 | 32,000 |" in lines
    assert "the model is epoch 1's, restored at the end" in md
    # "last" answers no purchase question: its cell says so.
    purchase_row = next(line for line in md.splitlines() if line.startswith("| purchase: log loss"))
    assert purchase_row.rstrip().endswith("| — |")
    assert comparison_table(evaluation).count("\n") >= 10



def test_int8_sibling_is_a_column_next_to_the_model() -> None:
    evaluation = {
        "n_test_points": 3,
        "model": {"purchase": {"auc": 0.71}},
        "model_int8": {"purchase": {"auc": 0.70}},
        "baselines": {"markov": {"purchase": {"auc": 0.6}}},
    }
    table = comparison_table(evaluation)
    assert table.splitlines()[0] == "| metric | model | model int8 | markov |"
    assert "| purchase: ROC AUC | **0.7100** | 0.7000 | 0.6000 |" in table


def test_training_curves_plot_the_weighted_total_and_mark_the_restored_epoch() -> None:
    epochs = ((1, 1.0, 7.5, 10.0, 10.8), (2, 1.2, 7.2, 9.5, 10.9), (3, 1.1, 7.4, 9.0, 11.0))
    history = [
        {"epoch": e, "train_loss": {"behavior": b, "item": 7.0},
         "val_loss": {"behavior": b, "item": i}, "train_total": t, "val_total": v}
        for e, b, i, t, v in epochs
    ]
    fig = training_curves(history, restored_epoch=1)
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert list(panels) == [TOTAL, "behavior", "item"]
    for ax in panels.values():
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines["restored (epoch 1)"].get_xdata()) == [1, 1]
    total = {line.get_label(): list(line.get_ydata()) for line in panels[TOTAL].get_lines()}
    assert total["validation"] == [10.8, 10.9, 11.0] and total["train"] == [10.0, 9.5, 9.0]
