"""bench/scale.py end to end at a tiny point, and its log generator against the loader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.data import load_log

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import scale_log  # noqa: E402 - a bench script, importable once bench/ is on the path


def test_the_generated_log_has_its_size_mix_and_long_tail(tmp_path: Path) -> None:
    path = scale_log.write_log(tmp_path / "log.csv", 30_000, 5_000, seed=2, progress=False)
    assert path.read_text().count("\n") == 30_000
    data = load_log(path, "taobao", progress=False)
    log = data.log
    assert data.report.rows_read == 30_000 and data.report.malformed == {}
    assert len(log) >= 29_900  # cleaning removes (almost) nothing: no bots, no edge days
    assert 250 <= len(np.unique(log.user)) <= 350  # about MEAN_EVENTS events a user
    shares = np.bincount(log.behavior, minlength=4) / len(log)
    assert np.allclose(shares, scale_log.BEHAVIOR_MIX, atol=0.01)
    popularity = np.sort(np.bincount(log.item))[::-1]
    assert popularity[:50].sum() > 0.1 * len(log)  # 1% of the catalog, 10% of the events
    assert len(np.unique(log.category)) < len(np.unique(log.item)) / 10
    same_user = log.user[1:] == log.user[:-1]
    revisits = (log.item[1:] == log.item[:-1]) & same_user
    assert 0.2 < revisits.sum() / same_user.sum() < 0.5
    assert scale_log.count("1.5M") == 1_500_000 and scale_log.count("20k") == 20_000


@pytest.mark.slow
def test_scale_bench_trains_serves_and_writes_its_section(tmp_path: Path) -> None:
    md = tmp_path / "scale.md"
    md.write_text("# Benchmarks at scale\n\n## Scale runs\n\nold\n\n## Training\n\nkept\n")
    png, results = tmp_path / "scale.png", tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "scale.py"), "--points", "10k:1k", "--work",
         str(tmp_path / "work"), "--results", str(results), "--md", str(md), "--png", str(png),
         "--train-args", "--preset tiny --set max_val_points=256", "--serve-workers", "1",
         "--serve-duration", "0.5", "--timeout", "300"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(results.read_text())["10k:1k"]
    assert result["train"]["status"] == "ok", result
    assert result["serve"]["status"] == "ok", result
    assert 0 < result["train"]["peak_rss_gb"] < 8
    assert result["train"]["train_events_per_s"] > 0 and result["train"]["eval_points_per_s"] > 0
    assert result["serve"]["p50_ms"] > 0 and result["serve"]["predictions_per_s"] > 0
    text = md.read_text()
    assert "old" not in text and "## Training\n\nkept\n" in text
    assert "### 10k:1k (10,000 events, 1,000 items)" in text
    assert "| training (1 epoch) |" in text and "scale.png" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
