"""`seqcast serve` in an environment without the trainer's dependencies (each one replaced
by a module that fails to import, as an absent package does): it serves a given artifact, and
with no artifact it says in one line what to install, instead of a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from packages import trainer_only

from app.embedded_redis import free_port

pytestmark = pytest.mark.slow

TRAINER_ONLY = trainer_only()


def without_trainer(tmp_path: Path) -> dict[str, str]:
    """An environment in which every trainer-only package fails to import."""
    stubs = tmp_path / "absent"
    for name in TRAINER_ONLY:
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError({f'No module named {name!r}'!r}, name={name!r})\n"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(stubs), env.get("PYTHONPATH", "")])
    return env


def test_serve_runs_an_artifact_without_the_trainer_installed(
    demo_artifact: Path, redis_url: str, tmp_path: Path, wait_ready: Callable[..., None]
) -> None:
    port = free_port()
    env = without_trainer(tmp_path) | {"SEQCAST_RELOAD_POLL_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.dispatch", "serve", "--artifact", str(demo_artifact),
         "--redis-url", redis_url, "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]


def test_serve_without_an_artifact_or_the_trainer_says_what_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "model.dispatch", "serve", "--port", str(free_port())],
        env=without_trainer(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "pip install -e '.[train]'" in last and "--artifact" in last
    assert not (tmp_path / "artifacts" / "demo" / "manifest.json").exists()


def test_serve_takes_its_artifact_from_seqcast_artifact_dir(
    demo_artifact: Path, redis_url: str, tmp_path: Path, wait_ready: Callable[..., None]
) -> None:
    """As in the service image: no --artifact, SEQCAST_ARTIFACT_DIR set, no trainer."""
    port = free_port()
    env = without_trainer(tmp_path) | {"SEQCAST_RELOAD_POLL_SECONDS": "0",
                                       "SEQCAST_ARTIFACT_DIR": str(demo_artifact)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.dispatch", "serve", "--redis-url", redis_url,
         "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    try:
        wait_ready(proc, url)
        served = httpx.get(url + "/v1/model").json()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    manifest = json.loads((demo_artifact / "manifest.json").read_text())
    assert served["model_version"] == manifest["model_version"]
    assert not (tmp_path / "artifacts").exists(), "no demo training"
