"""What a model must pass before it serves: its outputs on a few synthetic windows have the
shapes of the contract's output spec, are finite, are probabilities where the spec says so,
and the graph's do not depend on how the batch is padded; its item vectors match the query's
width and its item candidates are a distribution's top (probabilities summing to at most 1)."""

from __future__ import annotations

import numpy as np

from app.errors import ArtifactRejected
from model.artifact import OUTPUTS, Artifact
from model.features import N_BEHAVIORS, Event
from model.retrieval import ItemIndex, item_candidates
from model.runtime import OnnxModel, output_shapes


def check_windows(artifact: Artifact) -> list[list[Event]]:
    """A few synthetic windows exercising known ids, unknown ids, every behavior, full length."""
    items = artifact.items.ids[:8] or ["unknown-item"]
    categories: list[str | None] = list(artifact.categories.ids[:4]) or [None]
    n = artifact.manifest.features.window_len
    t0 = 1_700_000_000.0
    full = [
        Event(items[i % len(items)], categories[i % len(categories)], i % N_BEHAVIORS,
              t0 + 60.0 * i)
        for i in range(n)
    ]
    return [
        full[:1],
        [Event("never-seen-item", "never-seen-category", 2, t0), Event(items[0], None, 3, t0 + 5)],
        full[: max(1, n // 2)],
        full,
    ]


def check_model(model: OnnxModel, items: ItemIndex) -> None:
    """Refuse a model whose outputs are malformed or that depends on batch padding, or whose
    item index does not fit it."""
    artifact = model.artifact
    windows = check_windows(artifact)
    out = model.score(windows)
    width = max(min(len(w), artifact.manifest.features.window_len) for w in windows)
    shapes = output_shapes(artifact, len(windows), width)
    for spec in OUTPUTS:
        name, shape = spec.name, shapes[spec.name]
        if name not in out:
            raise ArtifactRejected(f"the model has no output {name!r}")
        if out[name].shape != shape:
            raise ArtifactRejected(f"output {name} has shape {out[name].shape}, expected {shape}")
        if not np.all(np.isfinite(out[name])):
            raise ArtifactRejected(f"output {name} has non-finite values")
        if spec.probability and (np.any(out[name] < 0) or np.any(out[name] > 1)):
            raise ArtifactRejected(f"output {name} has values outside [0, 1]")
    if not np.allclose(out["behavior_probs"].sum(axis=1), 1.0, atol=1e-3):
        raise ArtifactRejected("behavior_probs rows do not sum to 1")
    _check_items(model, items, windows, out)
    tolerance = max(artifact.manifest.parity_tolerance, 1e-5)
    if model.int8:
        # Dynamic quantization scales activations by their range over the whole batch, so a
        # window's answer moves with its batch-mates. Each answer lies within the int8
        # model's recorded error of the float32 graph, so two lie within twice that.
        tolerance = max(tolerance, 2 * artifact.manifest.extra["int8_max_error"]["purchase_prob"])
    # The graph's own answer: the head's trees answer each row alone, but a step of theirs
    # can turn the int8 graph's small batch dependence into a jump of a leaf's size.
    batched = model.network(model.featurize(windows))["purchase_prob"]
    for i, window in enumerate(windows):
        alone = model.network(model.featurize([window]))["purchase_prob"][0]
        if abs(float(alone) - float(batched[i])) > tolerance:
            raise ArtifactRejected(
                f"purchase_prob of a window changes with batch padding by "
                f"{abs(alone - batched[i]):.2e} > tolerance {tolerance:.1e}"
            )


def _check_items(model: OnnxModel, items: ItemIndex, windows: list[list[Event]],
                 out: dict[str, np.ndarray]) -> None:
    artifact = model.artifact
    expected = (artifact.items.size, out["item_query"].shape[1])
    if items.vectors.shape != expected:
        raise ArtifactRejected(f"item vectors have shape {items.vectors.shape}, expected "
                               f"{expected} (item layout rows, query width)")
    found = item_candidates(items, out["item_query"], out["item_gate"], out["item_copy"],
                            model.featurize(windows)["item"], 10)
    total = np.where(found.rows >= 0, found.prob, 0.0).sum(axis=1)
    if not np.all(np.isfinite(total)) or np.any(total > 1.0 + 1e-3):
        raise ArtifactRejected(f"item candidate probabilities sum to {total.max():.3g} > 1")
