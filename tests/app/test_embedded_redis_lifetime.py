"""The embedded redis-server never outlives `seqcast serve`, and one data directory has one
server: kill -9 of the service takes its redis-server down, a second service on the same
data directory is refused in one line, and a server left over there is stopped (its data
flushed and kept) before a new one starts on the same append-only file."""

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
import redis

from app.embedded_redis import PID_FILE, EmbeddedRedis, free_port
from app.processes import running

pytestmark = pytest.mark.slow


def serve_command(artifact: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "model.dispatch", "serve", "--artifact", str(artifact),
            "--port", str(port)]


def service_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    return env | {"SEQCAST_DATA_DIR": str(data_dir), "SEQCAST_RELOAD_POLL_SECONDS": "0"}


def test_kill_9_of_serve_takes_its_redis_server_down_and_a_second_serve_is_refused(
    demo_artifact: Path, tmp_path: Path, events: Callable[..., Any],
    wait_until: Callable[..., Any], wait_ready: Callable[..., None],
) -> None:
    data = tmp_path / "var"
    port = free_port()
    proc = subprocess.Popen(serve_command(demo_artifact, port), env=service_env(data),
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    try:
        wait_ready(proc, url)
        assert httpx.post(url + "/v1/events", json=events("k", 3)).status_code == 200
        redis_pid = int((data / PID_FILE).read_text())
        assert running(redis_pid)

        second = subprocess.run(serve_command(demo_artifact, free_port()), env=service_env(data),
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "Traceback" not in second.stderr
        last = second.stderr.strip().splitlines()[-1]
        assert str(data) in last and "SEQCAST_DATA_DIR" in last
        assert running(redis_pid), "the refused start left the first one's server alone"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    wait_until(lambda: not running(redis_pid), timeout=5)


def test_a_leftover_redis_server_on_the_data_dir_is_stopped_and_its_data_kept(
    tmp_path: Path, wait_until: Callable[..., Any],
) -> None:
    data = tmp_path / "var"
    data.mkdir()
    # A server as a dead owner leaves it: running on the data directory, named by the pid
    # file, in a session of its own (no parent whose death would stop it).
    orphan_port = free_port()
    orphan = subprocess.Popen(EmbeddedRedis(data, port=orphan_port).command(),
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    (data / PID_FILE).write_text(f"{orphan.pid}\n")
    try:
        client = redis.Redis(port=orphan_port)

        def stored() -> bool:
            try:
                return bool(client.set("kept", "yes"))
            except redis.ConnectionError:
                return False

        wait_until(stored)
        server = EmbeddedRedis(data)
        server.start()
        try:
            assert orphan.poll() is not None, "the leftover server was stopped"
            assert redis.Redis(port=server.port).get("kept") == b"yes"
        finally:
            server.stop()
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()
    assert not (data / PID_FILE).exists()
