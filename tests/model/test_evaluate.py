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




def test_eval_sample_is_seeded_and_stated(
    demo_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`seqcast evaluate --eval-sample N`: N of the test points, the same N for one seed,
    others for another; the protocol and the report say so, and N at least the number of
    points changes nothing."""
    from model.cli import main
    from model.report import render_markdown
    from model.synth import write_csv

    csv = tmp_path / "shoppers.csv"
    write_csv(csv, 80, 0)

    def run(*options: str) -> dict[str, Any]:
        argv = ["evaluate", "--artifact", str(demo_artifact), "--data", str(csv), "--json",
                "--no-baselines", *options]
        assert main(argv) == 0
        result: dict[str, Any] = json.loads(capsys.readouterr().out)
        result["model"].pop("seconds")
        return result

    full = run()
    n = full["n_test_points"]
    assert n > 60 and "sample" not in full["protocol"]
    assert run("--eval-sample", str(n))["model"] == full["model"]
    a, again = run("--eval-sample", "60"), run("--eval-sample", "60", "--eval-seed", "0")
    other = run("--eval-sample", "60", "--eval-seed", "7")
    assert a["n_test_points"] == 60 and a["model"]["next_item"]["n"] == 60
    assert a["protocol"]["sample"] == {"n": 60, "of": n, "seed": 0}
    assert a["model"] == again["model"]
    assert other["protocol"]["sample"]["seed"] == 7 and other["model"] != a["model"]
    report = render_markdown(a, [], {}, None)
    assert f"- Test points: **{n}**" in report
    assert f"**60** of the {n} test points (seed 0)" in report
