"""The chunked file readers: a CSV or Parquet file -> batches of the canonical columns.

Reading is chunked (pyarrow's streaming CSV reader, Parquet row batches), so a file of any
size passes through in pieces of about `chunk_rows` rows; each batch maps canonical names
(user, item, category, behavior, timestamp) to the file's column, as strings for CSV and in
the file's own types for Parquet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from model.data.errors import DataError
from model.data.formats import Format, delimiter, first_lines, refuse_binary

Batch = dict[str, pa.Array]


def batches(
    path: Path, fmt: Format, chunk_rows: int, on_bad_row: Callable[[str], None]
) -> Iterator[Batch]:
    """The file's batches; CSV rows with the wrong number of fields go to on_bad_row."""
    if fmt.name == "parquet":
        return _parquet_batches(path, fmt, chunk_rows)
    return _csv_batches(path, fmt, chunk_rows, on_bad_row)


def _csv_batches(
    path: Path, fmt: Format, chunk_rows: int, on_bad_row: Callable[[str], None]
) -> Iterator[Batch]:
    head, lines = first_lines(path)
    refuse_binary(path, head)
    first = lines[0] if lines else ""
    sep = delimiter(first) if fmt.header else ","
    if fmt.header:
        names = [c.strip().strip('"') for c in first.split(sep)]
        missing = [f"{k}={v}" for k, v in fmt.columns.items() if v not in names]
        if missing:
            raise DataError(
                f"{path} lacks column(s) {', '.join(missing)} for format {fmt.name}; "
                f"its header was {first[:200]!r}"
            )
        read_names = names
    else:
        read_names = list(fmt.headerless_names)
    block = int(min(max(chunk_rows * mean_line_bytes(head), 1 << 16), 1 << 28))

    def invalid(row: pa_csv.InvalidRow) -> str:
        on_bad_row(row.text or "")
        return "skip"

    wanted = dict(fmt.columns)
    stream = pa_csv.open_csv(
        pa.input_stream(str(path), compression="detect"),
        read_options=pa_csv.ReadOptions(
            column_names=None if fmt.header else read_names,
            block_size=block,
        ),
        parse_options=pa_csv.ParseOptions(delimiter=sep, invalid_row_handler=invalid),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in wanted.values()},
            include_columns=list(dict.fromkeys(wanted.values())),
            check_utf8=False,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in stream:
        yield {canonical: batch.column(column) for canonical, column in wanted.items()}


def mean_line_bytes(head: bytes) -> float:
    """The mean length of the complete lines in the file's first bytes (newline included),
    which sizes the CSV reader's blocks to about chunk_rows rows; 64 when none is complete."""
    n_lines = head.count(b"\n")
    if n_lines == 0:
        return 64.0
    return max((head.rindex(b"\n") + 1) / n_lines, 16.0)


def _parquet_batches(path: Path, fmt: Format, chunk_rows: int) -> Iterator[Batch]:
    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path} is not a readable Parquet file: {e}") from None
    names = pf.schema_arrow.names
    missing = [f"{k}={v}" for k, v in fmt.columns.items() if v not in names]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {', '.join(missing)}; its columns are {', '.join(names)}"
        )
    wanted = dict(fmt.columns)
    for batch in pf.iter_batches(
        batch_size=chunk_rows, columns=list(dict.fromkeys(wanted.values()))
    ):
        yield {canonical: batch.column(column) for canonical, column in wanted.items()}
