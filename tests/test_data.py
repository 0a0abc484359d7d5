"""Loaders and cleaning: every format, malformed rows counted (never a crash), junk files
refused with one clear DataError, and each cleaning step removing what its rule says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.data import (
    CleanConfig,
    DataError,
    LoadedLog,
    clean_log,
    load_log,
    parse_mapping,
)
from model.features import Behavior
from model.sequences import EventLog

DATASETS = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
NO_CLEANING = CleanConfig(
    drop_duplicates=False,
    min_day_fraction=None,
    bot_max_events_per_minute=None,
    bot_max_events_per_active_minute=None,
    min_events_per_user=None,
)
T0 = 1_511_600_000


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, **kwargs: object) -> LoadedLog:
    kwargs.setdefault("clean", NO_CLEANING)
    return load_log(path, progress=False, **kwargs)  # type: ignore[arg-type]


def rows_of(loaded: LoadedLog) -> list[tuple[str, str, str, int, int]]:
    lg = loaded.log
    return [
        (lg.user_ids[u], lg.item_ids[i], lg.category_ids[c], int(b), int(t))
        for u, i, c, b, t in zip(lg.user, lg.item, lg.category, lg.behavior, lg.ts, strict=True)
    ]


# --------------------------------------------------------------------------- formats


def test_taobao_rows_become_sorted_codes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
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


def test_rees46_maps_events_and_drops_remove_from_cart(tmp_path: Path) -> None:
    header = (
        "event_time,event_type,product_id,category_id,category_code,brand,price,"
        "user_id,user_session\n"
    )
    path = write(
        tmp_path,
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


def test_retailrocket_reads_milliseconds_and_has_no_category(tmp_path: Path) -> None:
    path = write(
        tmp_path,
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


def test_csv_with_mappings_iso_times_and_unmapped_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
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


@pytest.mark.parametrize(
    ("scale", "unit"), [(1, "s"), (1000, "ms"), (1_000_000, "us"), (1_000_000_000, "ns")]
)
def test_csv_numeric_time_unit_from_magnitude(tmp_path: Path, scale: int, unit: str) -> None:
    path = write(
        tmp_path,
        "log.csv",
        f"user,item,behavior,t\n1,2,view,{T0 * scale}\n1,3,buy,{(T0 + 7) * scale}\n",
    )
    columns = {"user": "user", "item": "item", "behavior": "behavior", "timestamp": "t"}
    loaded = load(path, fmt="csv", columns=columns)
    assert loaded.report.timestamp_unit == unit
    assert loaded.log.ts.tolist() == [T0, T0 + 7]


def test_parquet_with_integer_ids_and_timestamp_column(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    table = pa.table(
        {
            "uid": pa.array([5, 5, 6, None]),
            "sku": pa.array([10, 11, 10, 12]),
            "cat": pa.array(["c1", None, "c1", "c2"]),
            "kind": pa.array(["pv", "buy", "cart", "pv"]),
            "at": pa.array(
                np.array([T0, T0 + 3, T0 + 4, T0 + 5], dtype="datetime64[s]"),
                type=pa.timestamp("ms"),
            ),
        }
    )
    pq.write_table(table, path)
    loaded = load(
        path,
        columns=parse_mapping("user=uid,item=sku,category=cat,behavior=kind,timestamp=at"),
        behavior_map=parse_mapping("pv=view"),
    )
    assert loaded.report.format == "parquet"
    assert loaded.report.malformed == {"empty_id": 1}
    assert rows_of(loaded) == [
        ("5", "10", "c1", Behavior.VIEW, T0),
        ("5", "11", "", Behavior.BUY, T0 + 3),
        ("6", "10", "c1", Behavior.CART, T0 + 4),
    ]


def test_chunked_reading_gives_the_same_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = [
        f"{rng.integers(50)},{rng.integers(500)},{rng.integers(20)},"
        f"{rng.choice(['pv', 'fav', 'cart', 'buy'])},{T0 + rng.integers(86400)}"
        for _ in range(5000)
    ]
    path = write(tmp_path, "ub.csv", "\n".join(lines) + "\n")
    whole = load(path, chunk_rows=1_000_000)
    chunked = load(path, chunk_rows=100)
    assert rows_of(whole) == rows_of(chunked)
    assert chunked.report.valid_rows == 5000


# --------------------------------------------------------------------------- malformed


def test_malformed_rows_are_skipped_and_counted_by_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ub.csv",
        b"1,10,7,pv,1511600000\n"
        b"1,10,7,pv,1511600001,extra\n"  # too many fields
        b"1,,7,pv,1511600002\n"  # empty item
        b"1,10,7,pv,15116x0003\n"  # bad number
        b"1,10,7,pv,-5\n"  # before 1970
        b"1,10,7,click,1511600004\n"  # unknown behavior
        b"1,\xff\xfe,7,pv,1511600005\n"  # not UTF-8
        b"2,10,7,buy,1511600006\n"
        b"3,10,7,pv",  # truncated last line, no newline
    )
    loaded = load(path)
    assert loaded.report.malformed == {
        "wrong_field_count": 2,
        "empty_id": 1,
        "bad_timestamp": 2,
        "unknown_behavior": 1,
        "bad_encoding": 1,
    }
    assert loaded.report.rows_read == 9
    assert loaded.report.valid_rows == 2
    assert loaded.report.unknown_behaviors == {"click": 1}
    assert len(loaded.report.malformed_examples) == 5
    assert [(r[0], r[4]) for r in rows_of(loaded)] == [("1", T0), ("2", T0 + 6)]


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (bytes(range(256)) * 64, "auto", "look binary"),
        (b"\x00\x01\x02 PK zip", "taobao", "look binary"),
        (b"name,age\nann,31\nbob,42\n", "auto", "cannot tell the format"),
        (b"a,b,c\n1,2,3\n", "taobao", "no valid event rows"),
        (b"", "taobao", "is empty"),
        (b"", "auto", "is empty"),
        (b"1,2,3,walk,1511600000\n1,2,3,run,1511600000\n", "taobao", "no valid event rows"),
        (b"event_time,event_type\n2019-10-01 00:00:00 UTC,view\n", "rees46", "lacks column"),
    ],
)
def test_a_file_that_is_not_an_event_log_gets_one_clear_error(
    tmp_path: Path, content: bytes, fmt: str, message: str
) -> None:
    path = write(tmp_path, "junk.csv", content)
    with pytest.raises(DataError, match=message):
        load(path, fmt=fmt)


def test_no_valid_rows_error_names_the_expected_columns_and_first_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "hello,world,foo,bar,baz\n")
    with pytest.raises(DataError) as err:
        load(path, fmt="taobao")
    text = str(err.value)
    assert "user=user" in text and "timestamp=timestamp" in text
    assert "hello,world,foo,bar,baz" in text


def test_junk_parquet_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a readable Parquet"):
        load(
            write(tmp_path, "x.parquet", b"not parquet at all"),
            columns={"user": "u"} | {"item": "i", "behavior": "b", "timestamp": "t"},
        )
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "absent.csv")


# --------------------------------------------------------------------------- options


def test_parse_mapping() -> None:
    assert parse_mapping(" user = uid, item=sku ,") == {"user": "uid", "item": "sku"}
    assert parse_mapping("") == {}
    with pytest.raises(ValueError, match="has no '='"):
        parse_mapping("user=uid,item")
    with pytest.raises(ValueError, match="non-empty key and value"):
        parse_mapping("user=")
    with pytest.raises(ValueError, match="given twice"):
        parse_mapping("user=a,user=b")


def test_bad_options_are_refused_with_the_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, "ub.csv", f"1,2,3,pv,{T0}\n")
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


def test_behavior_map_can_drop_values(tmp_path: Path) -> None:
    path = write(tmp_path, "ub.csv", f"1,2,3,pv,{T0}\n1,2,3,fav,{T0 + 1}\n")
    loaded = load(path, behavior_map={"fav": "drop"})
    assert loaded.report.dropped_behaviors == {"fav": 1}
    assert loaded.report.n_malformed == 0
    assert len(loaded.log) == 1


# --------------------------------------------------------------------------- cleaning


def make_log(rows: list[tuple[int, int, int, int, int]]) -> EventLog:
    user, item, category, behavior, ts = (
        np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)
    )
    return EventLog.from_codes(
        user,
        item,
        category,
        behavior,
        ts,
        np.array([f"u{i}" for i in range(user.max() + 1)], dtype=object),
        np.array([f"i{i}" for i in range(item.max() + 1)], dtype=object),
        np.array([f"c{i}" for i in range(category.max() + 1)], dtype=object),
    )


def steps_of(config: CleanConfig, rows: list[tuple[int, int, int, int, int]]) -> dict:
    cleaned, steps = clean_log(make_log(rows), config)
    return {s.name: (s.rows_removed, s.users_removed) for s in steps} | {"left": len(cleaned)}


def test_exact_duplicates_are_removed_but_near_duplicates_kept() -> None:
    rows = [
        (0, 1, 1, 0, T0),
        (0, 1, 1, 0, T0),
        (0, 1, 1, 1, T0),
        (0, 2, 1, 0, T0),
        (0, 1, 1, 0, T0),
    ]
    only = CleanConfig(**{**NO_CLEANING.__dict__, "drop_duplicates": True})
    assert steps_of(only, rows) == {"duplicates": (2, 0), "left": 3}


def test_stray_edge_days_are_out_of_span_but_quiet_inner_days_stay() -> None:
    day = 86400
    busy = [(u, 1, 1, 0, T0 + d * day + u) for d in (0, 1, 3) for u in range(100)]
    quiet_inside = [(1, 2, 1, 0, T0 + 2 * day)]
    strays = [(2, 3, 1, 0, T0 - 60 * day), (2, 3, 1, 0, T0 - 3 * day), (3, 3, 1, 0, T0 + 9 * day)]
    only = CleanConfig(**{**NO_CLEANING.__dict__, "min_day_fraction": 0.05})
    result = steps_of(only, busy + quiet_inside + strays)
    assert result["out_of_span"] == (3, 0)
    assert result["left"] == 301


def test_bots_are_removed_by_burst_and_by_sustained_rate() -> None:
    person = [(0, i, 1, 0, T0 + 20 * i) for i in range(300)]
    burst = [(1, i, 1, 0, T0 + i // 2) for i in range(70)]  # 70 events in 35 s
    sustained = [(2, i, 1, 0, T0 + 5 * i) for i in range(250)]  # 12 a minute for 20 min
    steady = [(3, i, 1, 0, T0 + 7 * i) for i in range(150)]  # fast but under bot_min_events
    only = CleanConfig(
        **{
            **NO_CLEANING.__dict__,
            "bot_max_events_per_minute": 60,
            "bot_max_events_per_active_minute": 10.0,
        }
    )
    cleaned, steps = clean_log(make_log(person + burst + sustained + steady), only)
    assert (steps[0].rows_removed, steps[0].users_removed) == (320, 2)
    assert sorted(cleaned.user_ids.tolist()) == ["u0", "u3"]


def test_short_users_are_removed_last_and_ids_compacted() -> None:
    rows = [(0, 5, 1, 0, T0), (0, 6, 1, 0, T0 + 1), (1, 7, 2, 0, T0), (2, 8, 3, 0, T0 + 5)]
    rows += [(2, 8, 3, 0, T0 + 5)]  # a duplicate that leaves user 2 with one event
    config = CleanConfig(min_day_fraction=None, min_events_per_user=2)
    cleaned, steps = clean_log(make_log(rows), config)
    assert [(s.name, s.rows_removed, s.users_removed) for s in steps] == [
        ("duplicates", 1, 0),
        ("bots", 0, 0),
        ("short_users", 2, 2),
    ]
    assert cleaned.user_ids.tolist() == ["u0"]
    assert cleaned.item_ids.tolist() == ["i5", "i6"]
    assert cleaned.category_ids.tolist() == ["c1"]
    assert cleaned.item.tolist() == [0, 1]


def test_report_serializes(tmp_path: Path) -> None:
    path = write(tmp_path, "ub.csv", f"1,2,3,pv,{T0}\n1,2,3,buy,{T0 + 1}\n1,2,3,pv\n")
    report = load_log(path, progress=False).report
    d = report.to_dict()
    assert d["n_malformed"] == 1 and d["valid_rows"] == 2
    assert [s["name"] for s in d["cleaning"]] == [  # type: ignore[union-attr]
        "duplicates",
        "out_of_span",
        "bots",
        "short_users",
    ]
    text = report.to_markdown()
    assert "| short_users |" in text and "wrong_field_count 1" in text


# --------------------------------------------------------------------------- shared data


def shared(relative: str) -> Path:
    path = DATASETS / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.shared_data
def test_taobao_sample_counts() -> None:
    loaded = load_log(shared("taobao_users/UserBehavior.csv"), progress=False)
    report = loaded.report
    assert report.malformed == {"wrong_field_count": 1}
    assert report.valid_rows == 84_475
    steps = {s.name: s.rows_removed for s in report.cleaning}
    assert steps["out_of_span"] == 35  # strays back to 2017-09-11
    assert steps["bots"] == 0 and steps["duplicates"] == 0
    assert report.n_users == 815
    assert report.behavior_counts == {"view": 75_837, "fav": 2_356, "cart": 4_497, "buy": 1_750}
    assert report.start.startswith("2017-11-24 16:")  # 2017-11-25 00:xx Beijing


@pytest.mark.shared_data
def test_rees46_sample_counts() -> None:
    loaded = load(shared("rees46_sample/2019-Oct.csv"))
    report = loaded.report
    assert report.format == "rees46"
    assert report.malformed == {"wrong_field_count": 1}
    assert report.valid_rows == 17_434
    assert report.behavior_counts == {"view": 17_055, "fav": 0, "cart": 165, "buy": 214}
    assert report.n_users == 4_504 and report.n_items == 6_493
