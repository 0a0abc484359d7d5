"""bench/scale.py's output: the "## Scale runs" section of docs/benchmarks-scale.md (the
rest of the file is left as it is) and the PNG of cost against catalog size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SECTION = "## Scale runs"
TITLE = "# Benchmarks at scale"
ROWS = (  # (label, part of the result, key, unit)
    ("generate log", None, "generate_s", "s"),
    ("train: status", "train", "status", ""),
    ("train: wall", "train", "seconds", "s"),
    ("train: peak RSS", "train", "peak_rss_gb", "GB"),
    ("load", "train", "load_s", "s"),
    ("events after cleaning", "train", "n_events", ""),
    ("items in the log", "train", "n_items_seen", ""),
    ("training (1 epoch)", "train", "train_events_per_s", "events/s"),
    ("training events/s from", "train", "train_events_per_s_from", ""),
    ("epoch", "train", "epoch_s", "s"),
    ("test points", "train", "test_points", ""),
    ("evaluation", "train", "eval_points_per_s", "points/s"),
    ("item NDCG@10", "train", "item_ndcg@10", ""),
    ("serve: status", "serve", "status", ""),
    ("serving p50, 1 client", "serve", "p50_ms", "ms"),
    ("serving, 16 clients", "serve", "predictions_per_s", "predictions/s"),
)


def _value(result: dict[str, Any], part: str | None, key: str) -> Any:
    where = result if part is None else result.get(part, {})
    return where.get(key)


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value} {unit}".strip()


def point_table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"### {result['point']} ({result['events']:,} events, {result['items']:,} items)",
        "",
        f"{result['date']}, {result['machine']}, load average before "
        f"{', '.join(str(x) for x in result['load_average'])}.",
        f"Run by `{result['command']}`; training: `{result['train'].get('command', '-')}`; "
        f"serving: `{result.get('serve', {}).get('command', '-')}`.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {label} | {_cell(_value(result, part, key), unit)} |"
              for label, part, key, unit in ROWS]
    return [*lines, ""]


def write_section(md: Path, results: dict[str, dict[str, Any]], png: Path) -> None:
    """Replace (or append) the Scale runs section of md with a table per point."""
    ordered = sorted(results.values(), key=lambda r: (r["events"], r["items"]))
    body = [
        SECTION,
        "",
        "`bench/scale.py`: synthetic Taobao-layout logs (`bench/scale_log.py`), each trained "
        "for one epoch, evaluated without baselines and served in separate processes. The "
        "machine is shared: compare points of one run, side by side.",
        "",
        f"![cost against catalog size]({png.name})",
        "",
    ]
    for result in ordered:
        body += point_table(result)
    text = md.read_text() if md.exists() else f"{TITLE}\n\n"
    head, found, rest = text.partition(SECTION)
    tail = rest[rest.find("\n## "):] if found and "\n## " in rest else ""
    md.write_text(head.rstrip("\n") + "\n\n" + "\n".join(body).rstrip("\n") + "\n"
                  + tail.rstrip("\n") + ("\n" if tail else ""))


def plot(results: dict[str, dict[str, Any]], png: Path) -> None:
    """Peak RSS, training events/s and serving p50 against catalog size, a line per log
    size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    panels = (("train", "peak_rss_gb", "training peak RSS (GB)"),
              ("train", "train_events_per_s", "training events/s"),
              ("train", "eval_points_per_s", "evaluation points/s"),
              ("serve", "p50_ms", "serving p50, 1 client (ms)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (part, key, title) in zip(axes, panels, strict=True):
        for events in sorted({r["events"] for r in results.values()}):
            pts = sorted((r["items"], _value(r, part, key)) for r in results.values()
                         if r["events"] == events and _value(r, part, key) is not None)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{events:,} events")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
        ax.set_xlabel("catalog size (items)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
