"""Export: the artifact the service loads, and the parity check that guards it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from model.anomaly import COMBINED, SURPRISE, TABLE_LEVELS
from model.artifact import (
    MANIFEST,
    ONNX_INT8,
    OUTPUT_NAMES,
    Artifact,
    ArtifactError,
    load_artifact,
)
from model.export import PARITY_TOLERANCE, ExportError, publish, stage
from model.features import SCRIPTED_FEATURES, Event
from model.net.network import SeqNet
from model.runtime import OnnxModel
from model.sequences import EventLog, TimeSplit, validation_points
from model.synth import generate
from model.train import TrainConfig, TrainedModel, fit
from model.train.checkpoint import CHECKPOINT

TZ = 8 * 3600


def export(
    trained: TrainedModel, out: Path, windows: list[list[Event]], *, int8: bool = False
) -> Artifact:
    """An artifact without an evaluation: staged, then published."""
    return publish(stage(trained, out, parity_windows=windows, int8=int8))


@pytest.fixture(scope="module")
def shoppers() -> EventLog:
    return generate(60, seed=5)


@pytest.fixture(scope="module")
def split(shoppers: EventLog) -> TimeSplit:
    return TimeSplit.by_fraction(shoppers, 0.1, 0.2)


@pytest.fixture(scope="module")
def trained(shoppers: EventLog, split: TimeSplit) -> TrainedModel:
    cfg = TrainConfig.preset("tiny", max_epochs=2)
    return fit(cfg, shoppers, split, tz_offset_seconds=TZ, progress=False)


@pytest.fixture(scope="module")
def windows(shoppers: EventLog, split: TimeSplit) -> list[list[Event]]:
    """Real windows of raw events, of many lengths, as the service would read them."""
    before_test, points = validation_points(shoppers, split, 20, 1, 1)
    pick = np.random.default_rng(0).choice(len(points), size=24, replace=False)
    chosen = [before_test.events(int(points.start[k]), int(points.last[k]) + 1) for k in pick]
    # Most users have long histories: keep the last 1..20 events, as for newer users.
    return [w[-(1 + i % len(w)) :] for i, w in enumerate(chosen)]


def test_export_writes_a_loadable_artifact_that_matches_pytorch(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path
) -> None:
    artifact = export(trained, tmp_path / "a", windows)
    assert artifact.manifest.model_version.endswith(artifact.manifest.onnx_sha256[:8])
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", artifact.manifest.model_version)
    assert artifact.manifest.parity_tolerance == PARITY_TOLERANCE
    assert artifact.manifest.metrics == {}  # the evaluation's, added by the pipeline
    assert artifact.manifest.calibrators == trained.calibration.calibrators
    assert "ece_purchase_after" in artifact.manifest.calibration
    assert len(artifact.manifest.surprise_quantiles) == TABLE_LEVELS
    assert set(artifact.manifest.anomaly_quantiles) == {SURPRISE, *SCRIPTED_FEATURES, COMBINED}
    assert max(artifact.manifest.extra["parity_max_error"].values()) <= PARITY_TOLERANCE
    assert (tmp_path / "a" / CHECKPOINT).is_file()
    loaded = load_artifact(tmp_path / "a")
    assert loaded.items.ids == trained.items.ids

    # Dynamic axes: other batch sizes and window lengths than the traced (2, 3) example.
    model = OnnxModel(loaded)
    for batch in (windows[:1], windows[:7], [w[-1:] for w in windows[:5]]):
        out = model.score(batch)
        width = max(len(w) for w in batch)
        assert out["behavior_probs"].shape == (len(batch), 4)
        assert out["event_surprise"].shape == (len(batch), width)
        assert out["item_query"].shape == (len(batch), trained.net.cfg.d_model + 1)
        assert out["item_gate"].shape == (len(batch),)
        assert out["item_copy"].shape == (len(batch), width)
        np.testing.assert_allclose(out["behavior_probs"].sum(axis=1), 1.0, rtol=1e-5)
    # A window of unseen ids (hashed OOV buckets) still scores.
    unseen = [[Event("never-seen-item", "never-seen-cat", 0, 1.5e9), Event("x", None, 2, 1.5e9)]]
    assert np.isfinite(model.score(unseen)["purchase_prob"]).all()


class _TracedBranch(SeqNet):
    """A network with a Python branch on the window length: tracing records the branch the
    (2, 3) example took, so the exported graph silently differs from PyTorch on longer
    windows - the kind of defect the parity check is there to catch."""

    def encode(self, *inputs: Tensor) -> Tensor:
        h = super().encode(*inputs)
        if int(inputs[0].shape[1]) > 3:
            h = h * 1.5
        return h


def test_parity_failure_raises_and_leaves_no_manifest(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path
) -> None:
    out = tmp_path / "bad"
    export(trained, out, windows)  # an earlier, good export in the same place
    assert (out / MANIFEST).is_file()
    broken = _TracedBranch(trained.net.cfg)
    broken.load_state_dict(trained.net.state_dict())
    bad = TrainedModel(**{**trained.__dict__, "net": broken})
    with pytest.raises(ExportError, match="parity failed"):
        export(bad, out, [w for w in windows if len(w) > 3])
    assert not (out / MANIFEST).exists()


def test_int8_sibling(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        artifact = export(trained, tmp_path / "q", windows, int8=True)
    # The quantizer's INFO line per tensor and its pre-processing advice, logged on the root
    # logger, stay out of the log; the exporter's own lines remain.
    assert [r.getMessage() for r in caplog.records if r.name == "root"] == []
    assert any(r.name == "model.export" for r in caplog.records)
    assert artifact.manifest.has_int8 and (tmp_path / "q" / ONNX_INT8).is_file()
    errors = artifact.manifest.extra["int8_max_error"]
    assert set(errors) == {*OUTPUT_NAMES, "item_mixture"}
    out = OnnxModel(artifact, int8=True).score(windows)
    np.testing.assert_allclose(out["behavior_probs"].sum(axis=1), 1.0, rtol=1e-4)


def test_the_int8_model_is_verified_by_its_own_checksum(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path
) -> None:
    out = tmp_path / "q"
    export(trained, out, windows[:4], int8=True)
    assert OnnxModel(load_artifact(out, int8=True), int8=True).path == out / ONNX_INT8
    (out / ONNX_INT8).write_bytes((out / ONNX_INT8).read_bytes() + b"\0")
    load_artifact(out)  # the float32 model is still whole
    with pytest.raises(ArtifactError, match="model.int8.onnx does not match its checksum"):
        load_artifact(out, int8=True)
    float_only = tmp_path / "f"
    export(trained, float_only, windows[:4])
    with pytest.raises(ArtifactError, match="lists no model.int8.onnx.*--int8"):
        load_artifact(float_only, int8=True)


@pytest.mark.slow
def test_gru_encoder_exports_with_parity(
    shoppers: EventLog, split: TimeSplit, windows: list[list[Event]], tmp_path: Path
) -> None:
    cfg = TrainConfig.preset("tiny", encoder="gru", max_epochs=1)
    gru = fit(cfg, shoppers, split, tz_offset_seconds=TZ, progress=False)
    artifact = export(gru, tmp_path / "gru", windows)
    manifest = json.loads((tmp_path / "gru" / MANIFEST).read_text())
    assert manifest["extra"]["net"]["encoder"] == "gru"
    assert OnnxModel(artifact).score(windows[:3])["return_prob"].shape == (3,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 4}, "schema_version 4; this build reads 3"),
        ({"schema_version": 1}, "older than this build's 3: .*item logits.*retrain it"),
        ({"schema_version": 2}, "older than this build's 3: .*item_search.onnx.*retrain it"),
        ({"horizon_seconds": "a day"}, "horizon_seconds"),
        ({"priors": {"behavior": [1.0]}}, "priors"),
        ({"features": {"window_len": 20, "gap_edges_seconds": 5}}, "gap_edges_seconds"),
        ({"features": {"window_len": 20, "hash": "md5"}}, "crc32"),
    ],
)
def test_a_bad_manifest_is_an_artifact_error(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path, change: dict[str, Any],
    message: str,
) -> None:
    out = tmp_path / "a"
    export(trained, out, windows[:4])
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, **change}))
    with pytest.raises(ArtifactError, match=message):
        load_artifact(out)
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="invalid JSON"):
        load_artifact(out)


def test_checkpoint_describes_itself(trained: TrainedModel, tmp_path: Path) -> None:
    trained.save_checkpoint(tmp_path / CHECKPOINT)
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["net_config"]["d_model"] == trained.net.cfg.d_model
    assert saved["categories"] == trained.categories.ids
    assert saved["features"]["window_len"] == trained.spec.window_len


@pytest.mark.shared_data
@pytest.mark.slow
def test_parity_on_taobao_windows(tmp_path: Path) -> None:
    """The real log: Taobao ids, Beijing time, the truncated last row - through the loader."""
    from model.data import load_log

    path = Path(__file__).resolve().parents[3] / "shared/datasets/taobao_users/UserBehavior.csv"
    data = load_log(path, "taobao", progress=False)
    events = data.log.take(data.log.user < 120)
    split = TimeSplit.by_fraction(events, 0.2, 0.2)
    cfg = TrainConfig.preset("tiny", max_epochs=1)
    trained = fit(cfg, events, split, tz_offset_seconds=data.tz_offset_seconds, progress=False)
    before_test, points = validation_points(events, split, cfg.window_len, 1, 1)
    pick = np.linspace(0, len(points) - 1, 32).astype(int)
    windows = [before_test.events(int(points.start[k]), int(points.last[k]) + 1) for k in pick]
    artifact = export(trained, tmp_path / "taobao", windows)
    assert max(artifact.manifest.extra["parity_max_error"].values()) <= PARITY_TOLERANCE
