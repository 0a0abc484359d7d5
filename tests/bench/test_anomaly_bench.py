"""The anomaly benchmark (bench/anomaly.py) end to end on the demo artifact and its log."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from model.synth import write_csv

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_anomaly_bench_separates_real_test_windows_from_scripts(demo_artifact: Path,
                                                                tmp_path: Path) -> None:
    """The demo's own log (300 shoppers, seed 0, as the fixture trains on): its test-period
    windows score low, the bots and scripts high, and the figures are printed."""
    log = tmp_path / "synthetic.csv"
    write_csv(log, 300, 0)
    done = subprocess.run(
        [sys.executable, str(BENCH / "anomaly.py"), "--artifact", str(demo_artifact),
         "--data", str(log), "--points", "800"],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    real = re.search(r"real: (\d+) windows, median ([\d.]+), share >= 0.99 ([\d.]+)", done.stdout)
    flagged = re.search(r"flagged: (\d+) windows, median ([\d.]+), share >= 0.99 ([\d.]+)",
                        done.stdout)
    auc = re.search(r"ROC AUC real vs flagged: ([\d.]+)", done.stdout)
    assert real and flagged and auc, done.stdout
    assert int(real[1]) > 700 and float(real[2]) < 0.7 and float(real[3]) < 0.05
    assert int(flagged[1]) > 200 and float(flagged[3]) > 0.95
    assert float(auc[1]) >= 0.95
