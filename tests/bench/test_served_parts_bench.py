"""bench/served_parts.py end to end on the demo artifact: every part timed, the HNSW twin
finds the exact search's top items on a small catalog."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
PARTS = ("featurize", "ONNX Runtime call", "exact item search", "item candidates of the window",
         "decoded answer + JSON", "item candidates of the window, HNSW")


@pytest.mark.slow
def test_served_parts_times_every_part(demo_artifact: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "served_parts.py"), "--artifact", str(demo_artifact),
         "--rounds", "5", "--top-k", "5", "--hnsw"],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    timed = dict(re.findall(r"^\| (.+?) \| ([\d.]+) ms \|$", done.stdout, re.MULTILINE))
    for part in PARTS:
        assert any(name.startswith(part) for name in timed), (part, done.stdout)
    assert all(float(ms) > 0 for ms in timed.values())
    found = re.search(r"HNSW finds (\d+) of the exact top (\d+)", done.stdout)
    assert found and int(found[1]) >= int(found[2]) - 1, done.stdout
