"""Seeded synthetic shoppers: event logs with known, documented structure.

`simulate(n_users, seed, config)` returns the log and the ground truth (favourite categories, bot
users, consumable categories); `generate` returns the log alone; `write_csv` writes it in
the Taobao format (headerless user,item,category,pv|fav|cart|buy,unix seconds) so that
`model.data.load_log` reads it like the real thing. The same seed gives the same bytes.

Planted rules (every parameter is a field of SynthConfig; defaults in brackets):

Catalogue
  C1  n_categories [200] categories with Zipf(category_zipf [1.0]) popularity and
      items_per_category [60] items each, Zipf(item_zipf [1.1]) popularity within a category.
      Ids: category "1000+c", item "100000+i", user "1+u" (decimal strings).
  C2  A fraction consumable_fraction [0.15] of the categories is consumable (see R1).

Time
  T1  A user has 1 + Poisson(sessions_per_day [1.2] x days) sessions, each on a uniformly
      drawn day, starting at an hour drawn from HOUR_WEIGHTS (Beijing local time: quiet
      01-07 h, peak 20-22 h), at least session_break [1800 s] after the previous session
      ended.
  T2  Inside a session, gaps between steps are lognormal with median gap_median [25 s] and
      sigma gap_sigma [0.9], clipped to [1, 900] s; a step's second event (fav, cart, buy of
      the viewed item) comes 1..action_delay_max [20] s after its view.
  T3  A session has 1 + Geometric(1 / session_steps_mean [7]) browsing steps. Nothing is
      emitted past start_ts [2017-11-25 00:00 Beijing] + days [9] x 86400.

Browsing (one step = one view, sometimes followed by an action on the same item)
  B1  Category: with p_stay [0.45] the previous step's category again (short-range, a
      first-order model sees it); otherwise one of the user's favourites with
      p_affinity [0.75], else a category by global popularity. Favourites: 2 or 3
      categories per user, drawn by popularity (long-range: only the user's history tells
      which they are). Expected share of views in favourite categories: about 0.8.
  B2  Item: by Zipf popularity within the category.

Funnel (on the SAME item)
  F1  After a view: cart with p_cart [0.07], else fav with p_fav [0.04], else buy at once
      with p_direct_buy [0.01].
  F2  A cart is checked out at once with p_checkout [0.6]: the next event buys that item,
      1..action_delay_max s later (short-range: the last event tells, and the buy
      probability after a cart sits far above the base rate, what the demo model shows).
  F3  Otherwise it is bought with p_buy_after_cart [0.6] that many browsing steps later:
      uniform in [cart_buy_steps_min 2, cart_buy_steps_max 8]. The session goes on until
      the pending buys are done. The buying step views the item again and buys it
      1..action_delay_max s later, so this buy is predictable only from the cart earlier in
      the session (long-range). Carts bought neither way are never bought.

Repeat purchases
  R1  A buy in a consumable category schedules a repeat: in the user's first session that
      starts at least repeat_days_min..repeat_days_max [3..7] days (uniform) later, the first
      step views the same item and buys it with p_repeat [0.7].

Bots
  X1  A fraction bot_fraction [0.01] of the users (at least one when n_users >= 10) are
      bots: one session of bot_events_min..bot_events_max [300..600] views of uniformly
      random items of uniformly random categories, 0 or 1 s apart (about 120 a minute,
      which the loader's cleaning removes as bot-like).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.features import Behavior
from model.sequences import EventLog

# Relative session-start weight of each local hour 0..23 (Beijing time for Taobao).
HOUR_WEIGHTS = (
    4, 2, 1, 1, 1, 1, 1, 2, 4, 6, 7, 7, 7, 6, 6, 6, 6, 7, 8, 10, 12, 12, 11, 7,
)  # fmt: skip
TAOBAO_TZ_OFFSET = 8 * 3600
DEFAULT_START_TS = 1_511_539_200  # 2017-11-25 00:00 Beijing, like Taobao UserBehavior
TAOBAO_NAMES = {
    Behavior.VIEW: "pv",
    Behavior.FAV: "fav",
    Behavior.CART: "cart",
    Behavior.BUY: "buy",
}


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the planted rules (see the module docstring for what each does)."""

    # Time (T1-T3): the log spans days from start_ts
    start_ts: int = DEFAULT_START_TS
    days: float = 9.0
    sessions_per_day: float = 1.2
    session_break: int = 1800
    gap_median: float = 25.0
    gap_sigma: float = 0.9
    action_delay_max: int = 20
    session_steps_mean: float = 7.0
    # Catalogue (C1, C2)
    n_categories: int = 200
    items_per_category: int = 60
    category_zipf: float = 1.0
    item_zipf: float = 1.1
    consumable_fraction: float = 0.15
    # Browsing (B1)
    p_stay: float = 0.45
    p_affinity: float = 0.75
    # Funnel (F1-F3)
    p_cart: float = 0.07
    p_fav: float = 0.04
    p_direct_buy: float = 0.01
    p_checkout: float = 0.6
    p_buy_after_cart: float = 0.6
    cart_buy_steps_min: int = 2
    cart_buy_steps_max: int = 8
    # Repeat purchases (R1)
    repeat_days_min: float = 3.0
    repeat_days_max: float = 7.0
    p_repeat: float = 0.7
    # Bots (X1)
    bot_fraction: float = 0.01
    bot_events_min: int = 300
    bot_events_max: int = 600


