"""Featurization: the trainer's vectorized path and the service's per-window path agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.features import (
    DEFAULT_GAP_EDGES,
    FIRST_EVENT_GAP,
    FIRST_KNOWN,
    MISSING,
    Behavior,
    Event,
    Features,
    FeatureSpec,
    Vocab,
    featurize_windows,
    gap_bucket,
    occlusions,
    window_oov,
)
from model.sequences import EventLog
from model.train.batches import Indexed

SPEC = FeatureSpec(window_len=6, tz_offset_seconds=8 * 3600, n_oov_items=16, n_oov_categories=4)
ITEMS = Vocab([f"i{k}" for k in range(5)], SPEC.n_oov_items)
CATEGORIES = Vocab(["c0", "c1"], SPEC.n_oov_categories)

events = st.builds(
    Event,
    item_id=st.sampled_from(["i0", "i1", "i4", "new-item", "x" * 40]),
    category_id=st.sampled_from(["c0", "c1", "unseen", None]),
    behavior=st.sampled_from([int(b) for b in Behavior]),
    ts=st.integers(1_500_000_000, 1_500_100_000).map(float),
)
windows = st.lists(events, min_size=1, max_size=10).map(lambda w: sorted(w, key=lambda e: e.ts))


def test_vocab_layout_known_missing_and_hashed() -> None:
    assert ITEMS.index_of("i0") == FIRST_KNOWN
    assert ITEMS.index_of("i4") == FIRST_KNOWN + 4
    assert CATEGORIES.index_of(None) == MISSING
    assert CATEGORIES.index_of("") == MISSING
    oov = ITEMS.index_of("never-seen")
    assert FIRST_KNOWN + ITEMS.n_known <= oov < ITEMS.size
    assert ITEMS.index_of("never-seen") == oov, "hashing must be stable"
    assert ITEMS.is_known(np.array([0, 1, 2, 6, 7])).tolist() == [False, False, True, True, False]
    assert ITEMS.id_of(FIRST_KNOWN + 3) == "i3"


def test_vocab_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="unique"):
        Vocab(["a", "a"], 4)


def test_behavior_parse_names_allowed_values() -> None:
    assert Behavior.parse("Cart") is Behavior.CART
    with pytest.raises(ValueError, match="allowed: view, fav, cart, buy"):
        Behavior.parse("click")


def test_gap_buckets_are_monotone_and_start_after_first_event_code() -> None:
    gaps = np.array([-5, 0, 1, 4, 59, 60, 3600, 10**8])
    b = gap_bucket(gaps, SPEC.gap_edges_seconds)
    assert b[0] == b[1] == FIRST_EVENT_GAP + 1
    assert np.all(np.diff(b) >= 0)
    assert b.max() == SPEC.n_gap_buckets - 1


def test_known_window_is_featurized_as_documented() -> None:
    monday_9am_beijing = 1_511_744_400  # 2017-11-27 09:00 +08:00 (01:00 UTC)
    w = [
        Event("i1", "c0", Behavior.VIEW, monday_9am_beijing),
        Event("i2", None, Behavior.CART, monday_9am_beijing + 30),
    ]
    f = featurize_windows([w, w[:1]], SPEC, ITEMS, CATEGORIES)
    assert f["item"].tolist() == [[3, 4], [0, 3]]
    assert f["category"].tolist() == [[2, MISSING], [0, 2]]
    assert f["behavior"].tolist() == [[1, 3], [0, 1]]
    assert f["gap"][0, 0] == FIRST_EVENT_GAP and f["gap"][1, 1] == FIRST_EVENT_GAP
    assert f["gap"][0, 1] == gap_bucket(np.array([30]), SPEC.gap_edges_seconds)[0]
    assert f["hour"].tolist() == [[10, 10], [0, 10]]
    assert f["weekday"].tolist() == [[1, 1], [0, 1]]


def _trainer_features(batch: list[list[Event]]) -> Features:
    """The trainer's path: the windows as a log (one user each, a missing category as the
    loaders store it, ""), its id tables indexed and its windows featurized as
    `model.train` does for training and validation batches."""
    kept = [w[-SPEC.window_len :] for w in batch]
    flat = [e for w in kept for e in w]
    item_ids = sorted({e.item_id for e in flat})
    category_ids = sorted({e.category_id or "" for e in flat})
    log = EventLog.from_codes(
        np.repeat(np.arange(len(kept)), [len(w) for w in kept]),
        np.array([item_ids.index(e.item_id) for e in flat]),
        np.array([category_ids.index(e.category_id or "") for e in flat]),
        np.array([e.behavior for e in flat]),
        np.array([int(e.ts) for e in flat]),
        np.arange(len(kept)).astype(str),
        np.array(item_ids, dtype=object),
        np.array(category_ids, dtype=object),
    )
    data = Indexed.of(log, log.item_index(ITEMS),
                      log.category_index(CATEGORIES), 1, 1, known_until=0)
    starts, ends = log.user_bounds()
    features, _ = data.batch(starts, ends - starts, SPEC, int((ends - starts).max()))
    return features


@settings(max_examples=60, deadline=None)
@given(st.lists(windows, min_size=1, max_size=5))
def test_service_and_trainer_paths_agree(batch: list[list[Event]]) -> None:
    """Training/serving skew check: featurize_windows(raw events) == the trainer's batches
    of the same windows as a log, whatever ids, gaps and lengths."""
    served = featurize_windows(batch, SPEC, ITEMS, CATEGORIES)
    trained = _trainer_features(batch)
    assert served.keys() == trained.keys()
    for name in served:
        np.testing.assert_array_equal(served[name], trained[name], err_msg=name)


@settings(max_examples=60, deadline=None)
@given(st.lists(windows, min_size=1, max_size=5))
def test_padding_is_left_and_exactly_where_no_event_is(batch: list[list[Event]]) -> None:
    f = featurize_windows(batch, SPEC, ITEMS, CATEGORIES)
    lengths = np.array([min(len(w), SPEC.window_len) for w in batch])
    width = f["item"].shape[1]
    assert width == lengths.max()
    real = np.arange(width)[None, :] >= width - lengths[:, None]
    for name, x in f.items():
        assert np.all((x != 0) == real), name
    assert np.all(f["gap"][np.arange(len(batch)), width - lengths] == FIRST_EVENT_GAP)


@settings(max_examples=40, deadline=None)
@given(windows)
def test_window_keeps_only_the_most_recent_events(w: list[Event]) -> None:
    long = featurize_windows([w], SPEC, ITEMS, CATEGORIES)
    tail = featurize_windows([w[-SPEC.window_len :]], SPEC, ITEMS, CATEGORIES)
    for name in long:
        np.testing.assert_array_equal(long[name], tail[name])


def test_occlusions_leave_each_event_out_once() -> None:
    w = [Event(f"i{k}", "c0", Behavior.VIEW, float(k)) for k in range(4)]
    left_out = occlusions(w)
    assert len(left_out) == 4
    for k, o in enumerate(left_out):
        assert o == w[:k] + w[k + 1 :]


def test_spec_round_trips_and_refuses_unknown_hash() -> None:
    saved = json.loads(json.dumps(SPEC.model_dump()))
    assert saved["hash"] == "crc32" and saved["gap_edges_seconds"] == list(DEFAULT_GAP_EDGES)
    assert FeatureSpec.model_validate(saved) == SPEC
    with pytest.raises(ValueError, match="crc32"):
        FeatureSpec.model_validate({**saved, "hash": "md5"})


def test_window_oov_lists_unknown_window_ids_once_with_their_buckets() -> None:
    def oov(vocab: Vocab, raws: list[str | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
        return window_oov(vocab, raws, vocab.lookup(raws))

    vocab = Vocab(["k0", "k1"], 1)  # one bucket: every unknown id collides
    ids, rows, shift = oov(vocab, ["k0", "new-a", None, "", "new-b", "new-a", "k1"])
    assert ids == ["new-a", "new-b"]
    assert rows.tolist() == [vocab.index_of("new-a")] * 2 == [FIRST_KNOWN + 2] * 2
    assert shift == pytest.approx(np.log([2.0, 2.0])), "two ids split one bucket"
    ids, rows, shift = oov(Vocab(["k0"], 64), ["k0", "new-a"])
    assert ids == ["new-a"] and shift.tolist() == [0.0]
    assert oov(vocab, ["k0", None])[0] == []
