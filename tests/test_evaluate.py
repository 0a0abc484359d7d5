"""The evaluator: vocabulary -> code-space mapping, the result's JSON shape on a real
exported model, and the report files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model import metrics
from model.baselines.gru import GruOptions
from model.baselines.registry import BASELINES, Fitting, fit_baseline
from model.evaluate import evaluate
from model.evaluation.network import VocabScorer, rank_window_oov
from model.evaluation.protocol import Horizon
from model.evaluation.scoring import score_points
from model.features import FIRST_KNOWN, Features, FeatureSpec, Vocab, featurize_windows
from model.report import comparison_table, write_report
from model.sequences import EventLog, TimeSplit
from model.sequences import test_points as points_of

M_KEYS = {
    "next_behavior": {"macro_auc", "log_loss", "accuracy", "macro_f1"},
    "purchase": {"auc", "pr_auc", "log_loss", "ece"},
    "next_item": {"recall@20", "ndcg@10"},
    "next_category": {"recall@20", "ndcg@10"},
}


def small_log() -> tuple[EventLog, TimeSplit]:
    """Two users cycling through items a, b, c (categories x, y, x), one event a minute,
    and a third who only touches an item that no vocabulary knows."""
    rows = []
    for u in range(2):
        for k in range(24):
            rows.append((u, k % 3, (k % 3) % 2, k % 4 == 3 and 3 or 0, 1_000_000 + 60 * k + u))
    rows += [(2, 3, 1, 0, 1_000_000 + 60 * k + 5) for k in range(24)]
    user, item, category, behavior, ts = (np.array(c) for c in zip(*rows, strict=True))
    log = EventLog.from_codes(
        user,
        item,
        category,
        behavior,
        ts,
        np.array(["u0", "u1", "u2"]),
        np.array(["a", "b", "c", "stranger"]),
        np.array(["x", "y"]),
    )
    start, end = int(log.ts.min()), int(log.ts.max())
    return log, TimeSplit(val_cutoff=start + 600, test_cutoff=start + 900, end=end)


class RepeatLastItem:
    """A deterministic stand-in network: the last event's item gets logit 5 and every other
    column, OOV buckets included, logit 1; behavior and binary heads are constants."""

    def __init__(self, n_items: int, n_categories: int) -> None:
        self.n_items, self.n_categories = n_items, n_categories

    def __call__(self, features: Features) -> dict[str, np.ndarray]:
        b = len(features["item"])
        items = np.ones((b, self.n_items), dtype=np.float32)
        items[np.arange(b), features["item"][:, -1]] = 5.0
        return {
            "behavior_probs": np.tile([0.7, 0.1, 0.1, 0.1], (b, 1)),
            "purchase_prob": np.full(b, 0.2),
            "return_prob": np.full(b, 0.5),
            "category_logits": np.zeros((b, self.n_categories), dtype=np.float32),
            "item_logits": items,
        }


def test_vocab_logits_map_to_log_codes_and_window_oov_ids_rank_by_their_bucket() -> None:
    log, split = small_log()
    spec = FeatureSpec(window_len=4, n_oov_items=8, n_oov_categories=2)
    # "c" is left out of the item vocabulary, like "stranger": each can be ranked only where
    # it occurs in the window, by the score of the bucket it hashes to (as the service does).
    items, categories = Vocab(["b", "a"], 8), Vocab(["x", "y"], 2)
    model = RepeatLastItem(items.size, categories.size)
    scorer = VocabScorer(model, spec, items, categories)
    points = points_of(log, split, 4, 600, 120)
    out = scorer.score(log, points)
    assert out.item is not None and out.item.shape == (len(points), 4)
    last = log.item[points.last]
    assert (out.item.argmax(axis=1) == last).all(), "the last item's row scores 5, OOV or not"
    stranger = last == 3
    assert stranger.any() and (~stranger).any()
    assert items.index_of("stranger") >= FIRST_KNOWN + items.n_known
    # Outside the vocabulary and absent from the window: a miss.
    assert np.isneginf(out.item[stranger][:, 2]).all()
    assert np.isneginf(out.item[~stranger][:, 3]).all()
    # "c" in a window of a, b, c: ranked by its bucket (logit 1 unless it is the last event).
    cycling = ~stranger & (last != 2)
    assert (out.item[cycling][:, 2] == 1.0).all()
    assert np.isfinite(out.item[stranger][:, :2]).all()

    result = score_points(scorer, log, points)
    observed = log.ts[points.last] + 600 <= split.end
    assert result["purchase"]["n"] == int(observed.sum())
    assert result["purchase"]["n_censored"] == int((~observed).sum())
    targets = log.item[points.target]
    in_window = [t in log.item[s : s + n] for t, s, n in
                 zip(targets, points.start, points.length, strict=True)]
    unrankable = np.isin(targets, [2, 3]) & ~np.array(in_window)
    assert result["next_item"]["unseen_rate"] == pytest.approx(unrankable.mean())
    assert set(result) == {
        "next_behavior",
        "purchase",
        "return",
        "next_item",
        "next_category",
    }


def test_window_oov_codes_sharing_a_bucket_split_it() -> None:
    """Codes 0 and 1 hash to bucket row 5, code 2 to row 6, code 3 is known (row 2): in
    point 0's window 0, 1 and 3 occur (0 twice), in point 1's only 2."""
    logits = np.log(np.array([[0.1, 0.1, 0.2, 0.1, 0.1, 0.3, 0.1], [0.1] * 5 + [0.2, 0.3]]))
    index = np.array([5, 5, 6, 2])
    oov = np.array([True, True, True, False])
    scores = np.full((2, 4), -np.inf)
    rank_window_oov(scores, logits, index, oov, np.array([0, 0, 0, 0, 1]),
                    np.array([0, 1, 0, 3, 2]))
    np.testing.assert_allclose(np.exp(scores[0, :2]), [0.15, 0.15])
    assert np.isneginf(scores[0, 2:]).all(), "absent from the window / known: not touched here"
    np.testing.assert_allclose(np.exp(scores[1, 2]), 0.3)
    assert np.isneginf(scores[1, [0, 1, 3]]).all()


def test_evaluator_features_equal_the_service_featurization() -> None:
    """The evaluator's vectorized featurization of log windows equals the service's path on
    the same windows as raw events (unknown ids, OOV hashing and a time zone included)."""
    log, split = small_log()
    spec = FeatureSpec(window_len=5, tz_offset_seconds=8 * 3600, n_oov_items=8)
    items, categories = Vocab(["b", "a"], 8), Vocab(["y"], 2)
    scorer = VocabScorer(RepeatLastItem(items.size, categories.size), spec, items, categories)
    points = points_of(log, split, 5, 600, 120)
    ours = scorer.features(log, points)
    windows = [
        log.events(int(s), int(j) + 1) for s, j in zip(points.start, points.last, strict=True)
    ]
    service = featurize_windows(windows, spec, items, categories)
    for name, value in service.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


def _assert_m(m: dict[str, Any], heads: set[str]) -> None:
    assert heads <= set(m)
    for head in heads:
        assert M_KEYS[head] <= set(m[head]), head


def test_report_files_from_a_baseline_evaluation(tmp_path: Path) -> None:
    log, split = small_log()
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
        "temperatures": {"behavior": 1.3, "purchase": 0.8},
        "before": {"purchase": metrics.reliability(p**2, rng.uniform(size=200) < p).to_dict()},
        "after": {"purchase": metrics.reliability(p, rng.uniform(size=200) < p).to_dict()},
    }
    history = [
        {
            "epoch": 1,
            "train_loss": {"behavior": 1.2, "item": 8.0},
            "val_loss": {"behavior": 1.1, "item": 7.5},
            "events_per_s": 31000.0,
        },
        {
            "epoch": 2,
            "train_loss": {"behavior": 1.0, "item": 7.0},
            "val_loss": {"behavior": 1.0, "item": 7.4},
            "events_per_s": 32000.0,
        },
    ]
    write_report(tmp_path, evaluation, history, calibration, {"rows_read": 72, "steps": []})
    report = tmp_path / "report"
    for png in ("training_curves.png", "reliability.png", "confusion_matrix.png"):
        data = (report / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
    saved = json.loads((report / "metrics.json").read_text())
    assert saved["n_test_points"] == len(points)
    assert saved["training"]["calibration"]["temperatures"]["purchase"] == 0.8
    md = (report / "report.md").read_text()
    assert "| metric | model | popularity | markov | last |" in md
    assert "rows_read: 72" in md and "| purchase | 0.8000 |" in md
    # "last" answers no purchase question: its cell says so.
    purchase_row = next(line for line in md.splitlines() if line.startswith("| purchase: log loss"))
    assert purchase_row.rstrip().endswith("| — |")
    assert comparison_table(evaluation).count("\n") >= 10


@pytest.mark.slow
def test_evaluate_shape_on_the_exported_demo_model(demo_artifact: Path) -> None:
    """The exact `seqcast evaluate --json` shape, from the real ONNX artifact and every
    baseline (a one-epoch GRU), on synthetic shoppers whose ids overlap the demo's vocabulary."""
    from model.synth import generate

    log = generate(80, seed=0)
    split = TimeSplit.by_fraction(log, 0.2, 0.1)
    gru = GruOptions(preset="tiny", overrides=(("max_epochs", 1),))
    result = evaluate(demo_artifact, log, split, progress=False, gru=gru)
    json.loads(json.dumps(result, allow_nan=False))  # strict JSON
    assert result["n_test_points"] > 0
    assert list(result["baselines"]) == list(BASELINES)
    _assert_m(result["model"], set(M_KEYS))
    for name in ("popularity", "markov", "gru"):
        _assert_m(result["baselines"][name], set(M_KEYS))
    _assert_m(result["baselines"]["last"], {"next_behavior", "next_item", "next_category"})
    _assert_m(result["baselines"]["lightgbm"], {"next_behavior", "purchase"})
    assert "next_item" not in result["baselines"]["lightgbm"]
    model = result["model"]
    assert 0.0 <= model["next_item"]["unseen_rate"] < 1.0
    assert model["next_behavior"]["n"] == result["n_test_points"]
    assert model["purchase"]["n"] + model["purchase"]["n_censored"] == result["n_test_points"]
    assert model["purchase"]["n_censored"] > 0, "the log's last horizon is censored"
    assert model["next_behavior"]["log_loss"] < 10 and model["purchase"]["log_loss"] < 10


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
