"""A synthetic shopper log of any size in the Taobao CSV layout, generated with NumPy.

    python bench/scale_log.py --events 10M --items 500k --out big.csv [--seed 0]

Rows `user,item,category,behavior,timestamp` (headerless, behavior pv|fav|cart|buy, unix
seconds), what `seqcast train --format taobao` reads. The log is built and written a chunk
of users at a time (CHUNK_EVENTS events, whole arrays, never per-event Python objects), so
100M rows take minutes and little memory:

- users: about MEAN_EVENTS events each (log-normal, at least 2), in sessions of about
  SESSION_EVENTS events; session starts uniform over a SPAN_DAYS-day span from Taobao's
  first day, events 1 + Exp(GAP_SECONDS) seconds apart within a session;
- items: Zipf-like popularity (p(rank r) ~ 1 / (r + 1) ** ZIPF), ids a seeded permutation
  of 1..items so popularity does not follow the id; within a session an event revisits the
  session's previous item with probability REVISIT (what a shopper keeps returning to);
- categories: items // ITEMS_PER_CATEGORY of them (at least MIN_CATEGORIES), each item in
  one, drawn with the same Zipf law (a few large categories);
- behaviors: Taobao's mix, BEHAVIOR_MIX.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm import tqdm

BEHAVIORS = ("pv", "fav", "cart", "buy")
BEHAVIOR_MIX = (0.895, 0.029, 0.055, 0.021)  # the full UserBehavior log's shares
MEAN_EVENTS = 100  # events per user (Taobao: 100M events, 988k users)
SESSION_EVENTS = 20
GAP_SECONDS = 60.0
START = 1511539200  # 2017-11-25 00:00 Beijing time, the UserBehavior log's first day
SPAN_DAYS = 9
ZIPF = 0.9
REVISIT = 0.3
ITEMS_PER_CATEGORY = 400
MIN_CATEGORIES = 20
CHUNK_EVENTS = 2_000_000
SCHEMA = pa.schema([("user", pa.int64()), ("item", pa.int64()), ("category", pa.int64()),
                    ("behavior", pa.string()), ("timestamp", pa.int64())])


def count(text: str) -> int:
    """'20k' -> 20000, '1.5M' -> 1500000, '300' -> 300."""
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


class Catalog:
    """Item popularity, ids and categories of a catalog of n_items."""

    def __init__(self, n_items: int, rng: np.random.Generator) -> None:
        self.cdf = _zipf_cdf(n_items)
        self.ids = rng.permutation(n_items).astype(np.int64) + 1
        n_categories = max(MIN_CATEGORIES, n_items // ITEMS_PER_CATEGORY)
        cat_cdf = _zipf_cdf(n_categories)
        self.category = np.searchsorted(cat_cdf, rng.random(n_items)).astype(np.int64) + 1

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n item ranks by popularity."""
        return np.minimum(np.searchsorted(self.cdf, rng.random(n)), len(self.cdf) - 1)


def _zipf_cdf(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** ZIPF
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def user_chunk(
    events_per_user: np.ndarray, first_user: int, catalog: Catalog, rng: np.random.Generator
) -> pa.Table:
    """The rows of users first_user.. with these event counts, sorted by user and time."""
    n_users = len(events_per_user)
    user = np.repeat(np.arange(n_users), events_per_user)
    sessions = 1 + events_per_user // SESSION_EVENTS
    first_session = np.cumsum(sessions) - sessions
    session_user = np.repeat(np.arange(n_users), sessions)
    starts = START + rng.random(len(session_user)) * (SPAN_DAYS * 86400 - 7200)
    starts = starts[np.lexsort((starts, session_user))]  # a user's sessions in time order
    session = first_session[user] + (rng.random(len(user)) * sessions[user]).astype(np.int64)
    session.sort()  # grouped by user already; now by session (time) within the user
    gaps = 1.0 + rng.exponential(GAP_SECONDS, len(user))
    gaps[np.r_[True, session[1:] != session[:-1]]] = 0.0  # a session starts at its start
    elapsed = np.cumsum(gaps)
    opened = np.flatnonzero(gaps == 0.0)
    elapsed -= np.repeat(elapsed[opened], np.diff(np.r_[opened, len(user)]))
    rank = catalog.draw(len(user), rng)
    revisit = (rng.random(len(user)) < REVISIT) & (gaps > 0)
    anchor = np.maximum.accumulate(np.where(revisit, 0, np.arange(len(user))))
    rank = rank[anchor]
    behavior = rng.choice(len(BEHAVIORS), size=len(user), p=BEHAVIOR_MIX)
    return pa.table(
        [
            pa.array(user + first_user + 1),
            pa.array(catalog.ids[rank]),
            pa.array(catalog.category[rank]),
            pa.array(np.array(BEHAVIORS)[behavior]),
            pa.array((starts[session] + elapsed).astype(np.int64)),
        ],
        schema=SCHEMA,
    )


def write_log(path: Path, n_events: int, n_items: int, seed: int = 0,
              progress: bool = True) -> Path:
    """Write a log of exactly n_events rows over a catalog of n_items to path."""
    rng = np.random.default_rng(seed)
    catalog = Catalog(n_items, rng)
    sigma = 1.0
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    path.parent.mkdir(parents=True, exist_ok=True)
    written, first_user = 0, 0
    with pacsv.CSVWriter(str(path), SCHEMA, write_options=options) as writer, tqdm(
        total=n_events, desc=f"scale: {path.name}", unit="ev", unit_scale=True,
        disable=not progress,
    ) as bar:
        while written < n_events:
            want = min(CHUNK_EVENTS, n_events - written)
            mean = np.log(MEAN_EVENTS) - sigma**2 / 2
            draws = rng.lognormal(mean, sigma, int(want / MEAN_EVENTS * 1.2) + 10)
            counts = np.maximum(2, draws).astype(np.int64)
            total = np.cumsum(counts)
            keep = min(int(np.searchsorted(total, want)) + 1, len(counts))
            counts = counts[:keep]
            counts[-1] = want - (total[keep - 2] if keep > 1 else 0)  # exactly `want` events
            writer.write_table(user_chunk(counts, first_user, catalog, rng))
            first_user += len(counts)
            written += want
            bar.update(want)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=count, required=True, help="rows, e.g. 1M")
    p.add_argument("--items", type=count, required=True, help="catalog size, e.g. 500k")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    write_log(args.out, args.events, args.items, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
