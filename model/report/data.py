"""The report's data section: the data report (`DataReport.to_dict()`, as metrics.json
stores it) as tables a reader scans: from the rows read to the log trained on, what the
kept log holds, its behavior mix, and what was skipped by reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model.report.inputs import number


def _count(value: Any) -> str:
    v = number(value)
    return "—" if v is None else f"{v:,.0f}"


def _removed(value: Any) -> str:
    v = number(value)
    return "—" if v is None else "0" if v == 0 else f"−{v:,.0f}"


def _zone(seconds: Any) -> str:
    hours = (number(seconds) or 0.0) / 3600
    return "UTC" if hours == 0 else f"UTC{hours:+g}"


def _funnel(d: Mapping[str, Any]) -> list[str]:
    """Rows read -> valid rows -> each cleaning step -> the log trained on."""
    lines = [
        "| step | rule | rows | users |",
        "|---|---|---:|---:|",
        f"| read | every data row of the file | {_count(d.get('rows_read'))} | |",
        f"| malformed or unmapped | skipped{', by reason below' if d.get('n_malformed') else ''}"
        f" | {_removed(d.get('n_malformed', 0))} | |",
        f"| valid | | {_count(d.get('valid_rows'))} | |",
    ]
    for step in d.get("cleaning", []):
        lines.append(
            f"| {step.get('name', '')} | {step.get('rule', '')} | "
            f"{_removed(step.get('rows_removed'))} | {_removed(step.get('users_removed'))} |"
        )
    lines.append(f"| **kept** | | **{_count(d.get('n_events'))}** | "
                 f"**{_count(d.get('n_users'))}** |")
    return lines


def _contents(d: Mapping[str, Any]) -> list[str]:
    return [
        "| the kept log | |",
        "|---|---:|",
        f"| events | {_count(d.get('n_events'))} |",
        f"| users | {_count(d.get('n_users'))} |",
        f"| items | {_count(d.get('n_items'))} |",
        f"| categories | {_count(d.get('n_categories'))} |",
        f"| events without a category | {_count(d.get('missing_category'))} |",
        f"| first event (UTC) | {d.get('start') or '—'} |",
        f"| last event (UTC) | {d.get('end') or '—'} |",
    ]


def _behavior_mix(counts: Mapping[str, Any]) -> list[str]:
    total = sum(number(v) or 0.0 for v in counts.values())
    if not counts or total == 0:
        return []
    names = list(counts)
    return [
        "",
        "| behavior | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        "| events | " + " | ".join(_count(counts[n]) for n in names) + " |",
        "| share | " + " | ".join(f"{(number(counts[n]) or 0.0) / total:.1%}" for n in names)
        + " |",
    ]


def _skipped(d: Mapping[str, Any]) -> list[str]:
    """Rows skipped by reason, with the values behind them and a few examples."""
    tables = (
        ("malformed", "skipped because"),
        ("unknown_behaviors", "behavior value the mapping does not know"),
        ("dropped_behaviors", "behavior value mapped to drop"),
    )
    lines: list[str] = []
    for key, label in tables:
        counts = d.get(key) or {}
        if not counts:
            continue
        lines += ["", f"| {label} | rows |", "|---|---:|"]
        lines += [f"| `{name}` | {_count(n)} |" for name, n in counts.items()]
    if d.get("allow_unmapped"):
        lines += ["", "Unmapped behavior values were declared an intended drop "
                  "(`--allow-unmapped`)."]
    examples = d.get("malformed_examples") or []
    if examples:
        lines += ["", "Examples of malformed rows:", ""]
        lines += [f"- `{line}`" for line in examples]
    return lines


def data_md(d: Mapping[str, Any] | None) -> list[str]:
    """The "## Data" section's lines (no heading)."""
    if not d:
        return ["No data report."]
    seconds = number(d.get("load_seconds"))
    return [
        f"Read from `{d.get('source', '—')}`: format {d.get('format', '—')}, timestamps in "
        f"{d.get('timestamp_unit') or '—'}, shoppers' local time "
        f"{_zone(d.get('tz_offset_seconds'))}"
        + ("" if seconds is None else f", loaded and cleaned in {seconds:.1f} s") + ".",
        "",
        *_funnel(d),
        "",
        *_contents(d),
        *_behavior_mix(d.get("behavior_counts") or {}),
        *_skipped(d),
    ]
