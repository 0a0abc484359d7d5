"""Training: configuration, windows, vocabularies, learning on synthetic shoppers, warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from model.anomaly import COMBINED, SURPRISE, TABLE_LEVELS
from model.cli import _train_config, build_parser
from model.features import FIRST_KNOWN, SCRIPTED_FEATURES
from model.sequences import EventLog, Points, TimeSplit, validation_points
from model.synth import generate
from model.train import TrainConfig, TrainedModel, fit
from model.train.batches import Indexed, length_batches, training_windows
from model.train.checkpoint import CHECKPOINT, load_checkpoint
from model.train.config import ConfigError
from model.train.vocab import build_vocab

TZ = 8 * 3600


@pytest.fixture(scope="module")
def shoppers() -> EventLog:
    return generate(120, seed=3)


@pytest.fixture(scope="module")
def split(shoppers: EventLog) -> TimeSplit:
    return TimeSplit.by_fraction(shoppers, 0.1, 0.2)


@pytest.fixture(scope="module")
def trained(shoppers: EventLog, split: TimeSplit) -> TrainedModel:
    cfg = TrainConfig.preset("tiny")
    return fit(cfg, shoppers, split, tz_offset_seconds=TZ, progress=False)


def test_presets_and_overrides() -> None:
    cfg = TrainConfig.preset("tiny", d_model=48, encoder="gru")
    assert (cfg.d_model, cfg.encoder, cfg.window_len) == (48, "gru", 20)
    assert TrainConfig.preset("default").window_len == 50
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig.preset("huge")
    with pytest.raises(ValueError, match="layers"):
        TrainConfig.preset("tiny", layers=3)
    with pytest.raises(ValueError, match="item_loss"):
        TrainConfig(item_loss="hierarchical")
    with pytest.raises(ValueError, match="window_len"):
        TrainConfig(window_len=1)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TrainConfig(d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match=r"^TrainConfig: device='tpu': .*auto\|cpu"):
        TrainConfig.preset("tiny", device="tpu")
    net = TrainConfig.preset("tiny", encoder="gru", copy=False).net_config(50, 12, 19)
    assert (net.encoder, net.copy_heads, net.d_model, net.dropout) == ("gru", False, 32, 0.1)


def test_a_refused_preset_names_every_bad_field_on_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        TrainConfig.preset("tiny", max_val_points="abc", lr="x", nosuch="1")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("TrainConfig: ")
    for part in ("max_val_points='abc': ", "lr='x': ", "nosuch='1': Extra inputs"):
        assert part in message


@pytest.mark.parametrize(
    ("value", "expected"), [("True", True), ("true", True), ("1", True), ("false", False),
                            ("0", False)]
)
def test_cli_set_coerces_through_the_config(value: str, expected: bool) -> None:
    args = build_parser().parse_args(
        ["train", "--data", "x.csv", "--out", "a", "--preset", "tiny", "--set",
         f"copy={value}", "--set", "d_model=48", "--set", "lr=1e-4", "--epochs", "3"]
    )
    cfg = _train_config(args)
    assert (cfg.copy_heads, cfg.d_model, cfg.lr, cfg.max_epochs) == (expected, 48, 1e-4, 3)


@pytest.mark.parametrize("pair", ["layers=3", "copy=maybe", "d_model", "encoder=lstm"])
def test_cli_set_refuses_unknown_fields_and_bad_values(pair: str) -> None:
    args = build_parser().parse_args(
        ["train", "--data", "x.csv", "--out", "a", "--preset", "tiny", "--set", pair]
    )
    with pytest.raises(ConfigError, match=pair.partition("=")[0]):
        _train_config(args)


@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(2, 9))
def test_training_windows_cover_each_user_once(counts: list[int], window_len: int) -> None:
    user = np.repeat(np.arange(len(counts)), counts)
    n = len(user)
    log = EventLog.from_codes(
        user, np.zeros(n), np.zeros(n), np.zeros(n), np.arange(n), np.arange(len(counts)),
        np.array(["a"]), np.array(["c"]),
    )
    starts, lengths = training_windows(log, window_len)
    covered = np.concatenate([np.arange(s, s + k) for s, k in zip(starts, lengths, strict=True)])
    assert sorted(covered.tolist()) == list(range(n))
    assert (lengths >= 1).all() and (lengths <= window_len).all()
    for s, k in zip(starts, lengths, strict=True):
        assert len(set(user[s : s + k].tolist())) == 1  # a window never crosses users
        # only a user's first window may be short: full windows are counted back from the end
        assert k == window_len or s == 0 or user[s - 1] != user[s]


def test_length_batches_partition_and_group_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, size=1000)
    batches = length_batches(rng.permutation(1000), lengths, 32, rng, group=4)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 20  # random batches of 32 would spread over ~45


def test_vocab_keeps_old_ids_then_adds_frequent_ones() -> None:
    raw = np.array(["a", "b", "c", "d"], dtype=object)
    codes = np.array([3, 3, 3, 1, 1, 2])
    fresh = build_vocab(raw, codes, min_count=2, n_oov=8, keep=[])
    assert fresh.ids == ["d", "b"]  # most frequent first; "c" (once) and "a" (never) hash
    assert fresh.index_of("d") == FIRST_KNOWN
    assert fresh.index_of("c") >= FIRST_KNOWN + 2
    warm = build_vocab(raw, codes, min_count=2, n_oov=8, keep=["z", "b"])
    assert warm.ids == ["z", "b", "d"]


@pytest.mark.slow
def test_training_reduces_loss_and_fills_the_model(trained: TrainedModel) -> None:
    history = trained.history
    assert len(history) >= 2
    assert history[-1]["train_total"] < history[0]["train_total"]
    assert min(h["val_total"] for h in history) < history[0]["val_total"]
    assert set(history[0]["val_loss"]) == {"behavior", "purchase", "return", "category", "item"}
    assert trained.stats["best_val_loss"] == min(h["val_total"] for h in history)
    calibration = trained.calibration
    assert set(calibration.chosen) == {"behavior", "purchase", "return"}
    assert "behavior" in calibration.ece_before
    for head, after in calibration.ece_after.items():  # chosen on these points: never worse
        assert after <= calibration.ece_before[head]
    q = trained.surprise_quantiles
    assert len(q) == TABLE_LEVELS and q == sorted(q) and q[0] > 0
    assert set(trained.anomaly_quantiles) == {SURPRISE, *SCRIPTED_FEATURES, COMBINED}
    assert abs(sum(trained.priors.behavior) - 1) < 1e-9
    assert trained.priors.top_items and trained.priors.top_categories


def _category_recall(scores: np.ndarray, target: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]
    return float((top == target[:, None]).any(axis=1).mean())


@pytest.mark.slow
def test_learns_user_affinity_beyond_a_first_order_markov_chain(
    shoppers: EventLog, split: TimeSplit, trained: TrainedModel
) -> None:
    """Planted rule B1 (model/synth.py): leaving a category, users go to one of their 2-3
    favourite categories, which only the history shows. A first-order Markov chain over
    categories, fitted on the same training events, sees only the last category; on those
    switches the model must rank the next category better."""
    cfg = trained.cfg
    before_test, points = validation_points(shoppers, split, cfg.window_len, 1, 1)
    features = _features(trained, before_test, points.start, points.length)
    cat_index = trained.categories.lookup(str(c) for c in before_test.category_ids)
    scores = trained.predict(features)["category_logits"]
    target = cat_index[before_test.category[points.target]]
    last = cat_index[before_test.category[points.last]]

    train = shoppers.take(shoppers.ts < split.val_cutoff)
    same = np.flatnonzero(train.user[1:] == train.user[:-1])
    markov = np.zeros((trained.categories.size, trained.categories.size))
    tc = cat_index[train.category]
    np.add.at(markov, (tc[same], tc[same + 1]), 1.0)
    markov += 1e-3 * np.bincount(tc, minlength=trained.categories.size)  # popularity ties
    switch = target != last  # B1's long-range half: leaving the category, to a favourite
    model_recall = _category_recall(scores[switch], target[switch], 5)
    markov_recall = _category_recall(markov[last[switch]], target[switch], 5)
    assert model_recall > markov_recall + 0.05, (model_recall, markov_recall)
    assert _category_recall(scores, target, 5) > 0.6  # and it repeats categories (B1, p_stay)


def _features(trained: TrainedModel, log: EventLog, start: np.ndarray, length: np.ndarray):
    """The windows featurized as the trainer featurizes its validation points."""
    data = Indexed.of(log, log.item_index(trained.items),
                      log.category_index(trained.categories), 1, 1, known_until=0)
    features, _ = data.batch(start, length, trained.spec, trained.cfg.window_len)
    return features


@pytest.mark.slow
def test_same_seed_same_model(shoppers: EventLog, split: TimeSplit) -> None:
    small = shoppers.take(shoppers.user < 40)
    cfg = TrainConfig.preset("tiny", max_epochs=1)
    a = fit(cfg, small, split, tz_offset_seconds=TZ, progress=False)
    b = fit(cfg, small, split, tz_offset_seconds=TZ, progress=False)
    for (name, wa), wb in zip(a.net.state_dict().items(), b.net.state_dict().values(),
                              strict=True):
        assert torch.equal(wa, wb), name


@pytest.mark.slow
def test_warm_start_keeps_known_ids_and_their_weights(
    shoppers: EventLog, split: TimeSplit, trained: TrainedModel, tmp_path: Path
) -> None:
    trained.save_checkpoint(tmp_path / CHECKPOINT)
    saved = load_checkpoint(tmp_path)
    assert saved["items"] == trained.items.ids
    # A newer log: the same shoppers plus new ones, with items the old model never saw.
    newer = generate(160, seed=4)
    later = TimeSplit.by_fraction(newer, 0.1, 0.2)
    cfg = TrainConfig.preset("tiny", max_epochs=1, lr=1e-9, warmup_steps=1, dropout=0.0)
    warm = fit(cfg, newer, later, tz_offset_seconds=TZ, init_from=tmp_path, progress=False)
    old_items, new_items = trained.items, warm.items
    assert new_items.ids[: old_items.n_known] == old_items.ids
    assert new_items.n_known > old_items.n_known
    assert warm.categories.ids[: trained.categories.n_known] == trained.categories.ids
    # With a vanishing learning rate the old rows are the old weights.
    k = FIRST_KNOWN + old_items.n_known
    old_emb = trained.net.item_emb.weight.detach()
    new_emb = warm.net.item_emb.weight.detach()
    torch.testing.assert_close(new_emb[:k], old_emb[:k], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        new_emb[FIRST_KNOWN + new_items.n_known :], old_emb[k:], atol=1e-5, rtol=0
    )  # hashed OOV buckets moved behind the appended ids
    torch.testing.assert_close(
        warm.net.behavior_head.weight.detach(), trained.net.behavior_head.weight.detach(),
        atol=1e-5, rtol=0,
    )


def test_validation_sample_is_a_seeded_subset_of_the_points_in_order() -> None:
    n = 50
    points = Points(start=np.arange(n), last=np.arange(n) + 3, purchase=np.arange(n) % 2,
                    returns=np.arange(n) % 3, now=np.arange(n) * 10)
    sub = points.sample(20, seed=4)
    assert len(sub) == 20
    kept = sub.start
    assert np.all(np.diff(kept) > 0), "a subset, in the original order"
    assert sub.last.tolist() == (kept + 3).tolist(), "fields stay aligned"
    assert sub.purchase.tolist() == (kept % 2).tolist()
    assert sub.returns.tolist() == (kept % 3).tolist()
    assert points.sample(20, seed=4).start.tolist() == kept.tolist()
    assert points.sample(20, seed=5).start.tolist() != kept.tolist()
    assert points.sample(n, seed=4) is points
