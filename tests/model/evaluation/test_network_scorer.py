"""The network as a scorer: vocabulary -> code-space mapping, window OOV ranking, and the
evaluator's featurization against the service's."""

from __future__ import annotations

import numpy as np
import pytest
from eventlogs import event_log

from model.evaluation.network import VocabScorer, head_scores, window_oov_cells
from model.evaluation.protocol import Ranked
from model.evaluation.scoring import score_points
from model.features import FIRST_KNOWN, Features, FeatureSpec, Vocab, featurize_windows
from model.retrieval import ItemIndex, row_sample
from model.search_graph import item_search_graph
from model.sequences import EventLog, TimeSplit
from model.sequences import test_points as points_of


def small_log() -> tuple[EventLog, TimeSplit]:
    """Two users cycling through items a, b, c (categories x, y, x), one event a minute,
    and a third who only touches an item that no vocabulary knows."""
    rows = []
    for u in range(2):
        for k in range(24):
            rows.append((u, k % 3, (k % 3) % 2, k % 4 == 3 and 3 or 0, 1_000_000 + 60 * k + u))
    rows += [(2, 3, 1, 0, 1_000_000 + 60 * k + 5) for k in range(24)]
    log = event_log(rows, ["u0", "u1", "u2"], ["a", "b", "c", "stranger"], ["x", "y"])
    start, end = int(log.ts.min()), int(log.ts.max())
    return log, TimeSplit(val_cutoff=start + 600, test_cutoff=start + 900, end=end)


class RepeatLastItem:
    """A deterministic stand-in network: the last event's item row gets generator logit 5 and
    every other row, OOV buckets included, logit 1 (item vectors [one-hot row, 1] and the
    query [4 one-hot last row, 1]), no copy; behavior and binary heads are constants."""

    def __init__(self, n_items: int, n_categories: int) -> None:
        self.n_items, self.n_categories = n_items, n_categories
        vectors = np.concatenate([np.eye(n_items), np.ones((n_items, 1))], axis=1)
        self.rows = ItemIndex(vectors.astype(np.float32), row_sample(n_items, 0), n_items - 8,
                              item_search_graph())

    def __call__(self, features: Features, now: np.ndarray) -> dict[str, np.ndarray]:
        b = len(features["item"])
        query = np.zeros((b, self.n_items + 1), dtype=np.float32)
        query[np.arange(b), features["item"][:, -1]] = 4.0
        query[:, -1] = 1.0
        return {
            "behavior_probs": np.tile([0.7, 0.1, 0.1, 0.1], (b, 1)),
            "purchase_prob": np.full(b, 0.2),
            "return_prob": np.full(b, 0.5),
            "category_logits": np.zeros((b, self.n_categories), dtype=np.float32),
            "item_query": query,
            "item_gate": np.ones(b, dtype=np.float32),
            "item_copy": np.zeros(features["item"].shape, dtype=np.float32),
        }


def test_items_map_to_log_codes_and_window_oov_ids_rank_by_their_bucket() -> None:
    log, split = small_log()
    spec = FeatureSpec(window_len=4, n_oov_items=8, n_oov_categories=2)
    # "c" is left out of the item vocabulary, like "stranger": each can be ranked only where
    # it occurs in the window, by the score of the bucket it hashes to (as the service does).
    items, categories = Vocab(["b", "a"], 8), Vocab(["x", "y"], 2)
    model = RepeatLastItem(items.size, categories.size)
    scorer = VocabScorer(model, spec, items, categories, model.rows)
    points = points_of(log, split, 4, 600, 120)
    out = scorer.score(log, points)
    assert isinstance(out.item, Ranked) and out.item.top is not None
    top = out.item.top
    last = log.item[points.last]
    assert (top[:, 0] == last).all(), "the last item's row scores 5, OOV or not"
    stranger = last == 3
    assert stranger.any() and (~stranger).any()
    assert items.index_of("stranger") >= FIRST_KNOWN + items.n_known
    # Outside the vocabulary and absent from the window: never ranked.
    assert not (top[stranger] == 2).any()
    assert not (top[~stranger] == 3).any()
    # "c" in a window of a, b, c: ranked by its bucket, after the last item.
    cycling = ~stranger & (last != 2)
    assert (top[cycling][:, 1:] == 2).any(axis=1).all()
    assert ((top[stranger] == 0).any(axis=1) & (top[stranger] == 1).any(axis=1)).all()
    target = log.item[points.target]
    hit = top == target[:, None]
    np.testing.assert_array_equal(out.item.better, np.where(hit.any(axis=1), hit.argmax(axis=1),
                                                            top.shape[1]))
    assert scorer.ann_recall is None, "exact search"

    result = score_points(scorer, log, points)
    observed = log.ts[points.last] + 600 <= split.end
    assert result["purchase"]["n"] == int(observed.sum())
    assert result["purchase"]["n_censored"] == int((~observed).sum())
    targets = log.item[points.target]
    in_window = [t in log.item[s : s + n] for t, s, n in
                 zip(targets, points.start, points.length, strict=True)]
    unrankable = np.isin(targets, [2, 3]) & ~np.array(in_window)
    assert result["next_item"]["unseen_rate"] == pytest.approx(unrankable.mean())
    assert set(result) == {
        "next_behavior",
        "purchase",
        "return",
        "next_item",
        "next_category",
    }


def test_window_oov_codes_sharing_a_bucket_split_it() -> None:
    """Codes 0 and 1 hash to bucket row 5, code 2 to row 6, code 3 is known (row 2): in
    point 0's window 0, 1 and 3 occur (0 twice), in point 1's only 2."""
    logits = np.log(np.array([[0.1, 0.1, 0.2, 0.1, 0.1, 0.3, 0.1], [0.1] * 5 + [0.2, 0.3]]))
    index = np.array([5, 5, 6, 2])
    oov = np.array([True, True, True, False])
    cells = window_oov_cells(logits, index, oov, np.array([0, 0, 0, 0, 1]),
                             np.array([0, 1, 0, 3, 2]))
    assert list(zip(cells.point.tolist(), cells.code.tolist(), strict=True)) == [
        (0, 0), (0, 1), (1, 2)
    ]
    np.testing.assert_allclose(np.exp(cells.value), [0.15, 0.15, 0.3])
    scores = head_scores(logits, index, np.array([False, False, False, True]), cells)
    np.testing.assert_allclose(np.exp(scores(np.arange(4))),
                               [[0.15, 0.15, 0, 0.2], [0, 0, 0.3, 0.1]])
    np.testing.assert_allclose(np.exp(scores(np.array([[1], [3]]))), [[0.15], [0.1]])


def test_evaluator_features_equal_the_service_featurization() -> None:
    """The evaluator's vectorized featurization of log windows equals the service's path on
    the same windows as raw events (unknown ids, OOV hashing and a time zone included)."""
    log, split = small_log()
    spec = FeatureSpec(window_len=5, tz_offset_seconds=8 * 3600, n_oov_items=8)
    items, categories = Vocab(["b", "a"], 8), Vocab(["y"], 2)
    model = RepeatLastItem(items.size, categories.size)
    scorer = VocabScorer(model, spec, items, categories, model.rows)
    points = points_of(log, split, 5, 600, 120)
    ours = scorer.features(log, points)
    windows = [
        log.events(int(s), int(j) + 1) for s, j in zip(points.start, points.last, strict=True)
    ]
    service = featurize_windows(windows, spec, items, categories)
    for name, value in service.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)

