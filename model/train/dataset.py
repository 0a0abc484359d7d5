"""What a run trains and validates on: vocabularies, the indexed training events cut into
windows, and the featurized validation sample. The run holds the compact `Indexed` columns
and the windows, not a copy of the training events (docs/data.md, "Memory")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.artifact import Priors
from model.features import FeatureSpec, Vocab
from model.sequences import EventLog, TimeSplit
from model.train.batches import Indexed, training_windows
from model.train.config import TrainConfig
from model.train.frequencies import priors
from model.train.validation import Validation, validation_set
from model.train.vocab import build_vocab


@dataclass(frozen=True)
class RunData:
    """A run's data. starts, lengths: the training windows (flat indices into data)."""

    n_train: int  # training events
    priors: Priors  # of the training events
    spec: FeatureSpec
    items: Vocab
    categories: Vocab
    data: Indexed
    val: Validation
    n_val: int  # validation points in all, before sampling
    starts: np.ndarray
    lengths: np.ndarray


def prepare(
    cfg: TrainConfig, log: EventLog, split: TimeSplit, tz_offset_seconds: int,
    old: dict[str, Any] | None,
) -> RunData:
    """Training events before split.val_cutoff; vocabularies that keep an earlier
    checkpoint's (old) ids in place."""
    spec = FeatureSpec(
        window_len=cfg.window_len,
        tz_offset_seconds=tz_offset_seconds,
        n_oov_items=cfg.n_oov_items,
        n_oov_categories=cfg.n_oov_categories,
    )
    # Vocabularies from everything before the test cutoff: a model deployed there has seen
    # those ids, and an id missing from the vocabulary can never be ranked (nor copied).
    # One column at a time: a large log is never copied whole for it.
    seen = log.ts < split.test_cutoff
    items = build_vocab(
        log.item_ids, log.item[seen], cfg.min_item_count, cfg.n_oov_items,
        list(old["items"]) if old else [],
    )
    categories = build_vocab(
        log.category_ids, log.category[seen], cfg.min_category_count, cfg.n_oov_categories,
        list(old["categories"]) if old else [],
    )
    del seen
    item_index = log.item_index(items)
    cat_index = log.category_index(categories)
    train = log.take(log.ts < split.val_cutoff)
    if len(train) == 0:
        raise ValueError("no training events before the validation cutoff")
    data = Indexed.of(
        train, item_index, cat_index, cfg.horizon_seconds, cfg.return_gap_seconds,
        split.val_cutoff - 1,
    )
    starts, lengths = training_windows(train, cfg.window_len)
    n_train, train_priors = len(train), priors(data, train)
    del train  # the run keeps the compact columns only
    val, n_val = validation_set(log, split, cfg, spec, item_index, cat_index)
    return RunData(n_train, train_priors, spec, items, categories, data, val, n_val, starts,
                   lengths)
