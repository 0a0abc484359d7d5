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
    lines = text.splitlines()
    assert f"Read from `{path}`: format taobao" in text
    # A table from the rows read to the log kept, a cleaning step per row, the reason a
    # skipped row was skipped: no dict or list is dumped as text.
    assert "| read | every data row of the file | 3 | |" in lines
    assert "| malformed or unmapped | skipped, by reason below | −1 | |" in lines
    assert any(line.startswith("| short_users | users with fewer than 2 events |")
               for line in lines)
    assert "| **kept** | | **2** | **1** |" in lines
    assert "| `wrong_field_count` | 1 |" in lines
    assert "| behavior | view | fav | cart | buy |" in lines
    assert "| share | 50.0% | 0.0% | 0.0% | 50.0% |" in lines
    assert "| duplicates | exact duplicate rows, first kept | 0 | 0 |" in lines
    assert not any(c in text for c in "{}[]")
