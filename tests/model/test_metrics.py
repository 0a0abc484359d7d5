"""Metrics against values computed by hand, and invariants that any correct version keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.evaluation.ranking import matrix_scores, rank_dense
from model.metrics import (
    EPS,
    RankingMetrics,
    accuracy,
    average_precision,
    confusion_matrix,
    log_loss,
    macro_auc,
    macro_f1,
    per_class_auc,
    reliability,
    roc_auc,
)

binary_cases = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 6).map(lambda v: v / 6), min_size=n, max_size=n),
    )
)


def _pairwise_auc(y: list[int], s: list[float]) -> float:
    pos = [v for v, t in zip(s, y, strict=True) if t == 1]
    neg = [v for v, t in zip(s, y, strict=True) if t == 0]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_roc_auc_by_hand() -> None:
    # Pairs (pos, neg): (0.8, 0.1) win, (0.8, 0.4) win, (0.35, 0.1) win, (0.35, 0.4) loss.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    # A tie between a positive and a negative counts one half.
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


@settings(max_examples=60, deadline=None)
@given(binary_cases)
def test_roc_auc_matches_pairwise_definition(case: tuple[list[int], list[float]]) -> None:
    y, s = case
    if len(set(y)) < 2:
        return
    assert roc_auc(np.array(y), np.array(s)) == pytest.approx(_pairwise_auc(y, s))
    # Reversing the scores mirrors the AUC.
    assert roc_auc(np.array(y), -np.array(s)) == pytest.approx(1 - _pairwise_auc(y, s))


def test_average_precision_by_hand() -> None:
    # Ranked: 0.8 (pos) P=1 R=.5; 0.4 (neg); 0.35 (pos) P=2/3 R=1 -> AP = .5*1 + .5*2/3.
    ap = average_precision(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    # Tied scores form one threshold: all three at once, precision 2/3 at recall 1.
    assert average_precision(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.5])) == pytest.approx(2 / 3)


@settings(max_examples=60, deadline=None)
@given(binary_cases)
def test_average_precision_bounds(case: tuple[list[int], list[float]]) -> None:
    y, s = np.array(case[0]), np.array(case[1])
    if y.sum() == 0:
        assert math.isnan(average_precision(y, s))
        return
    ap = average_precision(y, s)
    assert 0 <= ap <= 1 + 1e-12
    # A perfect ranking has AP 1.
    assert average_precision(y, y.astype(float)) == pytest.approx(1.0)


def test_log_loss_binary_and_multiclass_by_hand() -> None:
    assert log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(
        -(math.log(0.8) + math.log(0.6)) / 2
    )
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert log_loss(np.array([0, 3]), probs) == pytest.approx(-(math.log(0.7) + math.log(0.25)) / 2)
    # Probabilities at 0 and 1 are clipped to [EPS, 1 - EPS]: a confident wrong answer costs
    # -log(EPS), not infinity; a confident right one almost nothing.
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(EPS))
    assert log_loss(np.array([0]), np.array([1.0])) == pytest.approx(-math.log(EPS))
    assert log_loss(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(-math.log1p(-EPS))
    assert log_loss(np.array([3]), np.array([[1.0, 0.0, 0.0, 0.0]])) == pytest.approx(
        -math.log(EPS), rel=1e-6
    )
    with pytest.raises(ValueError, match="0 or 1"):
        log_loss(np.array([-1, 1]), np.array([0.5, 0.5]))


def test_reliability_and_ece_by_hand() -> None:
    # Bin [0.2, 0.267): two points at 0.25 with one positive -> |0.5 - 0.25| * 2/4.
    # Bin [0.933, 1.0]: two points at 1.0, both positive -> 0.
    r = reliability(np.array([0.25, 0.25, 1.0, 1.0]), np.array([1, 0, 1, 1]))
    assert r.ece == pytest.approx(0.125)
    assert len(r.edges) == 16 and sum(r.count) == 4
    assert r.count[3] == 2 and r.count[14] == 2
    assert r.mean_outcome[3] == 0.5 and r.mean_confidence[14] == 1.0
    assert math.isnan(r.mean_outcome[0])
    assert r.to_dict()["mean_outcome"][0] is None  # type: ignore[index]


@settings(max_examples=40, deadline=None)
@given(binary_cases)
def test_ece_is_zero_when_each_bin_matches_its_frequency(
    case: tuple[list[int], list[float]],
) -> None:
    y = np.array(case[0])
    # Predict each point's bin frequency exactly: a constant prediction equal to the base rate.
    r = reliability(np.full(len(y), y.mean()), y)
    assert r.ece == pytest.approx(0.0, abs=1e-12)
    assert 0 <= reliability(np.array(case[1]), y).ece <= 1


def test_classification_metrics_by_hand() -> None:
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    assert accuracy(y, pred) == pytest.approx(4 / 6)
    cm = confusion_matrix(y, pred, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    # F1: class 0 = 2*1/(2+2)=.5, class 1 = 2*1/(1+2)=2/3, class 2 = 2*2/(3+2)=.8; class 3 absent.
    assert macro_f1(y, pred) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    # A class predicted but never true scores 0 and counts; one absent from both does not.
    assert macro_f1(np.array([0, 0]), np.array([0, 1])) == pytest.approx((2 / 3 + 0) / 2)


def test_undefined_metrics_are_nan() -> None:
    """What the report shows as — (null in the JSON): one class, or no points at all."""
    assert math.isnan(roc_auc(np.array([0, 0]), np.array([0.2, 0.3])))
    assert math.isnan(average_precision(np.array([0, 0]), np.array([0.2, 0.3])))
    assert average_precision(np.array([1, 1]), np.array([0.2, 0.3])) == 1.0
    assert math.isnan(macro_auc(np.array([2, 2]), np.full((2, 4), 0.25)))
    empty = np.zeros(0, dtype=np.int64)
    assert math.isnan(accuracy(empty, empty))
    assert math.isnan(macro_f1(empty, empty))
    assert math.isnan(log_loss(empty, np.zeros(0)))
    assert math.isnan(log_loss(empty, np.zeros((0, 4))))
    # One class is enough for a log loss.
    assert log_loss(np.array([1, 1]), np.array([0.5, 0.5])) == pytest.approx(math.log(2))


def test_per_class_and_macro_auc() -> None:
    y = np.array([0, 1, 2, 0])
    probs = np.array(
        [[0.6, 0.2, 0.1, 0.1], [0.2, 0.7, 0.05, 0.05], [0.5, 0.1, 0.3, 0.1], [0.4, 0.4, 0.1, 0.1]]
    )
    aucs = per_class_auc(y, probs)
    # Class 0: positives .6,.4 vs negatives .2,.5 -> wins (.6>.2,.6>.5,.4>.2) = 3/4.
    assert aucs[0] == pytest.approx(0.75)
    assert aucs[1] == 1.0 and aucs[2] == 1.0
    assert math.isnan(aucs[3])
    assert macro_auc(y, probs) == pytest.approx((0.75 + 1 + 1) / 3)


def ranking_metrics(
    scores: np.ndarray, targets: np.ndarray, recall_k: int, ndcg_k: int
) -> dict[str, float | int]:
    """The ranking metrics of one score matrix, its targets ranked by `rank_dense`."""
    acc = RankingMetrics(recall_k=recall_k, ndcg_k=ndcg_k)
    acc.update(rank_dense(matrix_scores(scores), targets, scores.shape[1]))
    return acc.result()


def test_ranking_by_hand() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.5, -np.inf],  # target 2: one item higher -> rank 2
            [0.1, 0.2, 0.3, 0.4],  # target 3: rank 1
            [0.2, -np.inf, 0.3, 0.0],  # target 1 scored -inf: unseen, a miss
        ]
    )
    out = ranking_metrics(scores, np.array([2, 3, 1]), recall_k=1, ndcg_k=2)
    assert out["recall@1"] == pytest.approx(1 / 3)
    assert out["ndcg@2"] == pytest.approx((1 / math.log2(3) + 1) / 3)
    assert out["unseen_rate"] == pytest.approx(1 / 3)
    assert out["mean_rank_seen"] == pytest.approx(1.5)


def test_ranking_ties_take_the_expected_rank() -> None:
    # Target tied with 3 others, nothing higher: rank uniform on 1..4.
    scores = np.zeros((1, 4))
    out = ranking_metrics(scores, np.array([0]), recall_k=2, ndcg_k=3)
    assert out["recall@2"] == pytest.approx(0.5)
    assert out["ndcg@3"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(4)) / 4)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.lists(st.integers(0, 3).map(float), min_size=7, max_size=7),
                min_size=n,
                max_size=n,
            ),
            st.lists(st.integers(0, 6), min_size=n, max_size=n),
            st.integers(1, 5),
        )
    )
)
def test_ranking_streams_in_any_chunks(case: tuple[list[list[float]], list[int], int]) -> None:
    rows, targets, chunk = case
    scores, tgt = np.array(rows), np.array(targets)
    whole = ranking_metrics(scores, tgt, recall_k=3, ndcg_k=2)
    acc = RankingMetrics(recall_k=3, ndcg_k=2)
    for lo in range(0, len(tgt), chunk):
        part = scores[lo : lo + chunk]
        acc.update(rank_dense(matrix_scores(part), tgt[lo : lo + chunk], part.shape[1]))
    streamed = acc.result()
    for key in ("recall@3", "ndcg@2"):
        assert streamed[key] == pytest.approx(whole[key])
        assert 0 <= streamed[key] <= 1
    # Ranking every item at once always finds the target within n_items.
    assert ranking_metrics(scores, tgt, recall_k=7, ndcg_k=2)["recall@7"] == pytest.approx(1.0)
