"""The GRU baseline: the network with its Transformer encoder swapped for a GRU.

Same embeddings, heads, split, labels and calibration as the Transformer; only the encoder
differs, so the gap between the two is what attention buys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from model.evaluation.network import VocabScorer
from model.evaluation.protocol import Horizon
from model.sequences import EventLog, TimeSplit


@dataclass(frozen=True)
class GruOptions:
    """How the GRU baseline is trained when the evaluator trains it itself."""

    preset: str = "default"
    overrides: tuple[tuple[str, Any], ...] = ()


def fit_gru(
    log: EventLog,
    split: TimeSplit,
    manifest_extra: Mapping[str, Any],
    h: Horizon,
    *,
    options: GruOptions = GruOptions(),
    progress: bool = False,
) -> VocabScorer:
    """Train the GRU with the Transformer's saved training settings and score it through
    PyTorch on CPU with `TrainedModel.predict`, which computes the exported graph's outputs
    (no export: the GRU is never served)."""
    from model.net.scorer import item_vectors
    from model.retrieval import ItemIndex, row_sample
    from model.search_graph import item_search_graph
    from model.train import TrainConfig, fit

    saved = manifest_extra.get("train_config")
    known = set(TrainConfig().to_dict())
    settings = {k: v for k, v in (saved or {}).items() if k in known}
    cfg = TrainConfig.preset(
        options.preset,
        **{
            **settings,
            **dict(options.overrides),
            "encoder": "gru",
            "window_len": h.window_len,
            "horizon_seconds": h.horizon,
            "return_gap_seconds": h.return_gap,
        },
    )
    trained = fit(cfg, log, split, tz_offset_seconds=h.tz_offset_seconds, progress=progress)
    vectors = item_vectors(trained.net).numpy()
    rows = ItemIndex(vectors, row_sample(len(vectors), cfg.seed), trained.items.first_oov,
                     item_search_graph())
    # The GRU reads the window alone: when a point is asked about does not change its answer.
    return VocabScorer(lambda features, _now: trained.predict(features), trained.spec,
                       trained.items, trained.categories, rows)
