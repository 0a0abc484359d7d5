"""Helpers of the service's tests, as fixtures: a POST /v1/events body, a sample's value in
the /metrics text, and polling until a condition holds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

T0 = 1_714_564_800.0


def _events(user: str, n: int) -> dict[str, Any]:
    return {"events": [
        {"user_id": user, "item_id": f"i{i % 5}", "category_id": f"c{i % 2}",
         "behavior": ["view", "cart", "fav", "buy"][i % 4], "timestamp": T0 + 30 * i,
         "event_id": f"{user}-{i}"}
        for i in range(n)
    ]}


def _metric_value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not exported")


def _wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture
def events() -> Callable[[str, int], dict[str, Any]]:
    """`events(user, n)`: a batch body of n events of one user, 30 s apart, ids `user-i`."""
    return _events


@pytest.fixture
def metric_value() -> Callable[[str, str], float]:
    """`metric_value(text, sample)`: the value of an unlabelled sample in /metrics text."""
    return _metric_value


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """`wait_until(check, timeout=15)`: poll `check` until true, else fail the test."""
    return _wait_until


def _wait_ready(proc: subprocess.Popen[Any], url: str, timeout: float = 60.0) -> None:
    def ready() -> bool:
        assert proc.poll() is None, "seqcast serve exited"
        try:
            return httpx.get(url + "/readyz").status_code == 200
        except httpx.TransportError:
            return False

    _wait_until(ready, timeout)


@pytest.fixture
def wait_ready() -> Callable[..., None]:
    """`wait_ready(proc, url, timeout=60)`: until the service process `proc` answers
    /readyz at `url` with 200; fails the test if it exits first or the time runs out."""
    return _wait_ready
