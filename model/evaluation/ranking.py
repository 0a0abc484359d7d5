"""Where targets rank among a log's codes, in memory independent of the catalog.

Two rankers make a `Ranked`. `rank_fixed` is exact and O(cells) per chunk, for a scorer
whose scores are one fixed score per code (`FixedScores`, sorted once: how many codes score
above / equal to a value is a binary search) except for a few per-point `Cells` (the
baselines: popularity, the Markov chain's transitions, the window's own codes). `rank_dense`
is for a scorer that can score any code for any point (the network).

A dense scorer can score any code for any point of a chunk, but ranking the target by
building its (points x codes) score matrix costs 8 GB per chunk of 256 points at 4M items.
`rank_dense` asks the scorer for the target's own score first, then for blocks of codes of
at most BUDGET cells (points x codes), and counts the codes scored above and equal to the
target block by block. The counts are those of the whole matrix, ties and -inf included.

`DenseScores` is that scorer: called with codes (m,) increasing, it returns the (n, m)
scores of these codes for every point; called with codes (n, 1), one code per point, the
(n, 1) scores of each point's own code. Both forms must give a cell the same value and
dtype (float32 where the model's scores are float32), so that the target compares equal to
its own column. `Cells` is what window-dependent scorers add on top of a dense row: per
(point, code) values that replace the row's score in either form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.evaluation.protocol import Ranked

BUDGET = 1 << 22  # cells (points x codes) of one block: 16 MB of float32

DenseScores = Callable[[np.ndarray], np.ndarray]


def rank_dense(scores: DenseScores, targets: np.ndarray, n_codes: int,
               budget: int = BUDGET) -> Ranked:
    """Where each target code ranks among codes 0 .. n_codes - 1 under `scores`; a target
    scored -inf (or NaN) is unseen. Never holds more than `budget` scores at once."""
    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    own = scores(targets[:, None])[:, 0]
    seen = np.isfinite(own)
    better = np.zeros(n, dtype=np.int64)
    ties = np.zeros(n, dtype=np.int64)
    width = max(1, budget // max(n, 1))
    for lo in range(0, n_codes, width):
        block = scores(np.arange(lo, min(lo + width, n_codes)))  # (n, width)
        better += np.count_nonzero(block > own[:, None], axis=1)
        ties += np.count_nonzero(block == own[:, None], axis=1)
    return Ranked(
        better=np.where(seen, better, 0).astype(np.float64),
        ties=np.where(seen, ties - 1, 0).astype(np.float64),  # the target is not its own tie
        seen=seen,
    )


def matrix_scores(matrix: np.ndarray) -> DenseScores:
    """An (n, n_codes) score matrix already in memory as a `DenseScores` (small inputs:
    tests, and external models that only produce a matrix)."""

    def scores(codes: np.ndarray) -> np.ndarray:
        if codes.ndim == 2:
            return np.take_along_axis(matrix, codes, axis=1)
        return matrix[:, codes]

    return scores


@dataclass(frozen=True)
class Cells:
    """Scores of single (point, code) cells that replace a dense row's: one value per
    distinct pair, sorted by code."""

    point: np.ndarray  # (P,) int64
    code: np.ndarray  # (P,) int64
    value: np.ndarray  # (P,) float64

    @classmethod
    def empty(cls) -> Cells:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, np.zeros(0))

    @classmethod
    def highest(cls, point: np.ndarray, code: np.ndarray, value: np.ndarray) -> Cells:
        """The cells of (point, code, value) triples, the highest value of repeated pairs."""
        order = np.lexsort((-value, point, code))  # by code, point, then highest value first
        point, code, value = point[order], code[order], value[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (code[1:] != code[:-1]) | (point[1:] != point[:-1])
        return cls(point[first], code[first], value[first].astype(np.float64))

    def put(self, scores: np.ndarray, codes: np.ndarray) -> None:
        """Write the cells into `scores` of `codes`, in place (the two `DenseScores` forms)."""
        if codes.ndim == 2:  # (n, 1): each point's own code
            hit = codes[self.point, 0] == self.code
            scores[self.point[hit], 0] = self.value[hit]
            return
        if len(codes) == 0:
            return
        lo = int(np.searchsorted(self.code, codes[0], side="left"))
        hi = int(np.searchsorted(self.code, codes[-1], side="right"))
        code = self.code[lo:hi]
        column = np.searchsorted(codes, code)  # < len(codes): code <= codes[-1]
        hit = codes[column] == code
        scores[self.point[lo:hi][hit], column[hit]] = self.value[lo:hi][hit]


class FixedScores:
    """One score per code, the same for every point, and the same scores sorted."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.sorted = np.sort(values)

    def above(self, score: np.ndarray) -> np.ndarray:
        """How many codes score strictly above each value."""
        return len(self.sorted) - np.searchsorted(self.sorted, score, side="right")

    def equal(self, score: np.ndarray) -> np.ndarray:
        """How many codes score exactly each value."""
        return np.searchsorted(self.sorted, score, side="right") - np.searchsorted(
            self.sorted, score, side="left"
        )


def rank_fixed(base: FixedScores, cells: Cells, targets: np.ndarray) -> Ranked:
    """Where each target ranks when code c of point k scores its cell where (k, c) has one
    and base.values[c] otherwise: the sorted base's counts, corrected by the cells."""
    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    own = base.values[targets].astype(np.float64)
    mine = targets[cells.point] == cells.code
    own[cells.point[mine]] = cells.value[mine]
    seen = np.isfinite(own)
    against = own[cells.point]
    replaced = base.values[cells.code]

    def per_point(hit: np.ndarray) -> np.ndarray:
        return np.bincount(cells.point[hit], minlength=n)

    better = (base.above(own) - per_point(replaced > against)
              + per_point(cells.value > against))
    ties = (base.equal(own) - per_point(replaced == against)
            + per_point(cells.value == against) - 1)  # the target is not its own tie
    return Ranked(
        better=np.where(seen, better, 0).astype(np.float64),
        ties=np.where(seen, ties, 0).astype(np.float64),
        seen=seen,
    )
