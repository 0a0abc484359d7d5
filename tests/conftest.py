"""Shared fixtures: a real redis-server for the session, a real trained demo artifact,
fresh metric registries, and the service under TestClient or under uvicorn on a real port."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.embedded_redis import EmbeddedRedis, free_port
from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`shared_data` tests skip cleanly where ../shared/datasets is absent."""
    if SHARED_DATASETS.is_dir():
        return
    skip = pytest.mark.skip(reason=f"{SHARED_DATASETS} is absent")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server process for the whole session (the binary the embedded mode uses)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def demo_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model really trained on synthetic shoppers and exported (ONNX + manifest)."""
    from model.pipeline import build_demo_artifact

    return build_demo_artifact(
        tmp_path_factory.mktemp("artifact") / "demo", users=300, preset="tiny", seed=0
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix of its own for each test: tests share one server, not keys."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_settings(
    demo_artifact: Path, redis_url: str, key_prefix: str, tmp_path: Path
) -> Callable[..., Settings]:
    """Settings for a test service: the demo artifact, the session's Redis, no reload poll."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "artifact_dir": demo_artifact,
            "redis_url": redis_url,
            "redis_key_prefix": key_prefix,
            "data_dir": tmp_path / "var",
            "reload_poll_seconds": 0,
            "batch_wait_ms": 1,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def client(make_settings: Callable[..., Settings], registry: CollectorRegistry) -> Iterator[
    TestClient
]:
    """The service with default settings under TestClient (lifespan runs)."""
    with TestClient(create_app(make_settings(), registry)) as test_client:
        yield test_client


class LiveServer:
    """uvicorn serving an app on a free localhost port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def live_server() -> Callable[[FastAPI], LiveServer]:
    """`with live_server(app) as server:` serves `app` over real HTTP at `server.url`."""
    return LiveServer
