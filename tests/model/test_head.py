"""The gradient-boosted head (`model.head`): fitted on a real staged artifact, exported to
ONNX, checked against LightGBM, read by `OnnxModel` at the moment asked about."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.artifact import HEAD, ArtifactError, load_artifact
from model.export import publish, stage
from model.features import BEHAVIOR_NAMES, Event
from model.head import ExportError, HeadPoints, attach_head, fit_head, head_points
from model.runtime import OnnxModel
from model.sequences import EventLog, TimeSplit, validation_points
from model.synth import generate
from model.tabular import HEAD_INPUTS, NETWORK_COLUMNS
from model.train import TrainConfig, fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shoppers() -> EventLog:
    return generate(120, seed=3)


@pytest.fixture(scope="module")
def split(shoppers: EventLog) -> TimeSplit:
    return TimeSplit.by_fraction(shoppers, 0.1, 0.2)


@pytest.fixture(scope="module")
def staged(shoppers: EventLog, split: TimeSplit, tmp_path_factory: pytest.TempPathFactory):
    trained = fit(TrainConfig.preset("tiny", max_epochs=2), shoppers, split,
                  tz_offset_seconds=0, progress=False)
    before_test, points = validation_points(shoppers, split, 20, 1, 1)
    windows = [before_test.events(int(points.start[k]), int(points.last[k]) + 1)
               for k in range(0, len(points), max(1, len(points) // 16))]
    return stage(trained, tmp_path_factory.mktemp("head") / "a", parity_windows=windows)


def test_the_head_is_fitted_exported_and_answers_in_the_networks_place(
    staged, shoppers: EventLog, split: TimeSplit
) -> None:
    artifact, calibration = attach_head(staged, shoppers, split, seed=0)
    published = publish(artifact)
    head = published.manifest.head
    assert head is not None and head.inputs == HEAD_INPUTS
    assert set(head.outputs) == {"behavior_probs", "purchase_prob", "return_prob"}
    assert all(trees > 0 for trees in head.trees.values())
    assert calibration is not None
    assert published.manifest.calibrators == calibration.calibrators
    (published.path / HEAD).write_bytes((published.path / HEAD).read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(published.path)


def test_every_point_is_asked_about_twice_with_its_own_labels(
    staged, shoppers: EventLog, split: TimeSplit
) -> None:
    data = head_points(OnnxModel(staged), shoppers, split, seed=0)
    n = len(data.x) // 2
    idle = HEAD_INPUTS.index("idle_seconds")
    assert (data.x[:n, idle] == 0).all(), "just after the last event"
    assert (data.x[n:, idle] >= 0).all() and (data.x[n:, idle] > 0).mean() > 0.5
    np.testing.assert_array_equal(data.behavior[:n], data.behavior[n:])
    assert set(np.unique(data.role)) == {0, 1, 2}, "grow, stop early, calibrate"
    assert (data.purchase[:n] != data.purchase[n:]).any(), "labels count from the moment"


def test_the_head_asks_the_network_in_the_evaluators_chunks(
    staged, shoppers: EventLog, split: TimeSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the graph's per-event surprise holds (batch, time, categories) floats: at 4,096 windows
    # of 50 events over 2,674 categories that was 2 GB a tensor, 10 GB of RSS on an 84k-event log
    seen: list[int] = []
    run = OnnxModel.run_uncalibrated

    def counted(self: OnnxModel, features: dict, now: np.ndarray | None = None) -> dict:
        seen.append(len(features["item"]))
        return run(self, features, now)

    monkeypatch.setattr(OnnxModel, "run_uncalibrated", counted)
    monkeypatch.setattr("model.head.CHUNK", 16)
    data = head_points(OnnxModel(staged), shoppers, split, seed=0)
    assert len(data.x) > 2 * 16 and max(seen) <= 16, seen


def test_a_head_onnx_that_disagrees_with_lightgbm_is_refused(
    staged, shoppers: EventLog, split: TimeSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("model.head.PARITY_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="differs from LightGBM"):
        attach_head(staged, shoppers, split, seed=0)


def test_a_trained_artifact_asked_later_answers_lower_purchase_and_reports_later_points(
    demo_artifact: Path,
) -> None:
    a = load_artifact(demo_artifact)
    model = OnnxModel(a)
    t = 1_512_200_000
    ids, category = a.items.ids, a.categories.ids[0]
    window = [Event(ids[1], category, 0, t - 90), Event(ids[1], category, 2, t)]
    moments = t + np.array([0, 600, 3600, 86400, 30 * 86400])
    features = model.featurize([window] * len(moments))
    raw = model.run_uncalibrated(features, moments)["purchase_prob"]
    assert (np.diff(raw) <= 1e-7).all() and raw[-1] < raw[0], raw
    default = model.run(model.featurize([window]))["purchase_prob"][0]
    assert default == pytest.approx(model.run(features, moments)["purchase_prob"][0])
    metrics = json.loads((demo_artifact / "report" / "metrics.json").read_text())
    assert set(metrics["model"]["later"]) == {"next_behavior", "purchase", "return"}
    assert metrics["protocol"]["later"]["n"] > 0


def test_where_the_network_answers_better_the_trees_do_not_answer() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    behavior = rng.integers(0, 4, n)
    purchase = rng.integers(0, 2, n).astype(np.int8)
    x = rng.normal(size=(n, len(HEAD_INPUTS))).astype(np.float32)
    x[:, HEAD_INPUTS.index("last_behavior")] = rng.integers(0, 4, n)
    for b in range(4):  # a network that knows every answer
        x[:, HEAD_INPUTS.index(f"net_log_{BEHAVIOR_NAMES[b]}")] = np.where(behavior == b, 0, -16)
    x[:, HEAD_INPUTS.index("net_purchase_logit")] = np.where(purchase == 1, 16, -16)
    x[:, HEAD_INPUTS.index("net_return_logit")] = np.where(purchase == 1, 16, -16)
    data = HeadPoints(x=x, behavior=behavior, purchase=purchase, returns=purchase,
                      role=rng.integers(0, 3, n))
    assert fit_head(data, seed=0) is None
    # the same points with a network that knows nothing: the trees answer every head
    for name in NETWORK_COLUMNS:  # uniform behavior, even odds
        x[:, HEAD_INPUTS.index(name)] = np.log(0.25) if name.startswith("net_log_") else 0
    x[:, HEAD_INPUTS.index("window_events")] = behavior * 2 + purchase  # a tabular clue
    fitted = fit_head(data, seed=0)
    assert fitted is not None
    assert set(fitted.boosters) == {"behavior_probs", "purchase_prob", "return_prob"}
    assert all(trees < network for trees, network in fitted.log_loss.values())
