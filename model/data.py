"""Behavior logs in: read an event log file, skip what is malformed, clean it, count everything.

    load_log(path) -> LoadedLog(log: EventLog, report: DataReport, tz_offset_seconds)

Formats (`fmt`):
    taobao        headerless user,item,category,behavior(pv|fav|cart|buy),unix seconds
    rees46        header event_time,event_type,product_id,category_id,...,user_id,...;
                  event_type view|cart|purchase (remove_from_cart is dropped and counted),
                  times like "2019-10-01 00:00:00 UTC"
    retailrocket  events.csv: timestamp(ms),visitorid,event(view|addtocart|transaction),
                  itemid,transactionid; no category (every event gets the missing category)
    csv, parquet  any columns, through a mapping canonical name -> file column
                  (user,item,category,behavior,timestamp; category optional) and a behavior
                  mapping file value -> view|fav|cart|buy|drop. Timestamps: unix seconds,
                  milliseconds, microseconds or nanoseconds (the unit is chosen once per file
                  from the magnitude of the first numeric values), or ISO 8601 strings
                  (with an offset, or naive and then read as UTC).
    auto          .parquet/.pq by extension; otherwise the header line names the format, or a
                  first line that looks like a Taobao row does; csv when `columns` is given.

Reading is chunked (pyarrow's streaming CSV reader, Parquet row batches): raw ids become
int codes batch by batch through one dict per id kind, and only compact numpy arrays are
kept, so memory grows with the number of valid events and distinct ids, not the file size.

A row is malformed, skipped and counted by reason, when it has the wrong number of fields
(`wrong_field_count`), an empty user or item id (`empty_id`), a timestamp that does not parse
or lies outside 1970..2100 (`bad_timestamp`), or a behavior value the mapping does not know
(`unknown_behavior`). Values mapped to `drop` (remove_from_cart) are counted apart. A file
with no valid row at all raises one `DataError` that says what was expected and what the
first line was. The cleaning rules are in `clean_log` and docs/data.md.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from model.errors import SeqcastError
from model.features import BEHAVIOR_NAMES, Behavior
from model.sequences import EventLog

log = logging.getLogger(__name__)

FORMATS = ("auto", "taobao", "rees46", "retailrocket", "csv", "parquet")
CANONICAL_COLUMNS = ("user", "item", "category", "behavior", "timestamp")
REQUIRED_COLUMNS = ("user", "item", "behavior", "timestamp")
DROP = "drop"

# Timestamps outside [1970-01-01, 2100-01-01) are not event times.
MAX_TS = 4_102_444_800
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_SNIFF_BYTES = 1 << 16
_DROPPED_CODE = -1
_UNKNOWN_CODE = -2
_MAX_COUNTED_VALUES = 20
_MAX_EXAMPLES = 5


class DataError(SeqcastError, ValueError):
    """The input is not a usable event log (one clear message naming the problem)."""


class OptionError(SeqcastError, ValueError):
    """A bad format name, column mapping or behavior mapping (the message names it)."""


@dataclass(frozen=True)
class _Format:
    """How one file layout maps onto the canonical columns."""

    name: str
    columns: Mapping[str, str]  # canonical name -> column name in the file
    behavior_map: Mapping[str, str]  # lower-cased file value -> behavior name or DROP
    header: bool = True
    headerless_names: tuple[str, ...] = ()
    ts_unit: str = "auto"  # "s", "ms", "iso" or "auto"
    tz_offset_seconds: int = 0


_TAOBAO = _Format(
    name="taobao",
    columns={c: c for c in CANONICAL_COLUMNS},
    behavior_map={"pv": "view", "fav": "fav", "cart": "cart", "buy": "buy"},
    header=False,
    headerless_names=CANONICAL_COLUMNS,
    ts_unit="s",
    tz_offset_seconds=8 * 3600,  # Beijing time
)
_REES46 = _Format(
    name="rees46",
    columns={
        "user": "user_id",
        "item": "product_id",
        "category": "category_id",
        "behavior": "event_type",
        "timestamp": "event_time",
    },
    behavior_map={"view": "view", "cart": "cart", "purchase": "buy", "remove_from_cart": DROP},
    ts_unit="iso",
)
_RETAILROCKET = _Format(
    name="retailrocket",
    columns={"user": "visitorid", "item": "itemid", "behavior": "event", "timestamp": "timestamp"},
    behavior_map={"view": "view", "addtocart": "cart", "transaction": "buy"},
    ts_unit="ms",
)
_NAMED = {f.name: f for f in (_TAOBAO, _REES46, _RETAILROCKET)}


def parse_mapping(text: str) -> dict[str, str]:
    """'user=uid,item=sku' -> {'user': 'uid', 'item': 'sku'} (the CLI's mapping syntax).

    Keys and values are stripped; an empty text gives an empty mapping. Raises OptionError
    (a ValueError) naming the offending part: a pair without '=', an empty side, a repeated
    key.
    """
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise OptionError(f"mapping entry {part.strip()!r} has no '='; expected key=value")
        if not key or not value:
            raise OptionError(f"mapping entry {part.strip()!r} needs a non-empty key and value")
        if key in out:
            raise OptionError(f"mapping key {key!r} given twice")
        out[key] = value
    return out


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


@dataclass
class DataReport:
    """Everything that happened between the file and the EventLog, counted."""

    source: str
    format: str
    tz_offset_seconds: int
    rows_read: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    malformed_examples: list[str] = field(default_factory=list)
    unknown_behaviors: dict[str, int] = field(default_factory=dict)
    dropped_behaviors: dict[str, int] = field(default_factory=dict)
    valid_rows: int = 0
    timestamp_unit: str = ""
    cleaning: list[CleanStep] = field(default_factory=list)
    n_events: int = 0
    n_users: int = 0
    n_items: int = 0
    n_categories: int = 0
    missing_category: int = 0
    behavior_counts: dict[str, int] = field(default_factory=dict)
    start: str = ""
    end: str = ""
    load_seconds: float = 0.0

    @property
    def n_malformed(self) -> int:
        return sum(self.malformed.values())

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["n_malformed"] = self.n_malformed
        return d

    def to_markdown(self) -> str:
        lines = [
            f"## Data: `{self.source}` ({self.format})",
            "",
            f"- Rows read: {self.rows_read:,}; valid: {self.valid_rows:,}; "
            f"malformed: {self.n_malformed:,}"
            + (f" ({_fmt_counts(self.malformed)})" if self.malformed else ""),
        ]
        if self.unknown_behaviors:
            lines.append(f"- Unknown behavior values: {_fmt_counts(self.unknown_behaviors)}")
        if self.dropped_behaviors:
            lines.append(f"- Dropped behaviors: {_fmt_counts(self.dropped_behaviors)}")
        lines.append(
            f"- Timestamps: {self.timestamp_unit}; time zone offset {self.tz_offset_seconds} s"
        )
        lines += [
            "",
            "| cleaning step | rule | rows removed | users removed |",
            "|---|---|--:|--:|",
        ]
        lines += [
            f"| {s.name} | {s.rule} | {s.rows_removed:,} | {s.users_removed:,} |"
            for s in self.cleaning
        ]
        lines += [
            "",
            f"- Events: {self.n_events:,} ({_fmt_counts(self.behavior_counts)}); "
            f"missing category: {self.missing_category:,}",
            f"- Users: {self.n_users:,}; items: {self.n_items:,}; "
            f"categories: {self.n_categories:,}",
            f"- Span: {self.start} to {self.end} (UTC)",
            f"- Load time: {self.load_seconds:.2f} s",
        ]
        if self.malformed_examples:
            lines += ["", "First malformed rows:", ""]
            lines += [f"    {e}" for e in self.malformed_examples]
        return "\n".join(lines) + "\n"


def _fmt_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


@dataclass
class LoadedLog:
    """A cleaned log, the report of how it was made, and the log's local time offset."""

    log: EventLog
    report: DataReport
    tz_offset_seconds: int


# --------------------------------------------------------------------------- progress


class _Progress:
    """Rows read and rate, to stderr at most once a second (only when enabled)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.t0 = time.monotonic()
        self.last = self.t0

    def update(self, rows: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 1.0):
            return
        self.last = now
        rate = rows / max(now - self.t0, 1e-9)
        end = "\n" if final else "\r"
        sys.stderr.write(f"{self.label}: {rows:,} rows read ({rate:,.0f} rows/s){end}")
        sys.stderr.flush()


# --------------------------------------------------------------------------- ids -> codes


class _Codes:
    """Raw id -> int code, grown batch by batch."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def encode(self, values: pa.Array) -> np.ndarray:
        enc = pc.dictionary_encode(values)
        uniques = enc.dictionary.cast(pa.binary()).to_pylist()
        table = np.fromiter(
            (self.index.setdefault(u.decode("utf-8", "replace"), len(self.index)) for u in uniques),
            dtype=np.int64,
            count=len(uniques),
        )
        return table[enc.indices.to_numpy(zero_copy_only=False)]

    def ids(self) -> np.ndarray:
        out = np.empty(len(self.index), dtype=object)
        out[:] = list(self.index)
        return out


# --------------------------------------------------------------------------- batches


@dataclass
class _Reader:
    """State shared across the batches of one file."""

    fmt: _Format
    behavior_codes: dict[str, int]
    report: DataReport
    users: _Codes = field(default_factory=_Codes)
    items: _Codes = field(default_factory=_Codes)
    categories: _Codes = field(default_factory=_Codes)
    parts: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in ("user", "item", "category", "behavior", "ts")}
    )
    ts_unit: str = ""
    malformed: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def bad_row(self, reason: str, text: str) -> None:
        self.malformed[reason] += 1
        if len(self.report.malformed_examples) < _MAX_EXAMPLES:
            self.report.malformed_examples.append(f"{reason}: {text[:200]}")

    def add(self, cols: dict[str, pa.Array]) -> None:
        """One batch of canonical columns (strings, or numbers/timestamps from Parquet)."""
        self.report.rows_read += len(cols["user"])
        cols, bad_encoding = _valid_utf8(cols)
        user = _clean_strings(cols["user"])
        item = _clean_strings(cols["item"])
        empty = ~bad_encoding & (_is_empty(user) | _is_empty(item))
        ts, ts_ok = self._timestamps(cols["timestamp"])
        behavior = self._behaviors(cols["behavior"])
        bad_ts = ~bad_encoding & ~empty & ~ts_ok
        bad_behavior = ~bad_encoding & ~empty & ts_ok & (behavior == _UNKNOWN_CODE)
        keep = ~bad_encoding & ~empty & ts_ok & (behavior >= 0)
        for reason, mask in (
            ("bad_encoding", bad_encoding),
            ("empty_id", empty),
            ("bad_timestamp", bad_ts),
            ("unknown_behavior", bad_behavior),
        ):
            if mask.any():
                self._count(reason, mask, cols)
        dropped_or_unknown = ~bad_encoding & ~empty & ts_ok & (behavior < 0)
        if dropped_or_unknown.any():
            raw = _lower_strings(cols["behavior"]).filter(pa.array(dropped_or_unknown))
            for value, count in Counter(raw.to_pylist()).items():
                dropped = self.behavior_codes.get(value) == _DROPPED_CODE
                _count_value(self.dropped if dropped else self.unknown, value, count)
        if not keep.any():
            return
        mask = pa.array(keep)
        category = (
            _clean_strings(cols["category"]).filter(mask)
            if "category" in cols
            else pa.array([""] * int(keep.sum()), type=pa.string())
        )
        self.parts["user"].append(self.users.encode(user.filter(mask)))
        self.parts["item"].append(self.items.encode(item.filter(mask)))
        self.parts["category"].append(self.categories.encode(category))
        self.parts["behavior"].append(behavior[keep].astype(np.int8))
        self.parts["ts"].append(ts[keep])

    def _count(self, reason: str, mask: np.ndarray, cols: dict[str, pa.Array]) -> None:
        self.malformed[reason] += int(mask.sum())
        room = _MAX_EXAMPLES - len(self.report.malformed_examples)
        for i in np.flatnonzero(mask)[: max(room, 0)]:
            row = ",".join(str(cols[c][int(i)].as_py()) for c in cols)
            self.report.malformed_examples.append(f"{reason}: {row[:200]}")

    def _behaviors(self, values: pa.Array) -> np.ndarray:
        enc = pc.dictionary_encode(_lower_strings(values))
        uniques = enc.dictionary.to_pylist()
        table = np.array([self.behavior_codes.get(u, _UNKNOWN_CODE) for u in uniques], np.int64)
        return table[enc.indices.to_numpy(zero_copy_only=False)]

    def _timestamps(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Unix seconds (int64) and a validity mask for one batch of raw timestamps."""
        if pa.types.is_timestamp(values.type):
            ticks = pc.cast(values, pa.int64()).fill_null(0).to_numpy().astype(np.float64)
            self.ts_unit = self.ts_unit or f"parquet timestamp[{values.type.unit}]"
            secs = ticks / _unit_divisor(values.type.unit)
            secs[np.asarray(values.is_null())] = math.nan
            return _valid_seconds(secs)
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            numbers = pc.cast(values, pa.float64()).fill_null(math.nan).to_numpy()
            is_number = ~np.isnan(numbers)
            strings = None
        else:
            strings = _clean_strings(values)
            is_number = (
                pc.match_substring_regex(strings, _NUMBER).fill_null(False).to_numpy(False)
                if self.fmt.ts_unit != "iso"
                else np.zeros(len(values), dtype=bool)
            )
            numbers = np.full(len(values), math.nan)
            if is_number.any():
                numbers[is_number] = pc.cast(
                    strings.filter(pa.array(is_number)), pa.float64()
                ).to_numpy()
        secs = numbers / _unit_divisor(self._numeric_unit(numbers[is_number]))
        if strings is not None and self.fmt.ts_unit in ("iso", "auto") and not is_number.all():
            iso = ~is_number
            secs[iso] = _parse_iso(strings.filter(pa.array(iso)))
            if not self.ts_unit and not np.isnan(secs[iso]).all():
                self.ts_unit = "iso8601"
        return _valid_seconds(secs)

    def _numeric_unit(self, numbers: np.ndarray) -> str:
        if self.fmt.ts_unit in ("s", "ms"):
            self.ts_unit = self.ts_unit or self.fmt.ts_unit
            return self.fmt.ts_unit
        if self.ts_unit in ("s", "ms", "us", "ns"):
            return self.ts_unit
        if len(numbers) == 0:
            return "s"
        magnitude = float(np.median(np.abs(numbers)))
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
        self.ts_unit = "ns" if magnitude >= 1e17 else unit
        return self.ts_unit


def _unit_divisor(unit: str) -> float:
    return {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]


def _valid_seconds(secs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(secs) & (secs >= 0) & (secs < MAX_TS)
    return np.where(ok, np.floor(np.where(ok, secs, 0)), 0).astype(np.int64), ok


def _parse_iso(strings: pa.Array) -> np.ndarray:
    """ISO 8601 strings -> unix seconds (NaN where unparsable); naive times read as UTC."""
    series = pd.Series(strings.to_pylist(), dtype=object).str.replace(
        r"\s*UTC$", "+00:00", regex=True
    )
    parsed = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
    secs = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return secs.to_numpy(dtype=np.float64, na_value=math.nan)


def _valid_utf8(cols: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Rows with bytes that are not UTF-8 (masked, and blanked so later steps can read them)."""
    bad = np.zeros(len(cols["user"]), dtype=bool)
    out = {}
    for name, values in cols.items():
        if pa.types.is_string(values.type):
            try:
                values.validate(full=True)
            except pa.ArrowInvalid:
                decoded = []
                for i, raw in enumerate(values.cast(pa.binary()).to_pylist()):
                    try:
                        decoded.append(raw.decode("utf-8") if raw is not None else None)
                    except UnicodeDecodeError:
                        bad[i] = True
                        decoded.append("")
                values = pa.array(decoded, type=pa.string())
        out[name] = values
    return out, bad


def _clean_strings(values: pa.Array) -> pa.Array:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return pc.utf8_trim_whitespace(values.fill_null(""))


def _lower_strings(values: pa.Array) -> pa.Array:
    return pc.utf8_lower(_clean_strings(values))


def _is_empty(values: pa.Array) -> np.ndarray:
    return pc.equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)


