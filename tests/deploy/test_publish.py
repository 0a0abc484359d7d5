"""The trainer's publish step (deploy/docker/publish.sh) and the service that serves it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from deployfiles import DEPLOY
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.main import create_app


def publish(artifacts: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "docker" / "publish.sh"), str(artifacts), version],
        capture_output=True, text=True, timeout=30,
    )


@pytest.mark.slow
def test_published_model_is_hot_reloaded_by_the_service(
    demo_artifact: Path, make_settings: Any, tmp_path: Path
) -> None:
    """The trainer's publish step (deploy/docker/publish.sh) swaps `current` to a new
    directory; the service serving `current` picks it up; a directory without a manifest is
    not published."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for version in ("v1", "v2"):
        shutil.copytree(demo_artifact, artifacts / version)
        manifest = json.loads((artifacts / version / "manifest.json").read_text())
        manifest["model_version"] = f"{manifest['model_version']}-{version}"
        (artifacts / version / "manifest.json").write_text(json.dumps(manifest))
    (artifacts / "broken").mkdir()
    assert publish(artifacts, "v1").returncode == 0
    assert os.readlink(artifacts / "current") == "v1"

    settings = make_settings(artifact_dir=artifacts / "current", reload_poll_seconds=0.2)
    with TestClient(create_app(settings, CollectorRegistry())) as client:
        assert client.get("/v1/model").json()["model_version"].endswith("-v1")
        refused = publish(artifacts, "broken")
        assert refused.returncode == 1 and "no manifest.json" in refused.stderr
        assert os.readlink(artifacts / "current") == "v1"
        assert publish(artifacts, "v2").returncode == 0
        deadline = time.monotonic() + 20
        version = ""
        while time.monotonic() < deadline and not version.endswith("-v2"):
            time.sleep(0.2)
            version = client.get("/v1/model").json()["model_version"]
        assert version.endswith("-v2")
        assert client.get("/readyz").status_code == 200
    assert not list(artifacts.glob(".current.*")), "no temporary links left behind"
