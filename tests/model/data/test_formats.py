"""The file layouts: each named format read into the canonical columns, the csv mappings and
their syntax, and bad options refused with the allowed values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model.data import LoadedLog, parse_mapping
from model.features import Behavior

T0 = 1_511_600_000  # inside Taobao's span
Write = Callable[[str, str | bytes], Path]
Load = Callable[..., LoadedLog]


def test_taobao_rows_become_sorted_codes(write: Write, load: Load, rows_of: Callable) -> None:
    path = write(
        "ub.csv",
        f"2,20,7,buy,{T0 + 5}\n1,10,7,pv,{T0 + 9}\n1,11,8,cart,{T0}\n2,20,7,fav,{T0 + 1}\n",
    )
    loaded = load(path)
    assert loaded.report.format == "taobao"
    assert loaded.tz_offset_seconds == 8 * 3600
    # Grouped by user (in order of first appearance), in time order within a user.
    assert rows_of(loaded) == [
        ("2", "20", "7", Behavior.FAV, T0 + 1),
        ("2", "20", "7", Behavior.BUY, T0 + 5),
        ("1", "11", "8", Behavior.CART, T0),
        ("1", "10", "7", Behavior.VIEW, T0 + 9),
    ]
    assert loaded.report.behavior_counts == {"view": 1, "fav": 1, "cart": 1, "buy": 1}
    assert (loaded.report.n_users, loaded.report.n_items, loaded.report.n_categories) == (2, 3, 2)


def test_rees46_maps_events_and_drops_remove_from_cart(
    write: Write, load: Load, rows_of: Callable
) -> None:
    header = (
        "event_time,event_type,product_id,category_id,category_code,brand,price,"
        "user_id,user_session\n"
    )
    path = write(
        "2019-Oct.csv",
        header
        + "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1\n"
        + "2019-10-01 00:00:05 UTC,cart,44600062,2103807459595387724,,shiseido,35.79,541312140,s1\n"
        + "2019-10-01 00:00:09 UTC,remove_from_cart,44600062,21038,,x,35.79,541312140,s1\n"
        + "2019-10-01 00:01:00 UTC,purchase,3900821,20530135,a.b,aqua,33.20,541312140,s1\n"
        + "2019-10-01 00:02:00 UTC,view,3900821,2053013552326770905,a.b,aqua,33.20,5412",
    )
    loaded = load(path)
    assert loaded.report.format == "rees46"
    assert loaded.report.dropped_behaviors == {"remove_from_cart": 1}
    assert loaded.report.malformed == {"wrong_field_count": 1}
    start = 1_569_888_000  # 2019-10-01 00:00 UTC
    assert [(r[0], r[1], r[3], r[4]) for r in rows_of(loaded)] == [
        ("541312140", "44600062", Behavior.VIEW, start),
        ("541312140", "44600062", Behavior.CART, start + 5),
        ("541312140", "3900821", Behavior.BUY, start + 60),
    ]


def test_retailrocket_reads_milliseconds_and_has_no_category(
    write: Write, load: Load, rows_of: Callable
) -> None:
    path = write(
        "events.csv",
        "timestamp,visitorid,event,itemid,transactionid\n"
        f"{T0 * 1000 + 999},257597,view,355908,\n"
        f"{(T0 + 60) * 1000},257597,addtocart,355908,\n"
        f"{(T0 + 120) * 1000},257597,transaction,355908,4000\n",
    )
    loaded = load(path)
    assert loaded.report.format == "retailrocket"
    assert [(r[2], r[3], r[4]) for r in rows_of(loaded)] == [
        ("", Behavior.VIEW, T0),
        ("", Behavior.CART, T0 + 60),
        ("", Behavior.BUY, T0 + 120),
    ]
    assert loaded.report.missing_category == 3
    assert loaded.report.n_categories == 0


def test_csv_with_mappings_iso_times_and_unmapped_values(
    write: Write, load: Load, rows_of: Callable
) -> None:
    path = write(
        "log.csv",
        "ts;uid;sku;action\n"
        "2017-11-25T10:00:00Z;u1;a;click\n"
        "2017-11-25T12:00:05+02:00;u1;b;basket\n"
        "2017-11-25 10:00:09;u1;b;hover\n"
        "not a time;u1;b;click\n",
    )
    loaded = load(
        path,
        columns=parse_mapping("user=uid,item=sku,behavior=action,timestamp=ts"),
        behavior_map=parse_mapping("click=view,basket=cart"),
        tz_offset_seconds=3600,
    )
    assert loaded.report.format == "csv"
    assert loaded.tz_offset_seconds == 3600
    assert loaded.report.timestamp_unit == "iso8601"
    assert loaded.report.unknown_behaviors == {"hover": 1}
    assert loaded.report.malformed == {"unknown_behavior": 1, "bad_timestamp": 1}
    base = 1_511_604_000  # 2017-11-25 10:00 UTC
    assert [(r[1], r[2], r[3], r[4]) for r in rows_of(loaded)] == [
        ("a", "", Behavior.VIEW, base),
        ("b", "", Behavior.CART, base + 5),
    ]


def test_parse_mapping() -> None:
    assert parse_mapping(" user = uid, item=sku ,") == {"user": "uid", "item": "sku"}
    assert parse_mapping("") == {}
    with pytest.raises(ValueError, match="has no '='"):
        parse_mapping("user=uid,item")
    with pytest.raises(ValueError, match="non-empty key and value"):
        parse_mapping("user=")
    with pytest.raises(ValueError, match="given twice"):
        parse_mapping("user=a,user=b")


def test_bad_options_are_refused_with_the_allowed_values(write: Write, load: Load) -> None:
    path = write("ub.csv", f"1,2,3,pv,{T0}\n")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        load(path, fmt="xml")
    with pytest.raises(ValueError, match="needs a column mapping"):
        load(path, fmt="csv")
    with pytest.raises(ValueError, match="lacks behavior, timestamp"):
        load(path, fmt="csv", columns={"user": "a", "item": "b"})
    with pytest.raises(ValueError, match="unknown column name.*price"):
        load(path, fmt="csv", columns=parse_mapping("user=a,item=b,behavior=c,timestamp=d,price=e"))
    with pytest.raises(ValueError, match="allowed: view, fav, cart, buy, drop"):
        load(path, behavior_map={"pv": "look"})
    with pytest.raises(ValueError, match="not to taobao"):
        load(path, fmt="taobao", columns={"user": "a"})


def test_behavior_map_can_drop_values(write: Write, load: Load) -> None:
    path = write("ub.csv", f"1,2,3,pv,{T0}\n1,2,3,fav,{T0 + 1}\n")
    loaded = load(path, behavior_map={"fav": "drop"})
    assert loaded.report.dropped_behaviors == {"fav": 1}
    assert loaded.report.n_malformed == 0
    assert len(loaded.log) == 1
