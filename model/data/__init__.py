"""Behavior logs in: read an event log file, skip what is malformed, clean it, count everything.

    load_log(path) -> LoadedLog(log: EventLog, report: DataReport, tz_offset_seconds)

    formats      the file layouts (taobao, rees46, retailrocket, csv, parquet), sniffing
    reader       the chunked CSV/Parquet readers (batches of canonical columns)
    encode       batches -> int codes; malformed rows skipped and counted by reason
    time_column  a batch's timestamps, by the rule of model.timestamps
    cleaning     CleanConfig and clean_log: duplicates, stray days, bots, short users
    report       DataReport: everything between the file and the EventLog, counted
    load         load_log, which runs the above in that order

A file with no valid row at all raises one `DataError` that says what was expected and what
the first line was.
"""

from model.data.cleaning import CleanConfig, CleanStep, clean_log
from model.data.errors import DataError, OptionError
from model.data.formats import FORMATS, parse_mapping
from model.data.load import LoadedLog, load_log
from model.data.report import DataReport

__all__ = [
    "FORMATS",
    "CleanConfig",
    "CleanStep",
    "DataError",
    "DataReport",
    "LoadedLog",
    "OptionError",
    "clean_log",
    "load_log",
    "parse_mapping",
]