DEFAULT_CONFIG = SynthConfig()


@dataclass
class Synthetic:
    """A generated log and the truth behind it (raw ids as in the log's id tables)."""

    log: EventLog
    favourites: dict[str, list[str]] = field(default_factory=dict)  # user -> categories
    bots: list[str] = field(default_factory=list)
    consumable: list[str] = field(default_factory=list)
    config: SynthConfig = field(default_factory=SynthConfig)


def _zipf_cumulative(n: int, s: float) -> list[float]:
    weights = [1.0 / (rank + 1) ** s for rank in range(n)]
    return list(itertools.accumulate(weights))


def _pick(rnd: random.Random, cumulative: Sequence[float]) -> int:
    return bisect.bisect_right(cumulative, rnd.random() * cumulative[-1])


class _Shop:
    """The catalogue and one random stream; emits events into flat lists."""

    def __init__(self, cfg: SynthConfig, rnd: random.Random) -> None:
        self.cfg = cfg
        self.rnd = rnd
        self.start_ts = cfg.start_ts
        self.end_ts = cfg.start_ts + int(cfg.days * 86400)
        self.days = cfg.days
        # Category ranks are shuffled so popular categories are not simply the low ids.
        self.category_order = list(range(cfg.n_categories))
        rnd.shuffle(self.category_order)
        self.category_cum = _zipf_cumulative(cfg.n_categories, cfg.category_zipf)
        self.item_cum = _zipf_cumulative(cfg.items_per_category, cfg.item_zipf)
        n_consumable = round(cfg.consumable_fraction * cfg.n_categories)
        self.consumable = set(rnd.sample(range(cfg.n_categories), n_consumable))
        self.hour_cum = list(itertools.accumulate(HOUR_WEIGHTS))
        self.rows: dict[str, list[int]] = {k: [] for k in ("user", "item", "cat", "beh", "ts")}

    def popular_category(self) -> int:
        return self.category_order[_pick(self.rnd, self.category_cum)]

    def item_of(self, category: int) -> int:
        return category * self.cfg.items_per_category + _pick(self.rnd, self.item_cum)

    def emit(self, user: int, item: int, behavior: Behavior, ts: int) -> bool:
        if ts >= self.end_ts:
            return False
        rows = self.rows
        rows["user"].append(user)
        rows["item"].append(item)
        rows["cat"].append(item // self.cfg.items_per_category)
        rows["beh"].append(int(behavior))
        rows["ts"].append(ts)
        return True

    def gap(self) -> int:
        g = self.rnd.lognormvariate(math.log(self.cfg.gap_median), self.cfg.gap_sigma)
        return int(min(max(g, 1.0), 900.0))

    def session_starts(self, n: int) -> list[int]:
        starts = []
        for _ in range(n):
            day = self.rnd.randrange(max(int(self.days), 1))
            hour = _pick(self.rnd, self.hour_cum)
            local = day * 86400 + hour * 3600 + self.rnd.randrange(3600)
            starts.append(self.start_ts + local)
        return sorted(starts)

    def shopper(self, user: int) -> list[int]:
        cfg, rnd = self.cfg, self.rnd
        favourites = sorted({self.popular_category() for _ in range(rnd.choice((2, 3)))})
        while len(favourites) < 2:
            favourites = sorted({*favourites, self.popular_category()})
        n_sessions = 1 + _poisson(rnd, cfg.sessions_per_day * self.days)
        repeats: list[tuple[int, int]] = []  # (due ts, item)
        free_from = 0
        for start in self.session_starts(n_sessions):
            t = max(start, free_from)
            t = self._session(user, t, favourites, repeats)
            free_from = t + cfg.session_break
        return favourites

    def _session(
        self, user: int, t: int, favourites: list[int], repeats: list[tuple[int, int]]
    ) -> int:
        cfg, rnd = self.cfg, self.rnd
        steps = 1 + _geometric(rnd, 1.0 / cfg.session_steps_mean)
        pending: list[tuple[int, int]] = []  # (step at which to buy, item)
        category = -1
        due = [r for r in repeats if r[0] <= t]
        for repeat in due:
            repeats.remove(repeat)
        step = 0
        while step < steps or pending:
            if due:
                item = due.pop(0)[1]
                self.emit(user, item, Behavior.VIEW, t)
                if rnd.random() < cfg.p_repeat:
                    t = self._buy(user, item, t + self._delay(), repeats)
            elif pending and pending[0][0] <= step:
                item = pending.pop(0)[1]
                self.emit(user, item, Behavior.VIEW, t)
                t = self._buy(user, item, t + self._delay(), repeats)
            else:
                if category < 0 or rnd.random() >= cfg.p_stay:
                    if rnd.random() < cfg.p_affinity:
                        category = rnd.choice(favourites)
                    else:
                        category = self.popular_category()
                item = self.item_of(category)
                self.emit(user, item, Behavior.VIEW, t)
                action = rnd.random()
                if action < cfg.p_cart:
                    t += self._delay()
                    self.emit(user, item, Behavior.CART, t)
                    if rnd.random() < cfg.p_checkout:
                        t = self._buy(user, item, t + self._delay(), repeats)
                    elif rnd.random() < cfg.p_buy_after_cart:
                        later = rnd.randint(cfg.cart_buy_steps_min, cfg.cart_buy_steps_max)
                        pending.append((step + later, item))
                        pending.sort()
                elif action < cfg.p_cart + cfg.p_fav:
                    t += self._delay()
                    self.emit(user, item, Behavior.FAV, t)
                elif action < cfg.p_cart + cfg.p_fav + cfg.p_direct_buy:
                    t = self._buy(user, item, t + self._delay(), repeats)
            step += 1
            t += self.gap()
            if t >= self.end_ts:
                break
        return t

    def _delay(self) -> int:
        return self.rnd.randint(1, self.cfg.action_delay_max)

    def _buy(self, user: int, item: int, t: int, repeats: list[tuple[int, int]]) -> int:
        self.emit(user, item, Behavior.BUY, t)
        if item // self.cfg.items_per_category in self.consumable:
            days = self.rnd.uniform(self.cfg.repeat_days_min, self.cfg.repeat_days_max)
            repeats.append((t + int(days * 86400), item))
        return t

    def bot(self, user: int) -> None:
        cfg, rnd = self.cfg, self.rnd
        t = self.session_starts(1)[0]
        for _ in range(rnd.randint(cfg.bot_events_min, cfg.bot_events_max)):
            item = rnd.randrange(cfg.n_categories * cfg.items_per_category)
            if not self.emit(user, item, Behavior.VIEW, t):
                break
            t += rnd.randint(0, 1)


def _poisson(rnd: random.Random, lam: float) -> int:
    """Knuth's method, fine for the small means used here."""
    limit, k, p = math.exp(-lam), 0, rnd.random()
    while p > limit:
        k += 1
        p *= rnd.random()
    return k


def _geometric(rnd: random.Random, p: float) -> int:
    """Failures before the first success (mean (1 - p) / p)."""
    return int(math.log(1.0 - rnd.random()) / math.log(1.0 - p))


def simulate(n_users: int, seed: int = 0, config: SynthConfig = DEFAULT_CONFIG) -> Synthetic:
    """A synthetic log of n_users shoppers (a few of them bots) and its ground truth."""
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    if config.days <= 0:
        raise ValueError(f"days must be positive, got {config.days}")
    rnd = random.Random(seed)
    shop = _Shop(config, rnd)
    n_bots = max(round(config.bot_fraction * n_users), 1 if n_users >= 10 else 0)
    bots = set(rnd.sample(range(n_users), n_bots))
    favourites: dict[str, list[str]] = {}
    for user in range(n_users):
        if user in bots:
            shop.bot(user)
        else:
            favourites[str(1 + user)] = [str(1000 + c) for c in shop.shopper(user)]
    rows = {k: np.asarray(v, dtype=np.int64) for k, v in shop.rows.items()}
    n_items = config.n_categories * config.items_per_category
    event_log = EventLog.from_codes(
        rows["user"],
        rows["item"],
        rows["cat"],
        rows["beh"],
        rows["ts"],
        np.array([str(1 + u) for u in range(n_users)], dtype=object),
        np.array([str(100_000 + i) for i in range(n_items)], dtype=object),
        np.array([str(1000 + c) for c in range(config.n_categories)], dtype=object),
    )
    return Synthetic(
        log=event_log,
        favourites=favourites,
        bots=sorted((str(1 + u) for u in bots), key=int),
        consumable=sorted(str(1000 + c) for c in shop.consumable),
        config=config,
    )


def generate(n_users: int, seed: int = 0, config: SynthConfig = DEFAULT_CONFIG) -> EventLog:
    """The synthetic log alone (see simulate)."""
    return simulate(n_users, seed, config).log


def write_csv(
    path: str | Path, n_users: int, seed: int = 0, config: SynthConfig = DEFAULT_CONFIG
) -> Synthetic:
    """Write a synthetic log in the Taobao format (rows grouped by user, in time order)."""
    synthetic = simulate(n_users, seed, config)
    lg = synthetic.log
    names = np.array([TAOBAO_NAMES[b] for b in Behavior], dtype=object)
    columns = (
        lg.user_ids[lg.user],
        lg.item_ids[lg.item],
        lg.category_ids[lg.category],
        names[lg.behavior.astype(np.int64)],
        lg.ts.astype(str),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{u},{i},{c},{b},{t}\n" for u, i, c, b, t in zip(*columns, strict=True))
    return synthetic
