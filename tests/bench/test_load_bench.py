"""The load benchmark's own machinery (bench/load.py) on its floor server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_bench_floor_server_is_measured_with_its_cpu(tmp_path: Path) -> None:
    """bench/load.py end to end on its floor: uvicorn serving bench/floor.py, the httpx
    client, server CPU from /proc, the Markdown row."""
    spec = importlib.util.spec_from_file_location("seqcast_bench_load", BENCH / "load.py")
    assert spec is not None and spec.loader is not None
    load = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = load  # dataclasses look their module up there
    spec.loader.exec_module(load)
    workload = load.Workload(["u1"], ["i1"], ["c1"])
    opts = load.Options("httpx", [1, 4], 0.5, 400, {}, tmp_path)
    with load.floor_service(1, tmp_path) as (url, pgid):
        assert url.startswith("http://127.0.0.1:")
        results = load.measure(opts, url, "floor", "floor", workload, 1, pgid)
    assert [r.clients for r in results] == [1, 4]
    for r in results:
        assert 0 < r.requests <= 400 and r.errors == 0
        assert 0 < r.p50_ms <= r.p99_ms
        assert r.server_cpu_ms is not None and r.server_cpu_ms >= 0
    table = load.markdown(results).splitlines()
    assert len(table) == 2 + len(results) and table[2].startswith("| floor | 1 | 1 |")
    assert "wrk.format" in load.wrk_script("prediction", workload, {"X-API-Key": "k"})
    # The CPU column counts what a process group burns: a busy loop for about 0.5 s.
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.5: pass\ntime.sleep(30)"],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while load.group_cpu_seconds(busy.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0.4 <= load.group_cpu_seconds(busy.pid) < 2.0
        assert load.group_cpu_seconds(busy.pid + 10_000_000) == 0
    finally:
        busy.kill()
        busy.wait()
