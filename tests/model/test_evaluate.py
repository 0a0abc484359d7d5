"""The evaluator end to end: the `seqcast evaluate --json` shape of the exported demo model
and every baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model.baselines.gru import GruOptions
from model.baselines.registry import BASELINES
from model.evaluate import evaluate
from model.sequences import TimeSplit

M_KEYS = {
    "next_behavior": {"macro_auc", "log_loss", "accuracy", "macro_f1"},
    "purchase": {"auc", "pr_auc", "log_loss", "ece"},
    "next_item": {"recall@20", "ndcg@10"},
    "next_category": {"recall@20", "ndcg@10"},
}


def _assert_m(m: dict[str, Any], heads: set[str]) -> None:
    assert heads <= set(m)
    for head in heads:
        assert M_KEYS[head] <= set(m[head]), head



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


