"""Fixtures of the deployment tests: the files parsed once per session."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deployfiles import ROOT, Stage, k8s_objects, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfile() -> tuple[list[tuple[str, str]], dict[str, Stage], list[str]]:
    preamble, stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    return preamble, {s.name: s for s in stages}, [s.name for s in stages]


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="session")
def k8s() -> dict[str, dict[str, Any]]:
    return k8s_objects()
