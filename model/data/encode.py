"""Batches of raw columns -> compact int codes, with every malformed row skipped and counted.

Raw ids become int codes batch by batch through one dict per id kind, and only compact numpy
arrays are kept, so memory grows with the number of valid events and distinct ids, not the
file size.

A row is malformed, skipped and counted by reason, when it has the wrong number of fields
(`wrong_field_count`, from the reader), bytes that are not UTF-8 (`bad_encoding`), an empty
user or item id (`empty_id`), a timestamp that model.timestamps refuses (`bad_timestamp`), or
a behavior value the mapping does not know (`unknown_behavior`). Values mapped to `drop`
(remove_from_cart) are counted apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from model.data.formats import DROP, Format
from model.data.report import DataReport
from model.data.time_column import TimeColumn, clean_strings
from model.features import Behavior
from model.sequences import EventLog

_DROPPED_CODE = -1
_UNKNOWN_CODE = -2
_MAX_COUNTED_VALUES = 20
_MAX_EXAMPLES = 5


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


@dataclass
class Encoder:
    """The valid rows of one file, as codes, and the counts of everything skipped."""

    fmt: Format
    report: DataReport
    users: _Codes = field(default_factory=_Codes)
    items: _Codes = field(default_factory=_Codes)
    categories: _Codes = field(default_factory=_Codes)
    parts: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in ("user", "item", "category", "behavior", "ts")}
    )
    malformed: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.behavior_codes = {
            value: _DROPPED_CODE if target == DROP else int(Behavior.parse(target))
            for value, target in self.fmt.behavior_map.items()
        }
        self.times = TimeColumn(self.fmt.ts_unit)

    def bad_row(self, text: str) -> None:
        """A row the reader could not split into the header's fields."""
        self.malformed["wrong_field_count"] += 1
        if len(self.report.malformed_examples) < _MAX_EXAMPLES:
            self.report.malformed_examples.append(f"wrong_field_count: {text[:200]}")

    def add(self, cols: dict[str, pa.Array]) -> None:
        """One batch of canonical columns (strings, or numbers/timestamps from Parquet)."""
        self.report.rows_read += len(cols["user"])
        cols, bad_encoding = _valid_utf8(cols)
        user = clean_strings(cols["user"])
        item = clean_strings(cols["item"])
        readable = ~bad_encoding & ~(_is_empty(user) | _is_empty(item))
        ts, ts_ok = self.times.seconds(cols["timestamp"])
        behavior = self._behaviors(cols["behavior"])
        for reason, mask in (
            ("bad_encoding", bad_encoding),
            ("empty_id", ~bad_encoding & ~readable),
            ("bad_timestamp", readable & ~ts_ok),
            ("unknown_behavior", readable & ts_ok & (behavior == _UNKNOWN_CODE)),
        ):
            if mask.any():
                self._count(reason, mask, cols)
        self._count_values(cols["behavior"], readable & ts_ok & (behavior < 0))
        keep = readable & ts_ok & (behavior >= 0)
        if not keep.any():
            return
        mask = pa.array(keep)
        category = (
            clean_strings(cols["category"]).filter(mask)
            if "category" in cols
            else pa.array([""] * int(keep.sum()), type=pa.string())
        )
        self.parts["user"].append(self.users.encode(user.filter(mask)))
        self.parts["item"].append(self.items.encode(item.filter(mask)))
        self.parts["category"].append(self.categories.encode(category))
        self.parts["behavior"].append(behavior[keep].astype(np.int8))
        self.parts["ts"].append(ts[keep])

    @property
    def n_valid(self) -> int:
        """Valid rows added so far."""
        return sum(len(part) for part in self.parts["user"])

    def event_log(self) -> EventLog:
        """The valid rows read so far (grouped by user, in time order). The encoder hands its
        batches over: each column's batches are released once joined, so the log is never
        held twice over."""
        raw = {}
        for k, v in self.parts.items():
            raw[k] = np.concatenate(v) if v else np.zeros(0, np.int64)
            v.clear()
        return EventLog.from_codes(
            raw["user"],
            raw["item"],
            raw["category"],
            raw["behavior"],
            raw["ts"],
            self.users.ids(),
            self.items.ids(),
            self.categories.ids(),
        )

    def _count(self, reason: str, mask: np.ndarray, cols: dict[str, pa.Array]) -> None:
        self.malformed[reason] += int(mask.sum())
        room = _MAX_EXAMPLES - len(self.report.malformed_examples)
        for i in np.flatnonzero(mask)[: max(room, 0)]:
            row = ",".join(str(cols[c][int(i)].as_py()) for c in cols)
            self.report.malformed_examples.append(f"{reason}: {row[:200]}")

    def _count_values(self, values: pa.Array, dropped_or_unknown: np.ndarray) -> None:
        """Count the dropped and the unknown behavior values (the 20 most seen, then <other>)."""
        if not dropped_or_unknown.any():
            return
        raw = _lower_strings(values).filter(pa.array(dropped_or_unknown))
        for value, count in Counter(raw.to_pylist()).items():
            dropped = self.behavior_codes.get(value) == _DROPPED_CODE
            counter = self.dropped if dropped else self.unknown
            if value in counter or len(counter) < _MAX_COUNTED_VALUES:
                counter[value] += count
            else:
                counter["<other>"] += count

    def _behaviors(self, values: pa.Array) -> np.ndarray:
        enc = pc.dictionary_encode(_lower_strings(values))
        uniques = enc.dictionary.to_pylist()
        table = np.array([self.behavior_codes.get(u, _UNKNOWN_CODE) for u in uniques], np.int64)
        return table[enc.indices.to_numpy(zero_copy_only=False)]


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


def _lower_strings(values: pa.Array) -> pa.Array:
    return pc.utf8_lower(clean_strings(values))


def _is_empty(values: pa.Array) -> np.ndarray:
    return pc.equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
