"""The checks a model passes before it serves, driven by the contract's output spec
(`model.artifact.OUTPUTS`): the demo model passes, and outputs that break the spec are refused
with the output's name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from app.errors import ArtifactRejected
from app.inference.checks import check_model, check_windows
from model.artifact import OUTPUT_DTYPE, OUTPUTS, Artifact, load_artifact
from model.features import Event, Features
from model.retrieval import ItemIndex
from model.runtime import OnnxModel, Outputs, output_shapes

pytestmark = pytest.mark.slow


def test_the_spec_gives_the_shapes_and_dtype_the_model_answers_with(demo_artifact: Path) -> None:
    model = OnnxModel(load_artifact(demo_artifact))
    windows = check_windows(model.artifact)
    out = model.score(windows)
    width = max(len(w) for w in windows)
    assert list(out) == [o.name for o in OUTPUTS]
    for name, shape in output_shapes(model.artifact, len(windows), width).items():
        assert out[name].shape == shape and out[name].dtype == np.dtype(OUTPUT_DTYPE), name
    check_model(model, ItemIndex.open(model.artifact))


class Tampered(OnnxModel):
    """The demo model with its outputs changed by `tamper` on every call."""

    def __init__(self, artifact: Artifact, tamper: Callable[[Outputs], object]) -> None:
        super().__init__(artifact)
        self.tamper = tamper

    def score(self, windows: Sequence[Sequence[Event]]) -> Outputs:
        out = super().score(windows)
        self.tamper(out)
        return out


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda out: out.update(item_query=out["item_query"][:, 1:]), "output item_query has shape"),
    (lambda out: out["item_gate"].__setitem__(0, 1.5), "item_gate has values outside"),
    (lambda out: out.pop("event_surprise"), "no output 'event_surprise'"),
    (lambda out: out["return_prob"].__setitem__(0, 1.5), "return_prob has values outside"),
    (lambda out: out["category_logits"].__setitem__((0, 0), np.nan), "category_logits has non"),
])
def test_outputs_that_break_the_spec_are_refused(
    demo_artifact: Path, tamper: Callable[[Outputs], object], message: str
) -> None:
    with pytest.raises(ArtifactRejected, match=message):
        artifact = load_artifact(demo_artifact)
        check_model(Tampered(artifact, tamper), ItemIndex.open(artifact))


class BatchDependent(OnnxModel):
    """The demo model whose graph's purchase answer moves with the size of its batch."""

    def network(self, features: Features) -> Outputs:
        out = super().network(features)
        out["purchase_prob"] = out["purchase_prob"] * (1 - 0.01 * len(out["purchase_prob"]))
        return out


def test_a_graph_whose_answer_moves_with_its_batch_is_refused(demo_artifact: Path) -> None:
    artifact = load_artifact(demo_artifact)
    with pytest.raises(ArtifactRejected, match="purchase_prob of a window changes with batch"):
        check_model(BatchDependent(artifact), ItemIndex.open(artifact))
