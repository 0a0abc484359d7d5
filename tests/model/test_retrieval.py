"""Item retrieval on real exported tiny models under ONNX Runtime: the exact search is the
network's mixture over the whole vocabulary, the approximate one finds nearly the same top
items, and the index files are checksummed like the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.artifact import ITEM_ANN, ITEM_VECTORS, Artifact, ArtifactError, load_artifact
from model.export import publish, stage
from model.features import FIRST_KNOWN, Event, Features, featurize_windows
from model.retrieval import Candidates, ItemIndex, item_candidates
from model.runtime import OnnxModel
from model.sequences import EventLog, TimeSplit, validation_points
from model.synth import generate
from model.train import TrainConfig, TrainedModel, fit

K = 10
ANN_RECALL_BOUND = 0.9  # HNSW at efSearch 128 over a few hundred rows is all but exact


@pytest.fixture(scope="module")
def shoppers() -> EventLog:
    return generate(80, seed=11)


@pytest.fixture(scope="module")
def trained(shoppers: EventLog) -> TrainedModel:
    split = TimeSplit.by_fraction(shoppers, 0.1, 0.2)
    return fit(TrainConfig.preset("tiny", max_epochs=2), shoppers, split, tz_offset_seconds=0,
               progress=False)


@pytest.fixture(scope="module")
def windows(shoppers: EventLog) -> list[list[Event]]:
    split = TimeSplit.by_fraction(shoppers, 0.1, 0.2)
    before_test, points = validation_points(shoppers, split, 20, 1, 1)
    pick = np.random.default_rng(1).choice(len(points), size=48, replace=False)
    return [before_test.events(int(points.start[k]), int(points.last[k]) + 1) for k in pick]


def _export(trained: TrainedModel, out: Path, windows: list[list[Event]], ann: bool) -> Artifact:
    return publish(stage(trained, out, parity_windows=windows[:8], ann=ann))


def _served(artifact: Artifact, windows: list[list[Event]], *, exact: bool = False
            ) -> tuple[Features, Candidates]:
    model = OnnxModel(artifact)
    features = model.featurize(windows)
    out = model.run(features)
    found = item_candidates(ItemIndex.open(artifact), out["item_query"], out["item_gate"],
                            out["item_copy"], features["item"], K, exact=exact)
    return features, found


def test_exact_search_is_the_pytorch_mixture_over_the_whole_vocabulary(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path
) -> None:
    artifact = _export(trained, tmp_path / "exact", windows, ann=False)
    assert artifact.manifest.item_index.ann is None
    features, found = _served(artifact, windows)
    assert isinstance(found.prob, np.ndarray)
    items = trained.items
    every = np.broadcast_to(np.arange(items.size), (len(windows), items.size))
    logp = trained.item_logp(featurize_windows(windows, trained.spec, items,
                                               trained.categories), every)
    p = np.exp(logp)
    for b in range(len(windows)):
        rows = found.rows[b][found.rows[b] >= 0]
        np.testing.assert_allclose(found.prob[b][: len(rows)], p[b, rows], rtol=1e-4, atol=1e-9)
        # The k best known rows of the full mixture are the first known candidates.
        known = rows[(rows >= FIRST_KNOWN) & (rows < items.first_oov)][:K]
        want = FIRST_KNOWN + np.argsort(-p[b, FIRST_KNOWN : items.first_oov], kind="stable")[:K]
        np.testing.assert_allclose(np.sort(p[b, known]), np.sort(p[b, want]), rtol=1e-4)


def test_approximate_search_finds_the_exact_top_items(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path
) -> None:
    artifact = _export(trained, tmp_path / "ann", windows, ann=True)
    assert artifact.manifest.item_index.ann == "faiss-hnsw"
    _, approx = _served(artifact, windows)
    _, exact = _served(artifact, windows, exact=True)
    found = [len(set(a[:K]) & set(e[:K])) / K for a, e in
             zip(approx.rows, exact.rows, strict=True)]
    assert np.mean(found) >= ANN_RECALL_BOUND
    # Estimated Z: the candidates' probabilities stay a distribution's top.
    total = np.where(approx.rows >= 0, approx.prob, 0.0).sum(axis=1)
    assert (total <= 1.0 + 1e-6).all()


@pytest.mark.parametrize("name", [ITEM_VECTORS, ITEM_ANN])
def test_item_index_files_are_checksummed(
    trained: TrainedModel, windows: list[list[Event]], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "c"
    _export(trained, out, windows, ann=True)
    (out / name).write_bytes((out / name).read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match=f"{name} does not match its checksum"):
        load_artifact(out)
