"""The rankers against a direct reading of the score matrix: ties, -inf and block edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.evaluation.protocol import Ranked
from model.evaluation.ranking import (
    Cells,
    FixedScores,
    matrix_scores,
    rank_dense,
    rank_fixed,
)
from model.metrics import RankingMetrics

RECALL_K, NDCG_K = 3, 2


def direct(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Recall@K / NDCG@K / unseen rate read off the matrix point by point: every rank the
    target may take among its ties, averaged."""
    recall, ndcg, unseen = [], [], 0
    for row, t in zip(scores, targets, strict=True):
        own = row[t]
        if not np.isfinite(own):
            unseen += 1
            recall.append(0.0)
            ndcg.append(0.0)
            continue
        first = int((row > own).sum()) + 1
        ranks = range(first, first + int((row == own).sum()))
        recall.append(float(np.mean([r <= RECALL_K for r in ranks])))
        ndcg.append(float(np.mean([1 / math.log2(r + 1) if r <= NDCG_K else 0 for r in ranks])))
    return {"recall": float(np.mean(recall)), "ndcg": float(np.mean(ndcg)),
            "unseen": unseen / len(targets)}


def metrics_of(ranked: Ranked) -> dict[str, float]:
    acc = RankingMetrics(recall_k=RECALL_K, ndcg_k=NDCG_K)
    acc.update(ranked)
    out = acc.result()
    return {"recall": float(out[f"recall@{RECALL_K}"]), "ndcg": float(out[f"ndcg@{NDCG_K}"]),
            "unseen": float(out["unseen_rate"])}


VALUES = st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0])
cases = st.tuples(st.integers(1, 9), st.integers(1, 13)).flatmap(
    lambda shape: st.tuples(
        st.lists(st.lists(VALUES, min_size=shape[1], max_size=shape[1]),
                 min_size=shape[0], max_size=shape[0]),
        st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0]),
        st.integers(1, 40),
    )
)


@settings(max_examples=80, deadline=None)
@given(cases)
def test_rank_dense_equals_the_matrix_read_directly(
    case: tuple[list[list[float]], list[int], int],
) -> None:
    rows, targets, budget = case
    scores, tgt = np.array(rows, dtype=np.float32), np.array(targets)
    ranked = rank_dense(matrix_scores(scores), tgt, scores.shape[1], budget=budget)
    assert metrics_of(ranked) == pytest.approx(direct(scores, tgt))
    assert (ranked.seen == np.isfinite(scores[np.arange(len(tgt)), tgt])).all()


def test_rank_dense_holds_only_its_budget() -> None:
    """A scorer that records what it is asked for: the target column, then blocks of at
    most budget // points codes."""
    asked: list[tuple[int, ...]] = []
    scores = np.random.default_rng(0).random((4, 1000))

    def recording(codes: np.ndarray) -> np.ndarray:
        asked.append(codes.shape)
        return matrix_scores(scores)(codes)

    rank_dense(recording, np.array([1, 2, 3, 999]), 1000, budget=400)
    assert asked[0] == (4, 1)
    assert asked[1:] == [(100,)] * 10


cell_cases = st.tuples(st.integers(1, 6), st.integers(1, 10)).flatmap(
    lambda shape: st.tuples(
        st.lists(VALUES, min_size=shape[1], max_size=shape[1]),
        st.lists(st.tuples(st.integers(0, shape[0] - 1), st.integers(0, shape[1] - 1),
                           st.sampled_from([0.5, 3.0, 4.0, 5.0])), max_size=20),
        st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0]),
    )
)


@settings(max_examples=80, deadline=None)
@given(cell_cases)
def test_rank_fixed_equals_the_matrix_with_its_cells(
    case: tuple[list[float], list[tuple[int, int, float]], list[int]],
) -> None:
    base, triples, targets = case
    values, tgt = np.array(base), np.array(targets)
    matrix = np.tile(values, (len(tgt), 1))
    for p, c in {(p, c) for p, c, _ in triples}:  # a cell replaces the base score
        matrix[p, c] = max(v for q, d, v in triples if (q, d) == (p, c))
    point, code, value = (np.array([t[k] for t in triples], dtype=dtype)
                          for k, dtype in enumerate((np.int64, np.int64, np.float64)))
    cells = Cells.highest(point, code, value)
    fixed = rank_fixed(FixedScores(values), cells, tgt)
    assert metrics_of(fixed) == pytest.approx(direct(matrix, tgt))
    dense_cells = rank_dense(lambda codes: _with_cells(values, cells, len(tgt), codes),
                             tgt, len(values), budget=3)
    np.testing.assert_array_equal(fixed.better, dense_cells.better)
    np.testing.assert_array_equal(fixed.ties, dense_cells.ties)


def _with_cells(values: np.ndarray, cells: Cells, n: int, codes: np.ndarray) -> np.ndarray:
    out = np.array(np.broadcast_to(values[codes], (n, codes.shape[-1])))
    cells.put(out, codes)
    return out
