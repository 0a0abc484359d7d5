"""The data report: serialised for metrics.json, rendered in the training report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.data import load_log
from model.report import render_markdown

T0 = 1_511_600_000  # inside Taobao's span


def test_report_serializes_and_renders(write: Callable[[str, str | bytes], Path]) -> None:
    path = write("ub.csv", f"1,2,3,pv,{T0}\n1,2,3,buy,{T0 + 1}\n1,2,3,pv\n")
    report = load_log(path, progress=False).report
    d = report.to_dict()
    assert d["n_malformed"] == 1 and d["valid_rows"] == 2
    assert [s["name"] for s in d["cleaning"]] == [  # type: ignore[union-attr]
        "duplicates",
        "out_of_span",
        "bots",
        "short_users",
    ]
    text = render_markdown({}, [], {}, d).split("## Data\n", 1)[1]
    assert "- malformed:\n  - wrong_field_count: 1\n" in text
    assert "'name': 'short_users'" in text and "- n_events: 2\n" in text
