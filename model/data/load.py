"""load_log: an event log file -> a cleaned EventLog and the report of how it was made."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from model.data.cleaning import CleanConfig, clean_log
from model.data.encode import Encoder
from model.data.errors import DataError
from model.data.formats import Format, first_lines, resolve_format
from model.data.reader import batches
from model.data.report import DataReport
from model.progress import progress_bar
from model.sequences import EventLog

log = logging.getLogger(__name__)

MAX_UNMAPPED_SHARE = 0.5
"""Above this share of the rows read, unmapped behavior values refuse the log: a mapping
that misses the log's main behavior would otherwise train on what is left of it."""


@dataclass
class LoadedLog:
    """A cleaned log, the report of how it was made, and the log's local time offset."""

    log: EventLog
    report: DataReport
    tz_offset_seconds: int


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
    allow_unmapped: bool = False,
) -> LoadedLog:
    """Read, validate and clean an event log file into an EventLog (sorted by user, time).

    columns maps canonical names (user, item, category, behavior, timestamp) to file columns
    (csv/parquet only); behavior_map maps file values to view|fav|cart|buy|drop on top of
    the format's own map; tz_offset_seconds overrides the format's time zone (Taobao +8 h,
    others 0). Rows whose behavior value the mapping does not know are dropped with a
    warning that counts them per value; more than MAX_UNMAPPED_SHARE of the rows refuses the
    log unless allow_unmapped says the drop is intended. Raises DataError for a file that is
    not an event log (or loses too many rows that way), OptionError for bad options (both
    SeqcastError and ValueError).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty: no event rows")
    t0 = time.monotonic()
    spec = resolve_format(fmt, path, columns, behavior_map, tz_offset_seconds)
    report = DataReport(
        source=str(path), format=spec.name, tz_offset_seconds=spec.tz_offset_seconds
    )
    report.allow_unmapped = allow_unmapped
    encoder = _read(path, spec, report, chunk_rows, progress)
    report.valid_rows = encoder.n_valid
    if report.valid_rows == 0:
        raise _no_valid_rows(path, spec, report)
    _check_unmapped(path, report)
    # cleaning holds the only reference to the uncleaned log, so each step frees the last
    cleaned, report.cleaning = clean_log(encoder.event_log(), clean, spec.tz_offset_seconds)
    report.describe(cleaned)
    report.load_seconds = round(time.monotonic() - t0, 3)
    log.info("loaded %s: %d events, %d users", path, report.n_events, report.n_users)
    return LoadedLog(log=cleaned, report=report, tz_offset_seconds=spec.tz_offset_seconds)


def _read(path: Path, spec: Format, report: DataReport, chunk_rows: int, progress: bool) -> Encoder:
    """Every batch of the file through one Encoder; the read counts go into report."""
    encoder = Encoder(fmt=spec, report=report)
    with progress_bar(
        desc=f"load {path.name}", unit=" rows", unit_scale=True, show=progress
    ) as bar:
        try:
            for batch in batches(path, spec, chunk_rows, encoder.bad_row):
                encoder.add(batch)
                bar.update(report.rows_read + encoder.malformed["wrong_field_count"] - bar.n)
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            raise DataError(f"{path} could not be read as {spec.name}: {e}") from None
    report.rows_read += encoder.malformed["wrong_field_count"]
    report.malformed = dict(encoder.malformed.most_common())
    report.unknown_behaviors = dict(encoder.unknown.most_common())
    report.dropped_behaviors = dict(encoder.dropped.most_common())
    report.timestamp_unit = encoder.times.unit or spec.ts_unit
    return encoder


def _check_unmapped(path: Path, report: DataReport) -> None:
    """Warn about rows dropped for an unmapped behavior value; refuse too many of them."""
    unmapped = report.malformed.get("unknown_behavior", 0)
    if unmapped == 0:
        return
    share = unmapped / report.rows_read
    counts = ", ".join(f"{value!r}: {n:,}" for value, n in report.unknown_behaviors.items())
    summary = (
        f"{path}: {unmapped:,} of {report.rows_read:,} rows ({share:.1%}) have a behavior "
        f"value the mapping does not know ({counts})"
    )
    if share > MAX_UNMAPPED_SHARE and not report.allow_unmapped:
        raise DataError(
            f"{summary}; map them with --behavior-map VALUE=view|fav|cart|buy|drop, or pass "
            f"--allow-unmapped (load_log(allow_unmapped=True)) if dropping them is intended"
        )
    log.warning("%s; dropped", summary)


def _no_valid_rows(path: Path, spec: Format, report: DataReport) -> DataError:
    _, lines = first_lines(path)
    expected = ", ".join(f"{k}={v}" for k, v in spec.columns.items())
    return DataError(
        f"no valid event rows in {path} (format {spec.name}; expected columns {expected}; "
        f"behaviors {', '.join(sorted(spec.behavior_map))}): "
        f"{report.rows_read:,} rows read, malformed {report.malformed or 'none'}, "
        f"unknown behaviors {report.unknown_behaviors or 'none'}; "
        f"first line was {(lines[0] if lines else '')[:200]!r}"
    )