def _count_value(counter: Counter[str], value: str, count: int) -> None:
    if value in counter or len(counter) < _MAX_COUNTED_VALUES:
        counter[value] += count
    else:
        counter["<other>"] += count


# --------------------------------------------------------------------------- formats


def _first_lines(path: Path, n: int = 5) -> tuple[bytes, list[str]]:
    """The first bytes of the (decompressed) file and its first n text lines."""
    with pa.input_stream(str(path), compression="detect") as f:
        head = f.read(_SNIFF_BYTES)
    text = head.decode("utf-8", "replace")
    return head, text.splitlines()[:n]


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", "replace")
    return text.count("\ufffd") > max(8, len(text) // 100)


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    return max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","


def _looks_like_taobao(line: str) -> bool:
    parts = [p.strip() for p in line.split(",")]
    return (
        len(parts) == 5
        and parts[3].lower() in _TAOBAO.behavior_map
        and all(p.isdigit() for p in (parts[0], parts[1], parts[2], parts[4]))
    )


def _sniff(path: Path, columns: Mapping[str, str] | None) -> str:
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    head, lines = _first_lines(path)
    if _looks_binary(head):
        raise DataError(f"{path} is not a text event log: its first bytes look binary")
    first = lines[0] if lines else ""
    names = {c.strip().strip('"').lower() for c in first.split(_delimiter(first))}
    if columns:
        return "csv"
    if {"event_time", "event_type", "product_id", "user_id"} <= names:
        return "rees46"
    if {"timestamp", "visitorid", "event", "itemid"} <= names:
        return "retailrocket"
    if _looks_like_taobao(first) or (len(lines) > 1 and _looks_like_taobao(lines[1])):
        return "taobao"
    raise DataError(
        f"cannot tell the format of {path}: first line was {first[:200]!r}; expected a Taobao "
        "row (user,item,category,pv|fav|cart|buy,unix seconds), a REES46 or RetailRocket "
        "header, or pass fmt='csv' with a column mapping (--columns user=...,item=...)"
    )


def _resolve_format(
    fmt: str,
    path: Path,
    columns: Mapping[str, str] | None,
    behavior_map: Mapping[str, str] | None,
    tz_offset_seconds: int | None,
) -> _Format:
    if fmt not in FORMATS:
        raise OptionError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = _sniff(path, columns)
    if fmt in _NAMED:
        base = _NAMED[fmt]
        if columns:
            raise OptionError(f"a column mapping applies to csv and parquet, not to {fmt}")
    else:
        if not columns:
            raise OptionError(
                f"format {fmt} needs a column mapping for {', '.join(REQUIRED_COLUMNS)} "
                "(and optionally category), e.g. user=uid,item=sku,behavior=action,timestamp=ts"
            )
        base = _Format(name=fmt, columns={}, behavior_map={n: n for n in BEHAVIOR_NAMES})
    cols = dict(base.columns)
    if columns:
        unknown = set(columns) - set(CANONICAL_COLUMNS)
        if unknown:
            raise OptionError(
                f"unknown column name(s) {', '.join(sorted(unknown))} in the column mapping; "
                f"allowed: {', '.join(CANONICAL_COLUMNS)}"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise OptionError(f"the column mapping lacks {', '.join(missing)}")
        cols = dict(columns)
    bmap = dict(base.behavior_map)
    for value, target in (behavior_map or {}).items():
        target = target.strip().lower()
        if target not in (*BEHAVIOR_NAMES, DROP):
            allowed = ", ".join((*BEHAVIOR_NAMES, DROP))
            raise OptionError(f"behavior map sends {value!r} to {target!r}; allowed: {allowed}")
        bmap[value.strip().lower()] = target
    tz = base.tz_offset_seconds if tz_offset_seconds is None else int(tz_offset_seconds)
    return _Format(
        name=base.name,
        columns=cols,
        behavior_map=bmap,
        header=base.header,
        headerless_names=base.headerless_names,
        ts_unit=base.ts_unit,
        tz_offset_seconds=tz,
    )


def _csv_batches(
    path: Path, fmt: _Format, reader: _Reader, chunk_rows: int
) -> Iterator[dict[str, pa.Array]]:
    head, lines = _first_lines(path)
    if _looks_binary(head):
        raise DataError(f"{path} is not a text event log: its first bytes look binary")
    first = lines[0] if lines else ""
    delimiter = _delimiter(first) if fmt.header else ","
    if fmt.header:
        names = [c.strip().strip('"') for c in first.split(delimiter)]
        missing = [f"{k}={v}" for k, v in fmt.columns.items() if v not in names]
        if missing:
            raise DataError(
                f"{path} lacks column(s) {', '.join(missing)} for format {fmt.name}; "
                f"its header was {first[:200]!r}"
            )
        read_names = names
    else:
        read_names = list(fmt.headerless_names)
    avg_line = max(len(head) / max(len(lines), 1), 16) if lines else 64
    block = int(min(max(chunk_rows * avg_line, 1 << 16), 1 << 28))

    def invalid(row: pa_csv.InvalidRow) -> str:
        reader.bad_row("wrong_field_count", row.text or "")
        return "skip"

    wanted = dict(fmt.columns)
    stream = pa_csv.open_csv(
        pa.input_stream(str(path), compression="detect"),
        read_options=pa_csv.ReadOptions(
            column_names=None if fmt.header else read_names,
            block_size=block,
        ),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
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


def _parquet_batches(path: Path, fmt: _Format, chunk_rows: int) -> Iterator[dict[str, pa.Array]]:
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


# --------------------------------------------------------------------------- load


def load_log(
    path: str | Path,
    fmt: str = "auto",
    *,
    columns: dict[str, str] | None = None,
    behavior_map: dict[str, str] | None = None,
    tz_offset_seconds: int | None = None,
    clean: CleanConfig = CleanConfig(),  # noqa: B008 - frozen dataclass, never mutated
    chunk_rows: int = 500_000,
    progress: bool = True,
) -> LoadedLog:
    """Read, validate and clean an event log file into an EventLog (sorted by user, time).

    columns maps canonical names (user, item, category, behavior, timestamp) to file columns
    (csv/parquet only); behavior_map maps file values to view|fav|cart|buy|drop on top of
    the format's own map; tz_offset_seconds overrides the format's time zone (Taobao +8 h,
    others 0). Raises DataError for a file that is not an event log, OptionError for bad
    options (both SeqcastError and ValueError).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty: no event rows")
    t0 = time.monotonic()
    spec = _resolve_format(fmt, path, columns, behavior_map, tz_offset_seconds)
    report = DataReport(
        source=str(path), format=spec.name, tz_offset_seconds=spec.tz_offset_seconds
    )
    codes = {
        value: _DROPPED_CODE if target == DROP else int(Behavior.parse(target))
        for value, target in spec.behavior_map.items()
    }
    reader = _Reader(fmt=spec, behavior_codes=codes, report=report)
    batches = (
        _parquet_batches(path, spec, chunk_rows)
        if spec.name == "parquet"
        else _csv_batches(path, spec, reader, chunk_rows)
    )
    bar = _Progress(progress, path.name)
    try:
        for batch in batches:
            reader.add(batch)
            bar.update(report.rows_read + reader.malformed["wrong_field_count"])
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise DataError(f"{path} could not be read as {spec.name}: {e}") from None
    report.rows_read += reader.malformed["wrong_field_count"]
    bar.update(report.rows_read, final=True)
    report.malformed = dict(reader.malformed.most_common())
    report.unknown_behaviors = dict(reader.unknown.most_common())
    report.dropped_behaviors = dict(reader.dropped.most_common())
    report.timestamp_unit = reader.ts_unit or spec.ts_unit
    raw = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in reader.parts.items()}
    report.valid_rows = len(raw["ts"])
    if report.valid_rows == 0:
        _, lines = _first_lines(path)
        expected = ", ".join(f"{k}={v}" for k, v in spec.columns.items())
        raise DataError(
            f"no valid event rows in {path} (format {spec.name}; expected columns {expected}; "
            f"behaviors {', '.join(sorted(spec.behavior_map))}): "
            f"{report.rows_read:,} rows read, malformed {report.malformed or 'none'}, "
            f"unknown behaviors {report.unknown_behaviors or 'none'}; "
            f"first line was {(lines[0] if lines else '')[:200]!r}"
        )
    event_log = EventLog.from_codes(
        raw["user"],
        raw["item"],
        raw["category"],
        raw["behavior"],
        raw["ts"],
        reader.users.ids(),
        reader.items.ids(),
        reader.categories.ids(),
    )
    cleaned, steps = clean_log(event_log, clean, spec.tz_offset_seconds)
    report.cleaning = steps
    _describe(cleaned, report)
    report.load_seconds = round(time.monotonic() - t0, 3)
    log.info("loaded %s: %d events, %d users", path, report.n_events, report.n_users)
    return LoadedLog(log=cleaned, report=report, tz_offset_seconds=spec.tz_offset_seconds)


def _describe(event_log: EventLog, report: DataReport) -> None:
    report.n_events = len(event_log)
    report.n_users = len(np.unique(event_log.user))
    report.n_items = len(np.unique(event_log.item))
    cats = np.unique(event_log.category)
    report.n_categories = int(sum(1 for c in cats if event_log.category_ids[c] != ""))
    missing = [c for c in cats if event_log.category_ids[c] == ""]
    report.missing_category = int(np.isin(event_log.category, missing).sum())
    counts = np.bincount(event_log.behavior.astype(np.int64), minlength=len(Behavior))
    report.behavior_counts = {b.name.lower(): int(counts[b]) for b in Behavior}
    if len(event_log):
        report.start = _iso(int(event_log.ts.min()))
        report.end = _iso(int(event_log.ts.max()))


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- cleaning


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
        users_before = len(np.unique(event_log.user))
        event_log = event_log.take(~drop)
        steps.append(
            CleanStep(
                name=name,
                rule=rule,
                rows_removed=int(drop.sum()),
                users_removed=users_before - len(np.unique(event_log.user)),
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
    users, user = np.unique(event_log.user, return_inverse=True)
    items, item = np.unique(event_log.item, return_inverse=True)
    cats, category = np.unique(event_log.category, return_inverse=True)
    return EventLog(
        user=user.astype(np.int64),
        item=item.astype(np.int64),
        category=category.astype(np.int64),
        behavior=event_log.behavior,
        ts=event_log.ts,
        user_ids=event_log.user_ids[users],
        item_ids=event_log.item_ids[items],
        category_ids=event_log.category_ids[cats],
    )
