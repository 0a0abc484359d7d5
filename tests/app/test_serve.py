"""`serve()` with two worker processes: one shared Redis, metrics aggregated over workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.embedded_redis import free_port

pytestmark = pytest.mark.slow

def test_serve_with_two_workers_shares_redis_and_aggregates_metrics(
    demo_artifact: Path, tmp_path: Path,
    events: Callable[..., Any], metric_value: Callable[..., Any], wait_until: Callable[..., Any],
    wait_ready: Callable[..., None],
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    env.update(SEQCAST_DATA_DIR=str(tmp_path / "var"), SEQCAST_RELOAD_POLL_SECONDS="0",
               SEQCAST_MODEL_THREADS="1")
    metrics_dir = tmp_path / "metrics"  # serve() keeps a directory it is given
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    code = (f"from app.serve import serve; from pathlib import Path; "
            f"serve(Path({str(demo_artifact)!r}), None, '127.0.0.1', {port}, 2)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        # /readyz answers for one worker, and a worker's gauges exist only once it has built
        # its app: livemin over one worker's file reads 1 while the other is still starting.
        def both_ready() -> bool:
            workers = len(list(metrics_dir.glob("gauge_livemin_*.db")))
            text = httpx.get(url + "/metrics").text
            return workers == 2 and metric_value(text, "seqcast_model_ready") == 1

        wait_until(both_ready, timeout=60)
        # New connections each time, so that the requests spread over both workers.
        with httpx.Client(base_url=url, headers={"Connection": "close"}) as http:
            for k in range(8):
                assert http.post("/v1/events", json=events(f"w{k}", 3)).status_code == 200
            for k in range(8):
                assert http.get(f"/v1/users/w{k}/prediction").json()["window_length"] == 3
            scrapes = [http.get("/metrics").text for _ in range(4)]
        for text in scrapes:
            assert metric_value(text, "seqcast_events_ingested_total") == 24
            assert metric_value(text, "seqcast_model_ready") == 1
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
