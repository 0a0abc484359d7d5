"""The synthetic shopper generator: same seed, same bytes; the planted rules of model.synth
hold in what it writes (the statistics a model is later checked against)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.data import load_log
from model.features import Behavior
from model.sequences import EventLog
from model.synth import (
    TAOBAO_TZ_OFFSET,
    SynthConfig,
    Synthetic,
    generate,
    simulate,
    write_csv,
)

N_USERS = 400


@pytest.fixture(scope="module")
def synthetic() -> Synthetic:
    return simulate(N_USERS, seed=3)


def shoppers(s: Synthetic) -> EventLog:
    bots = np.isin(s.log.user_ids[s.log.user], s.bots)
    return s.log.take(~bots)


def sessions(lg: EventLog, session_break: int) -> np.ndarray:
    """Session number of each event (a new user or a gap over session_break starts one)."""
    new = np.ones(len(lg), dtype=bool)
    new[1:] = (lg.user[1:] != lg.user[:-1]) | (np.diff(lg.ts) > session_break)
    return np.cumsum(new)


def test_same_seed_same_bytes_other_seed_other_log(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_csv(a, 60, seed=7)
    write_csv(b, 60, seed=7)
    write_csv(c, 60, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(generate(60, seed=7)) == len(a.read_text().splitlines())


def test_loader_reads_it_and_cleaning_removes_exactly_the_bots(tmp_path: Path) -> None:
    path = tmp_path / "synth.csv"
    truth = write_csv(path, 200, seed=1)
    loaded = load_log(path, progress=False)
    report = loaded.report
    assert report.format == "taobao" and report.n_malformed == 0
    assert report.valid_rows == len(truth.log)
    steps = {s.name: s for s in report.cleaning}
    assert len(truth.bots) == 2
    assert steps["bots"].users_removed == len(truth.bots)
    assert steps["out_of_span"].rows_removed == 0
    assert set(loaded.log.user_ids) == set(truth.favourites)


def test_every_user_is_a_sequence_with_all_behaviors(synthetic: Synthetic) -> None:
    lg = shoppers(synthetic)
    starts, ends = lg.user_bounds()
    assert len(starts) == N_USERS - len(synthetic.bots)
    assert (ends - starts).min() >= 2
    assert 40 <= np.median(ends - starts) <= 200
    counts = np.bincount(lg.behavior.astype(np.int64), minlength=4)
    assert counts[Behavior.VIEW] > 0.75 * len(lg)
    assert counts[Behavior.BUY] > 0 and counts[Behavior.CART] > counts[Behavior.BUY] / 2


def test_sessions_follow_the_diurnal_rhythm(synthetic: Synthetic) -> None:
    lg = shoppers(synthetic)
    first = np.diff(sessions(lg, 1800), prepend=0) > 0
    hour = ((lg.ts[first] + TAOBAO_TZ_OFFSET) // 3600) % 24
    night = np.isin(hour, [2, 3, 4, 5, 6]).mean()
    evening = np.isin(hour, [19, 20, 21, 22]).mean()
    assert evening > 4 * night


def test_views_concentrate_on_each_users_favourite_categories(synthetic: Synthetic) -> None:
    """B1: about 0.8 of a shopper's views fall in their 2-3 favourite categories, and after
    a view outside them the next new category is usually a favourite again."""
    lg = shoppers(synthetic)
    users = lg.user_ids[lg.user]
    cats = lg.category_ids[lg.category]
    fav = np.array([c in synthetic.favourites[u] for u, c in zip(users, cats, strict=True)])
    views = lg.behavior == Behavior.VIEW
    assert 0.72 < fav[views].mean() < 0.9
    same_user = lg.user[1:] == lg.user[:-1]
    switched = same_user & (lg.category[1:] != lg.category[:-1]) & views[1:]
    back_to_favourite = fav[1:][switched & ~fav[:-1]]
    assert back_to_favourite.mean() > 0.6


def test_carts_are_checked_out_at_once_or_bought_later_in_the_session(
    synthetic: Synthetic,
) -> None:
    """F2: p_checkout of the carts is bought by the very next event; F3: p_buy_after_cart of
    the others 2..8 steps later in the same session."""
    lg = shoppers(synthetic)
    session = sessions(lg, 1800)
    carts = np.flatnonzero(lg.behavior == Behavior.CART)
    at_once, bought, distance = [], [], []
    for j in carts:
        later = np.flatnonzero(
            (session[j + 1 :] == session[j])
            & (lg.item[j + 1 :] == lg.item[j])
            & (lg.behavior[j + 1 :] == Behavior.BUY)
        )
        at_once.append(len(later) > 0 and later[0] == 0)
        if not at_once[-1]:
            bought.append(len(later) > 0)
            if len(later):
                distance.append(later[0] + 1)
    cfg = SynthConfig()
    assert abs(float(np.mean(at_once)) - cfg.p_checkout) < 0.07
    assert abs(float(np.mean(bought)) - cfg.p_buy_after_cart) < 0.08
    assert min(distance) >= 2
    assert np.median(distance) >= 5
    base = float(np.mean(lg.behavior == Behavior.BUY))
    assert float(np.mean(at_once)) > 5 * base  # the buy rate after a cart: far above it


def test_a_cart_earlier_in_the_session_predicts_a_buy_a_last_event_cannot(
    synthetic: Synthetic,
) -> None:
    """The long-range rule: after a view, the next event is a buy far more often when the
    session holds an unbought cart, which a first-order (last event) model cannot see."""
    lg = shoppers(synthetic)
    session = sessions(lg, 1800)
    open_cart = np.zeros(len(lg), dtype=bool)
    carted: set[int] = set()
    for j in range(len(lg)):
        if j == 0 or session[j] != session[j - 1]:
            carted = set()
        if lg.behavior[j] == Behavior.CART:
            carted.add(int(lg.item[j]))
        elif lg.behavior[j] == Behavior.BUY:
            carted.discard(int(lg.item[j]))
        open_cart[j] = bool(carted)
    same = session[1:] == session[:-1]
    after_view = same & (lg.behavior[:-1] == Behavior.VIEW)
    next_buy = lg.behavior[1:] == Behavior.BUY
    with_cart = next_buy[after_view & open_cart[:-1]].mean()
    without_cart = next_buy[after_view & ~open_cart[:-1]].mean()
    assert with_cart > 5 * without_cart
    assert with_cart > 0.1


def test_consumables_are_bought_again_days_later(synthetic: Synthetic) -> None:
    """R1: a buy in a consumable category is repeated (same item) 3..7 days later."""
    lg = shoppers(synthetic)
    buys = np.flatnonzero(lg.behavior == Behavior.BUY)
    consumable = np.isin(lg.category_ids[lg.category[buys]], synthetic.consumable)
    repeated = np.zeros(len(buys), dtype=bool)
    for k, j in enumerate(buys):
        earlier = buys[(lg.user[buys] == lg.user[j]) & (lg.item[buys] == lg.item[j])]
        gaps = lg.ts[j] - lg.ts[earlier]
        repeated[k] = bool(((gaps >= 3 * 86400) & (gaps <= 8 * 86400)).any())
    assert repeated[consumable].mean() > 0.15
    assert repeated[consumable].mean() > 5 * repeated[~consumable].mean()


def test_bots_fire_views_faster_than_people(synthetic: Synthetic) -> None:
    lg = synthetic.log
    is_bot = np.isin(lg.user_ids[lg.user], synthetic.bots)
    assert len(synthetic.bots) == 4
    assert (lg.behavior[is_bot] == Behavior.VIEW).all()
    bot_log = lg.take(is_bot)
    starts, ends = bot_log.user_bounds()
    per_minute = (ends - starts) / ((bot_log.ts[ends - 1] - bot_log.ts[starts]) / 60)
    assert per_minute.min() > 90
    assert len(np.unique(bot_log.category)) > 100


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_users"):
        simulate(0)
    with pytest.raises(ValueError, match="days"):
        simulate(5, config=SynthConfig(days=0))
