"""SEQCAST_INT8: the service serves the artifact's int8 model, verified by its own checksum,
and says so; an artifact without one is refused, naming how to make it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from model.artifact import ONNX, ONNX_INT8
from model.data import load_log
from model.pipeline import train_artifact
from model.synth import write_csv
from model.train import TrainConfig


@pytest.fixture(scope="module")
def int8_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained with `--int8`: model.onnx and model.int8.onnx side by side."""
    root = tmp_path_factory.mktemp("int8")
    write_csv(root / "shoppers.csv", 120, 1)
    data = load_log(root / "shoppers.csv", "taobao", progress=False)
    cfg = TrainConfig.preset("tiny", max_epochs=1)
    train_artifact(data, root / "a", cfg, baselines=False, int8=True, progress=False)
    return root / "a"


@pytest.mark.parametrize(("int8", "served"), [(True, ONNX_INT8), (False, ONNX)])
def test_the_setting_chooses_the_model_file_served(
    int8: bool, served: str, int8_artifact: Path, make_settings: Callable[..., Settings],
    registry: CollectorRegistry, events: Callable[[str, int], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(artifact_dir=int8_artifact, int8=int8)
    with caplog.at_level(logging.INFO, logger="app.inference.predictor"), TestClient(
        create_app(settings, registry)
    ) as client:
        assert client.app.state.services.predictor.current.onnx_file == served
        assert client.post("/v1/events", json=events("q", 6)).status_code < 300
        prediction = client.get("/v1/users/q/prediction")
        assert prediction.status_code == 200
        assert prediction.json()["window_length"] == 6
    assert f"{int8_artifact}/{served} on" in caplog.text


def test_int8_without_an_int8_model_is_refused_naming_the_flag(
    make_settings: Callable[..., Settings], registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.inference.predictor"), TestClient(
        create_app(make_settings(int8=True), registry)
    ) as client:
        assert not client.app.state.services.predictor.ready
    assert "lists no model.int8.onnx" in caplog.text and "--int8" in caplog.text
