"""The live gauges (`seqcast_model_ready`, `seqcast_model_info`, ...) of a worker that exited
leave the multiprocess directory: they describe the workers that serve now."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.embedded_redis import free_port
from app.metrics import forget_dead_workers

LIVE_GAUGE = re.compile(r"gauge_live(min|max)_([0-9]+)\.db")
WRITE_A_GAUGE = """
from prometheus_client import CollectorRegistry, Gauge
Gauge("g", "a gauge", registry=CollectorRegistry(), multiprocess_mode="livemin").set(1)
"""


def live_gauge_pids(directory: Path) -> set[int]:
    return {int(m.group(2)) for p in directory.iterdir() if (m := LIVE_GAUGE.fullmatch(p.name))}


def test_forget_dead_workers_drops_only_the_exited_processes_gauges(tmp_path: Path) -> None:
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    exited = subprocess.Popen([sys.executable, "-c", WRITE_A_GAUGE], env=env)
    exited.wait(timeout=30)
    (tmp_path / f"gauge_livemin_{os.getpid()}.db").write_bytes(b"")  # a live process's
    (tmp_path / f"counter_{exited.pid}.db").write_bytes(b"")  # counts outlive their writer
    assert live_gauge_pids(tmp_path) == {exited.pid, os.getpid()}
    assert forget_dead_workers(str(tmp_path)) == [exited.pid]
    assert live_gauge_pids(tmp_path) == {os.getpid()}
    assert (tmp_path / f"counter_{exited.pid}.db").exists()


@pytest.mark.slow
def test_a_killed_workers_gauges_vanish_from_the_metrics_port_when_uvicorn_replaces_it(
    demo_artifact: Path, tmp_path: Path,
    metric_value: Callable[..., Any], wait_until: Callable[..., Any],
) -> None:
    port, metrics_port = free_port(), free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    env |= {"SEQCAST_DATA_DIR": str(tmp_path / "var"), "SEQCAST_RELOAD_POLL_SECONDS": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "SEQCAST_METRICS_PORT": str(metrics_port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.dispatch", "serve", "--artifact", str(demo_artifact),
         "--port", str(port), "--workers", "2"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def two_workers_ready() -> bool:
        assert proc.poll() is None, "seqcast serve exited"
        try:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        except httpx.TransportError:
            return False
        return len(live_gauge_pids(metrics_dir)) == 2 and metric_value(
            text, "seqcast_model_ready") == 1

    try:
        wait_until(two_workers_ready, timeout=90)
        assert httpx.get(url + "/metrics").status_code == 404, "metrics only on their port"
        killed = min(live_gauge_pids(metrics_dir))
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: killed not in live_gauge_pids(metrics_dir), timeout=15)
        wait_until(two_workers_ready, timeout=90)
        assert killed not in live_gauge_pids(metrics_dir)
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert live_gauge_pids(metrics_dir) == set(), "the workers that stopped are forgotten too"
