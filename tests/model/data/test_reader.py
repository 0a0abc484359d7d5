"""The chunked readers: Parquet in its own column types, CSV in any chunk size giving the
same log, and a Parquet file that is not one refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.data import DataError, LoadedLog, parse_mapping
from model.data.reader import mean_line_bytes
from model.features import Behavior

T0 = 1_511_600_000  # inside Taobao's span
Write = Callable[[str, str | bytes], Path]
Load = Callable[..., LoadedLog]


def test_parquet_with_integer_ids_and_timestamp_column(
    tmp_path: Path, load: Load, rows_of: Callable
) -> None:
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
    assert loaded.report.timestamp_unit == "parquet timestamp[ms]"
    assert rows_of(loaded) == [
        ("5", "10", "c1", Behavior.VIEW, T0),
        ("5", "11", "", Behavior.BUY, T0 + 3),
        ("6", "10", "c1", Behavior.CART, T0 + 4),
    ]


def test_chunked_reading_gives_the_same_log(write: Write, load: Load, rows_of: Callable) -> None:
    rng = np.random.default_rng(0)
    lines = [
        f"{rng.integers(50)},{rng.integers(500)},{rng.integers(20)},"
        f"{rng.choice(['pv', 'fav', 'cart', 'buy'])},{T0 + rng.integers(86400)}"
        for _ in range(5000)
    ]
    path = write("ub.csv", "\n".join(lines) + "\n")
    whole = load(path, chunk_rows=1_000_000)
    chunked = load(path, chunk_rows=100)
    assert rows_of(whole) == rows_of(chunked)
    assert chunked.report.valid_rows == 5000


def test_junk_parquet_is_refused(write: Write, load: Load) -> None:
    with pytest.raises(DataError, match="not a readable Parquet"):
        load(
            write("x.parquet", b"not parquet at all"),
            columns={"user": "u"} | {"item": "i", "behavior": "b", "timestamp": "t"},
        )


def test_csv_blocks_are_sized_from_the_real_line_length() -> None:
    line = b"1,2345678,4162024,pv,1511544070\n"
    head = (line * 5000)[:1 << 16]  # the sniffed 64 KB, cut inside a line
    assert mean_line_bytes(head) == len(line)
    assert mean_line_bytes(b"no newline yet") == 64.0
