"""bench/scale.py end to end at a tiny point, and its log generator against the loader."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.data import load_log

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import scale  # noqa: E402 - bench scripts, importable once bench/ is on the path
import scale_log  # noqa: E402

from model import progress  # noqa: E402


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


def test_from_log_reads_an_unfinished_epochs_rate_from_the_training_bars_log_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A child's stderr is a file, so its training bar logs lines (model.progress): a run
    killed mid-epoch still tells the last events/s the bar showed, the epoch's line wins."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    with caplog.at_level(logging.INFO, logger="seqcast"):
        bar = progress.progress_bar(range(3), desc="training epoch 1", unit="batch")
        for i in bar:
            bar.set_postfix(loss="17.203", events_s=f"{18_400 + i:,}")
    as_logged = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    text = "\n".join(as_logged.format(r) for r in caplog.records) + "\n"
    assert "events_s=18,402, loss=17.203" in text
    assert scale.from_log(text) == {"train_events_per_s": 18_402.0,
                                    "train_events_per_s_from": "progress bar, epoch unfinished"}
    text += "2026-12-02 03:00:00,000 INFO model.train.loop: epoch 1: 18391 events/s, train 1\n"
    assert scale.from_log(text) == {"train_events_per_s": 18_391.0,
                                    "train_events_per_s_from": "log"}
    assert scale.from_log("killed while loading\n") == {}


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
