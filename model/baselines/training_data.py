"""What every baseline is fitted on: the log before the test cutoff, nothing after it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.evaluation.protocol import Horizon
from model.sequences import EventLog, TimeSplit, purchase_labels, return_labels


@dataclass(frozen=True)
class TrainingData:
    """The log before the test cutoff (what the Transformer may see while training), its
    transitions (consecutive events of a user) and its labels, censored at the test cutoff."""

    log: EventLog
    prev: np.ndarray  # index of the earlier event of each transition
    next: np.ndarray  # index of the later event
    purchase: np.ndarray  # per event, CENSORED where unknown at the test cutoff
    returns: np.ndarray
    n_items: int
    n_categories: int

    @classmethod
    def build(cls, log: EventLog, split: TimeSplit, h: Horizon) -> TrainingData:
        train = log.take(log.ts < split.test_cutoff)
        known_until = split.test_cutoff - 1
        nxt = np.flatnonzero(train.position_in_user() > 0)
        return cls(
            log=train,
            prev=nxt - 1,
            next=nxt,
            purchase=purchase_labels(train, h.horizon, known_until),
            returns=return_labels(train, h.horizon, h.return_gap, known_until),
            n_items=len(log.item_ids),
            n_categories=len(log.category_ids),
        )
