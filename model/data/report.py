"""The data report: everything that happened between the file and the EventLog, counted.

The training report renders it (model.report) from `to_dict`, which is also what
metrics.json stores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np

from model.data.cleaning import CleanStep
from model.features import Behavior
from model.sequences import EventLog


@dataclass
class DataReport:
    """Rows read and skipped by reason, the cleaning steps, and what the cleaned log holds."""

    source: str
    format: str
    tz_offset_seconds: int
    rows_read: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    malformed_examples: list[str] = field(default_factory=list)
    unknown_behaviors: dict[str, int] = field(default_factory=dict)
    dropped_behaviors: dict[str, int] = field(default_factory=dict)
    allow_unmapped: bool = False  # unmapped behavior values were declared an intended drop
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

    def describe(self, event_log: EventLog) -> None:
        """Fill in the counts and the time span of the cleaned log."""
        self.n_events = len(event_log)
        self.n_users = len(np.unique(event_log.user))
        self.n_items = len(np.unique(event_log.item))
        cats = np.unique(event_log.category)
        self.n_categories = int(sum(1 for c in cats if event_log.category_ids[c] != ""))
        missing = [c for c in cats if event_log.category_ids[c] == ""]
        self.missing_category = int(np.isin(event_log.category, missing).sum())
        counts = np.bincount(event_log.behavior.astype(np.int64), minlength=len(Behavior))
        self.behavior_counts = {b.name.lower(): int(counts[b]) for b in Behavior}
        if len(event_log):
            self.start = _utc(int(event_log.ts.min()))
            self.end = _utc(int(event_log.ts.max()))


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
