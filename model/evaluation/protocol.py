"""What every compared model answers on a test point, and the labels it is compared on.

The exported network (`model.evaluation.network`) and each baseline (`model.baselines`) are
a `Scorer`: for a chunk of `model.sequences.Points` of the full log it answers the same
heads as the network. Next item / next category are answered as a `Ranked`: where each
point's target (`EventLog.item` / `EventLog.category` of its target event) ranks among the
log's item / category CODES, in memory independent of the catalog (a dense scorer goes
through `model.evaluation.ranking.rank_dense`). A code a model cannot rank scores -inf,
exactly like an id outside the network's vocabulary; a head without an answer is None and
the evaluator omits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from model.sequences import EventLog, Points


@dataclass(frozen=True)
class Ranked:
    """A ranking head's answer for n points, in memory independent of the catalog: where
    each point's target ranks among the log's codes (the expected rank under uniform
    tie-breaking is better + ties / 2 + 1), and optionally the K best codes."""

    better: np.ndarray  # (n,) float64: codes scored strictly above the target
    ties: np.ndarray  # (n,) float64: other codes scored equal to the target
    seen: np.ndarray  # (n,) bool: the target was rankable (a finite score)
    top: np.ndarray | None = None  # (n, K) int64 codes best first, -1 where fewer than K


@dataclass(frozen=True)
class Scores:
    """A scorer's answers for n points; None where it has no answer for a head."""

    behavior: np.ndarray | None = None  # (n, 4) probabilities, Behavior order
    purchase: np.ndarray | None = None  # (n,) P(purchase within the horizon)
    returns: np.ndarray | None = None  # (n,) P(return within the horizon)
    category: Ranked | None = None  # the target category among the log's category codes
    item: Ranked | None = None  # the target item among the log's item codes
    # A calibrated scorer's probabilities before its calibrators (the report's "before")
    uncalibrated: Scores | None = None


class Scorer(Protocol):
    """Anything the evaluator can score: answers a chunk of points of a log."""

    def score(self, log: EventLog, points: Points) -> Scores: ...


@dataclass(frozen=True)
class Horizon:
    """The label parameters of the model being compared (from its manifest)."""

    window_len: int
    horizon: int
    return_gap: int
    tz_offset_seconds: int = 0
