"""`seqcast serve` in the service image's environment: a virtual environment holding only
what the Docker CPU image installs (the project's base dependencies, listed by
deploy/docker/requirements.py, and the seqcast wheel without its extras). No PyTorch,
pandas, pyarrow, matplotlib, LightGBM or scikit-learn there: the service must start, ingest
and predict on a real artifact all the same."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from packages import trainer_only

from app.embedded_redis import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRAINER_ONLY = trainer_only()


def _run(argv: list[str], **kwargs: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def service_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the service's requirements and seqcast installed without extras,
    built from a copy of the sources (the checkout is left as it was)."""
    tmp = tmp_path_factory.mktemp("service-env")
    source = tmp / "src"
    for name in ("app", "model"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    requirements = subprocess.run(
        [sys.executable, str(ROOT / "deploy/docker/requirements.py"), "--variant", "cpu",
         "--pyproject", str(ROOT / "pyproject.toml")],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", *requirements])
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(source)])
    return python


def test_the_service_env_has_no_trainer_dependency(service_python: Path) -> None:
    for name in TRAINER_ONLY:
        found = subprocess.run([str(service_python), "-c", f"import {name}"],
                               capture_output=True, check=False)
        assert found.returncode != 0, f"{name} is importable in the service's environment"


@pytest.fixture
def served(service_python: Path, demo_artifact: Path, redis_url: str,
           tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SEQCAST_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"SEQCAST_RELOAD_POLL_SECONDS": "0", "SEQCAST_REDIS_KEY_PREFIX": "svcenv"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(service_python.parent / "seqcast"), "serve", "--artifact", str(demo_artifact),
             "--redis-url", redis_url, "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"seqcast serve not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_seqcast_serve_ingests_and_predicts_in_the_service_env(served: str) -> None:
    event = {"user_id": "svc-env-1", "item_id": "i-1", "category_id": "c-1",
             "behavior": "view", "timestamp": 1_700_000_000}
    posted = httpx.post(served + "/v1/events", json=event, timeout=10)
    assert posted.status_code == 200, posted.text
    answer = httpx.get(served + "/v1/users/svc-env-1/prediction", timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["cold_start"] is False and body["window_length"] == 1
    assert abs(sum(body["next_behavior"].values()) - 1) < 1e-5
