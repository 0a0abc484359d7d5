"""The soak benchmark (bench/soak.py) end to end, for a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_soak_runs_its_schedule_and_writes_its_figures(demo_artifact: Path,
                                                       tmp_path: Path) -> None:
    """A real service under the open-loop schedule: every scheduled request is answered,
    each bucket has its latency and memory figures, and the table and plot are written."""
    out = tmp_path / "soak"
    done = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), "--artifact", str(demo_artifact),
         "--minutes", "0.1", "--rate", "20", "--bucket-seconds", "2", "--users", "20",
         "--out", str(out)],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    buckets = json.loads((out / "soak.json").read_text())["buckets"]
    assert len(buckets) == 3
    assert sum(b["requests"] for b in buckets) == 120
    assert all(b["errors"] == 0 for b in buckets)
    assert all(0 < b["p50_ms"] <= b["p99_ms"] for b in buckets)
    assert all(b["service_rss_mb"] > 10 and b["redis_rss_mb"] > 0 for b in buckets)
    assert (out / "soak.png").stat().st_size > 0
    assert (out / "soak.md").read_text().count("\n") == 2 + len(buckets)
