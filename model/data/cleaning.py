"""Cleaning an event log: the rules that remove what is not shopper behavior, each counted.

Steps, in order: exact duplicates, timestamps outside the main span, bot-like users, users
with too few events (docs/data.md explains each rule and its default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.sequences import EventLog


@dataclass(frozen=True)
class CleanConfig:
    """What cleaning removes; the defaults are the rules in docs/data.md.

    drop_duplicates        exact duplicate rows (user, item, category, behavior, timestamp)
    min_day_fraction       edge days (log-local calendar days) with fewer events than this
                           fraction of the typical day are outside the main span
    bot_max_events_per_minute
                           a user with more events than this in some 60 s window is a bot
    bot_max_events_per_active_minute, bot_min_events
                           ... and so is a user with at least bot_min_events events whose
                           rate over their active time (sessions split at 30 min gaps, each
                           counted as its duration plus one minute) exceeds this
    min_events_per_user    users left with fewer events are removed (after the steps above)
    A step is off when its threshold is None (or drop_duplicates is False).
    """

    drop_duplicates: bool = True
    min_day_fraction: float | None = 0.05
    bot_max_events_per_minute: int | None = 60
    bot_max_events_per_active_minute: float | None = 10.0
    bot_min_events: int = 200
    min_events_per_user: int | None = 2


@dataclass
class CleanStep:
    """One cleaning step: what it removed and by which rule."""

    name: str
    rule: str
    rows_removed: int
    users_removed: int


def clean_log(
    event_log: EventLog,
    config: CleanConfig = CleanConfig(),  # noqa: B008 - frozen dataclass, never mutated
    tz_offset_seconds: int = 0,
) -> tuple[EventLog, list[CleanStep]]:
    """Apply the cleaning steps in order and count what each removed.

    Steps: exact duplicates, timestamps outside the main span, bot-like users, users with
    too few events. The id tables of the result hold only ids that still occur.
    """
    steps: list[CleanStep] = []

    def apply(name: str, rule: str, drop: np.ndarray) -> None:
        nonlocal event_log
        rows_removed = int(np.count_nonzero(drop))
        users_before = _n_users(event_log)
        if rows_removed:
            event_log = event_log.take(~drop)
        del drop
        steps.append(
            CleanStep(
                name=name,
                rule=rule,
                rows_removed=rows_removed,
                users_removed=users_before - _n_users(event_log),
            )
        )

    if config.drop_duplicates:
        apply("duplicates", "exact duplicate rows, first kept", _duplicates(event_log))
    if config.min_day_fraction is not None:
        drop, rule = _outside_main_span(event_log, config.min_day_fraction, tz_offset_seconds)
        apply("out_of_span", rule, drop)
    if config.bot_max_events_per_minute is not None or (
        config.bot_max_events_per_active_minute is not None
    ):
        drop, rule = _bots(event_log, config)
        apply("bots", rule, drop)
    if config.min_events_per_user is not None:
        counts = _per_user_counts(event_log)
        apply(
            "short_users",
            f"users with fewer than {config.min_events_per_user} events",
            counts < config.min_events_per_user,
        )
    return _compact(event_log), steps


def _n_users(event_log: EventLog) -> int:
    return len(event_log.user_bounds()[0])


def _per_user_counts(event_log: EventLog) -> np.ndarray:
    """For each event, the number of events of its user."""
    starts, ends = event_log.user_bounds()
    return np.repeat(ends - starts, ends - starts)


def _duplicates(event_log: EventLog) -> np.ndarray:
    fields = (event_log.behavior, event_log.category, event_log.item, event_log.ts, event_log.user)
    order = np.lexsort(fields)
    same = np.ones(max(len(order) - 1, 0), dtype=bool)
    for f in fields:
        s = f[order]
        same &= s[1:] == s[:-1]
    drop = np.zeros(len(event_log), dtype=bool)
    drop[order[1:][same]] = True
    return drop


def _outside_main_span(
    event_log: EventLog, min_fraction: float, tz_offset_seconds: int
) -> tuple[np.ndarray, str]:
    """Events on edge days much quieter than a typical day.

    Days are calendar days in the log's local time. The typical day is the volume-weighted
    median of daily counts (the daily volume that half of all events see on their own day),
    robust to any number of near-empty stray days. The main span runs from the first to the
    last day with at least min_fraction of that; quiet days inside it are kept.
    """
    rule = f"edge days with < {min_fraction:g} x the typical day's events"
    if len(event_log) == 0:
        return np.zeros(0, dtype=bool), rule
    day = (event_log.ts + tz_offset_seconds) // 86400
    days, counts = np.unique(day, return_counts=True)
    by_volume = np.sort(counts)
    cumulative = np.cumsum(by_volume)
    typical = by_volume[np.searchsorted(cumulative, cumulative[-1] / 2)]
    busy = days[counts >= min_fraction * typical]
    drop = (day < busy.min()) | (day > busy.max())
    return drop, rule + f" ({int(typical):,})"


def _bots(event_log: EventLog, config: CleanConfig) -> tuple[np.ndarray, str]:
    """Users who act faster than people do (see CleanConfig)."""
    rules = []
    flagged = np.zeros(len(event_log), dtype=bool)
    if len(event_log) == 0:
        return flagged, ""
    starts, ends = event_log.user_bounds()
    n = ends - starts
    if config.bot_max_events_per_minute is not None:
        limit = config.bot_max_events_per_minute
        busiest = _busiest_minute(event_log)
        flagged |= busiest > limit
        rules.append(f"> {limit} events in some 60 s")
    if config.bot_max_events_per_active_minute is not None:
        rate_limit = config.bot_max_events_per_active_minute
        gap = np.diff(event_log.ts, prepend=event_log.ts[:1])
        gap[starts] = 0
        in_session = np.where(gap <= 1800, gap, 0)
        new_session = (gap > 1800).astype(np.int64)
        new_session[starts] = 1
        active_minutes = np.add.reduceat(in_session, starts) / 60 + np.add.reduceat(
            new_session, starts
        )
        rate = n / active_minutes
        fast = (n >= config.bot_min_events) & (rate > rate_limit)
        flagged |= np.repeat(fast, n)
        rules.append(f">= {config.bot_min_events} events at > {rate_limit:g} per active minute")
    return flagged, "users with " + " or ".join(rules)


def _busiest_minute(event_log: EventLog) -> np.ndarray:
    """For each event, the most events its user has in any 60 s window [t, t + 60)."""
    starts, ends = event_log.user_bounds()
    n = ends - starts
    rel = event_log.ts - event_log.ts.min()
    span = int(rel.max()) + 61
    user_rank = np.repeat(np.arange(len(starts), dtype=np.int64), n)
    if len(starts) * span >= 2**62:
        raise ValueError("time span too long for the busiest-minute rule; trim the span first")
    key = user_rank * span + rel
    in_minute = np.searchsorted(key, key + 60, side="left") - np.arange(len(key))
    return np.repeat(np.maximum.reduceat(in_minute, starts), n)


def _compact(event_log: EventLog) -> EventLog:
    """Drop ids that no longer occur and renumber the codes (order of first code kept)."""
    users, user = _renumbered(event_log.user, len(event_log.user_ids))
    items, item = _renumbered(event_log.item, len(event_log.item_ids))
    cats, category = _renumbered(event_log.category, len(event_log.category_ids))
    return EventLog(
        user=user,
        item=item,
        category=category,
        behavior=event_log.behavior,
        ts=event_log.ts,
        user_ids=event_log.user_ids[users],
        item_ids=event_log.item_ids[items],
        category_ids=event_log.category_ids[cats],
    )


def _renumbered(codes: np.ndarray, n_ids: int) -> tuple[np.ndarray, np.ndarray]:
    """(the codes that occur, ascending; each code's rank among them): what np.unique's
    return_inverse gives, by a lookup table over the id table instead of a sort."""
    present = np.bincount(codes, minlength=n_ids) > 0
    rank = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present), rank[codes]
