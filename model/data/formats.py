"""The file layouts the loader reads, how a file's layout is recognised, and the CLI mappings.

Formats (`fmt`):
    taobao        headerless user,item,category,behavior(pv|fav|cart|buy),unix seconds
    rees46        header event_time,event_type,product_id,category_id,...,user_id,...;
                  event_type view|cart|purchase (remove_from_cart is dropped and counted),
                  times like "2019-10-01 00:00:00 UTC"
    retailrocket  events.csv: timestamp(ms),visitorid,event(view|addtocart|transaction),
                  itemid,transactionid; no category (every event gets the missing category)
    csv, parquet  any columns, through a mapping canonical name -> file column
                  (user,item,category,behavior,timestamp; category optional) and a behavior
                  mapping file value -> view|fav|cart|buy|drop. Timestamps: numbers in the
                  unit chosen once per file from the magnitude of the first numeric values,
                  or ISO 8601 strings (the rule is model.timestamps').
    auto          .parquet/.pq by extension; otherwise the header line names the format, or a
                  first line that looks like a Taobao row does; csv when `columns` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from model.data.errors import DataError, OptionError
from model.features import BEHAVIOR_NAMES

FORMATS = ("auto", "taobao", "rees46", "retailrocket", "csv", "parquet")
CANONICAL_COLUMNS = ("user", "item", "category", "behavior", "timestamp")
REQUIRED_COLUMNS = ("user", "item", "behavior", "timestamp")
DROP = "drop"

_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Format:
    """How one file layout maps onto the canonical columns."""

    name: str
    columns: Mapping[str, str]  # canonical name -> column name in the file
    behavior_map: Mapping[str, str]  # lower-cased file value -> behavior name or DROP
    header: bool = True
    headerless_names: tuple[str, ...] = ()
    # "s" or "ms": numbers only, in that unit; "iso": ISO 8601 strings only; "auto": either.
    ts_unit: str = "auto"
    tz_offset_seconds: int = 0


TAOBAO = Format(
    name="taobao",
    columns={c: c for c in CANONICAL_COLUMNS},
    behavior_map={"pv": "view", "fav": "fav", "cart": "cart", "buy": "buy"},
    header=False,
    headerless_names=CANONICAL_COLUMNS,
    ts_unit="s",
    tz_offset_seconds=8 * 3600,  # Beijing time
)
REES46 = Format(
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
RETAILROCKET = Format(
    name="retailrocket",
    columns={"user": "visitorid", "item": "itemid", "behavior": "event", "timestamp": "timestamp"},
    behavior_map={"view": "view", "addtocart": "cart", "transaction": "buy"},
    ts_unit="ms",
)
_NAMED = {f.name: f for f in (TAOBAO, REES46, RETAILROCKET)}


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


def resolve_format(
    fmt: str,
    path: Path,
    columns: Mapping[str, str] | None,
    behavior_map: Mapping[str, str] | None,
    tz_offset_seconds: int | None,
) -> Format:
    """The layout to read `path` with: the named or sniffed format, with the options applied."""
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
        base = Format(name=fmt, columns={}, behavior_map={n: n for n in BEHAVIOR_NAMES})
    cols = _checked_columns(columns) if columns else dict(base.columns)
    bmap = {**base.behavior_map, **_checked_behavior_map(behavior_map or {})}
    tz = base.tz_offset_seconds if tz_offset_seconds is None else int(tz_offset_seconds)
    return Format(
        name=base.name,
        columns=cols,
        behavior_map=bmap,
        header=base.header,
        headerless_names=base.headerless_names,
        ts_unit=base.ts_unit,
        tz_offset_seconds=tz,
    )


def _checked_columns(columns: Mapping[str, str]) -> dict[str, str]:
    unknown = set(columns) - set(CANONICAL_COLUMNS)
    if unknown:
        raise OptionError(
            f"unknown column name(s) {', '.join(sorted(unknown))} in the column mapping; "
            f"allowed: {', '.join(CANONICAL_COLUMNS)}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise OptionError(f"the column mapping lacks {', '.join(missing)}")
    return dict(columns)


def _checked_behavior_map(behavior_map: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for value, target in behavior_map.items():
        target = target.strip().lower()
        if target not in (*BEHAVIOR_NAMES, DROP):
            allowed = ", ".join((*BEHAVIOR_NAMES, DROP))
            raise OptionError(f"behavior map sends {value!r} to {target!r}; allowed: {allowed}")
        out[value.strip().lower()] = target
    return out


# --------------------------------------------------------------------------- sniffing


def first_lines(path: Path, n: int = 5) -> tuple[bytes, list[str]]:
    """The first bytes of the (decompressed) file and its first n text lines."""
    with pa.input_stream(str(path), compression="detect") as f:
        head = f.read(_SNIFF_BYTES)
    text = head.decode("utf-8", "replace")
    return head, text.splitlines()[:n]


def refuse_binary(path: Path, head: bytes) -> None:
    """DataError unless the first bytes read as text."""
    text = head.decode("utf-8", "replace")
    if b"\x00" in head or text.count("\ufffd") > max(8, len(text) // 100):
        raise DataError(f"{path} is not a text event log: its first bytes look binary")


def delimiter(header: str) -> str:
    """The most frequent of , tab ; | in a header line (a comma when none occurs)."""
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    return max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","


def _looks_like_taobao(line: str) -> bool:
    parts = [p.strip() for p in line.split(",")]
    return (
        len(parts) == 5
        and parts[3].lower() in TAOBAO.behavior_map
        and all(p.isdigit() for p in (parts[0], parts[1], parts[2], parts[4]))
    )


def _sniff(path: Path, columns: Mapping[str, str] | None) -> str:
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    head, lines = first_lines(path)
    refuse_binary(path, head)
    first = lines[0] if lines else ""
    names = {c.strip().strip('"').lower() for c in first.split(delimiter(first))}
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
        "header, or pass --format csv with a column mapping (--columns user=...,item=...; "
        "load_log(fmt='csv', columns=...))"
    )
