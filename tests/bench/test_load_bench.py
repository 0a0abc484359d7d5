"""The load benchmark's own machinery (bench/load.py) on its floor server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_module() -> Any:
    spec = importlib.util.spec_from_file_location("seqcast_bench_load", BENCH / "load.py")
    assert spec is not None and spec.loader is not None
    load = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = load  # dataclasses look their module up there
    spec.loader.exec_module(load)
    return load


@pytest.mark.slow
def test_bench_floor_server_is_measured_with_its_cpu(tmp_path: Path) -> None:
    """bench/load.py end to end on its floor: uvicorn serving bench/floor.py, the httpx
    client, server CPU from /proc, the Markdown row."""
    load = load_module()
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


@pytest.mark.slow
def test_bench_loads_the_naive_peer_and_gives_the_target_ratios(
    tmp_path: Path, demo_artifact: Path, redis_url: str
) -> None:
    """The naive peer served on the same model.onnx and Redis, loaded like seqcast; the two
    ratios come from the rows they name."""
    load = load_module()
    if not load.PEER.is_file():
        pytest.skip(f"no naive peer at {load.PEER}")
    window_len = load.manifest_window_len(demo_artifact)
    workload = load.seed_peer_windows(redis_url, 3, window_len)
    assert workload.users == ["u0", "u1", "u2"]
    opts = load.Options("httpx", [1, 4], 0.5, 200, {}, tmp_path)
    with load.peer_service(load.PEER, demo_artifact, window_len, redis_url, 2, tmp_path) as (
        url, pgid
    ):
        peer = load.measure(opts, url, load.PEER_TARGET, "prediction", workload, 2, pgid)
    assert [(r.workers, r.clients) for r in peer] == [(2, 1), (2, 4)]
    assert all(r.requests > 0 and r.errors == 0 for r in peer)

    def row(target: str, workers: int | None, p50: float, n: int) -> Any:
        return load.Result(target, workers, 1 if workers != 2 else 4, n, 0, 1.0, p50, p50)

    results = [row("floor: bare ASGI (uvicorn)", 1, 0.1, 1), row("floor: Redis PING", None, 0.1, 1),
               row("floor: ONNX Runtime run (batch 1), T=5", None, 0.3, 1),
               row(load.PREDICTION_TARGET, 1, 0.6, 1), row(load.PREDICTION_TARGET, 2, 1.0, 300),
               row(load.PEER_TARGET, 2, 1.0, 100)]
    ratios = load.target_ratios(results, 4)
    assert ratios["p50_over_floor"] == pytest.approx(1.2)
    assert ratios["predictions_per_s_over_peer"] == pytest.approx(3.0)
    assert load.target_ratios(results[:-1], 4)["predictions_per_s_over_peer"] is None
