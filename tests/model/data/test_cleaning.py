"""Cleaning: each step removes what its rule says, counted, and the id tables are compacted."""

from __future__ import annotations

from dataclasses import replace

from eventlogs import event_log

from model.data import CleanConfig, clean_log

T0 = 1_511_600_000  # inside Taobao's span


def steps_of(config: CleanConfig, rows: list[tuple[int, int, int, int, int]]) -> dict:
    cleaned, steps = clean_log(event_log(rows), config)
    return {s.name: (s.rows_removed, s.users_removed) for s in steps} | {"left": len(cleaned)}


def test_exact_duplicates_are_removed_but_near_duplicates_kept(no_cleaning: CleanConfig) -> None:
    rows = [
        (0, 1, 1, 0, T0),
        (0, 1, 1, 0, T0),
        (0, 1, 1, 1, T0),
        (0, 2, 1, 0, T0),
        (0, 1, 1, 0, T0),
    ]
    only = replace(no_cleaning, drop_duplicates=True)
    assert steps_of(only, rows) == {"duplicates": (2, 0), "left": 3}


def test_stray_edge_days_are_out_of_span_but_quiet_inner_days_stay(
    no_cleaning: CleanConfig,
) -> None:
    day = 86400
    busy = [(u, 1, 1, 0, T0 + d * day + u) for d in (0, 1, 3) for u in range(100)]
    quiet_inside = [(1, 2, 1, 0, T0 + 2 * day)]
    strays = [(2, 3, 1, 0, T0 - 60 * day), (2, 3, 1, 0, T0 - 3 * day), (3, 3, 1, 0, T0 + 9 * day)]
    only = replace(no_cleaning, min_day_fraction=0.05)
    result = steps_of(only, busy + quiet_inside + strays)
    assert result["out_of_span"] == (3, 0)
    assert result["left"] == 301


def test_bots_are_removed_by_burst_and_by_sustained_rate(no_cleaning: CleanConfig) -> None:
    person = [(0, i, 1, 0, T0 + 20 * i) for i in range(300)]
    burst = [(1, i, 1, 0, T0 + i // 2) for i in range(70)]  # 70 events in 35 s
    sustained = [(2, i, 1, 0, T0 + 5 * i) for i in range(250)]  # 12 a minute for 20 min
    steady = [(3, i, 1, 0, T0 + 7 * i) for i in range(150)]  # fast but under bot_min_events
    only = replace(
        no_cleaning, bot_max_events_per_minute=60, bot_max_events_per_active_minute=10.0
    )
    cleaned, steps = clean_log(event_log(person + burst + sustained + steady), only)
    assert (steps[0].rows_removed, steps[0].users_removed) == (320, 2)
    assert sorted(cleaned.user_ids.tolist()) == ["u0", "u3"]


def test_short_users_are_removed_last_and_ids_compacted() -> None:
    rows = [(0, 5, 1, 0, T0), (0, 6, 1, 0, T0 + 1), (1, 7, 2, 0, T0), (2, 8, 3, 0, T0 + 5)]
    rows += [(2, 8, 3, 0, T0 + 5)]  # a duplicate that leaves user 2 with one event
    config = CleanConfig(min_day_fraction=None, min_events_per_user=2)
    cleaned, steps = clean_log(event_log(rows), config)
    assert [(s.name, s.rows_removed, s.users_removed) for s in steps] == [
        ("duplicates", 1, 0),
        ("bots", 0, 0),
        ("short_users", 2, 2),
    ]
    assert cleaned.user_ids.tolist() == ["u0"]
    assert cleaned.item_ids.tolist() == ["i5", "i6"]
    assert cleaned.category_ids.tolist() == ["c1"]
    assert cleaned.item.tolist() == [0, 1]
