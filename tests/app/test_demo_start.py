"""The first start: `seqcast serve` with no artifact trains the demo model in a child
process and serves it, with no alarming noise on stderr, and the serving process never
loads PyTorch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.embedded_redis import free_port

pytestmark = pytest.mark.slow

NOISE = (
    "CUDA",  # onnxruntime's CPU build asked for a GPU provider it does not have
    "UserWarning",  # PyTorch's, e.g. a scalar read from a tensor that requires grad
    "faiss.loader",  # faiss's loader trying each instruction set
    "Quantiz",  # the int8 quantizer's per-tensor lines
    "WARNING",
    "Traceback",
)


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) / 1024


def test_serve_trains_the_demo_quietly_and_serves_it_without_pytorch(
    redis_url: str, tmp_path: Path, wait_ready: Callable[..., None]
) -> None:
    # a demo left by an older build is trained again, not refused
    stale = tmp_path / "artifacts" / "demo"
    stale.mkdir(parents=True)
    (stale / "manifest.json").write_text('{"schema_version": 2}')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.dispatch", "serve", "--redis-url", redis_url,
         "--port", str(port)],
        env=env | {"SEQCAST_RELOAD_POLL_SECONDS": "0"}, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_ready(proc, url, timeout=600)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        rss = _rss_mib(proc.pid)
        card = httpx.get(url + "/v1/model").json()
    finally:
        proc.send_signal(signal.SIGINT)
        _, raw = proc.communicate(timeout=60)
    stderr = raw.decode()
    assert proc.returncode == 0, stderr[-3000:]
    assert (tmp_path / "artifacts" / "demo" / "manifest.json").is_file()
    assert card["model_version"]
    for noise in NOISE:
        assert noise not in stderr, (noise, stderr[-3000:])
    # The trainer ran in a child: the server maps no PyTorch library, and its memory is the
    # service's (about 130 MiB; with PyTorch imported it was 760 MiB).
    assert "libtorch" not in maps
    assert rss < 400, rss
    # No progress bar redraws on a pipe; each phase is one log line.
    assert "\r" not in stderr
    assert stderr.count("loaded ") == 1 and "restored epoch" in stderr
