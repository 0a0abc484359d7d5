"""Quality against the field: seqcast's Transformer, its own baselines, V-SkNN and RecBole's
SASRec / GRU4Rec / BERT4Rec, trained on one time split and scored on the same test points.

    python bench/quality/run.py --data ../shared/datasets/taobao_users/UserBehavior.csv \
        --seeds 0 1 2 --out bench/quality/results/taobao

Writes OUT/results.json (every run and the mean/std summary) and OUT/results.md (the table).
RecBole runs in its own virtual environment (bench/quality/.venv-recbole, created on first
use from requirements-recbole.txt) through recbole_worker.py. Protocol: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import recbole_data  # noqa: E402
from sknn import SknnConfig, evaluate_sknn  # noqa: E402

from model.data import LoadedLog, load_log  # noqa: E402
from model.pipeline import SplitConfig, train_artifact  # noqa: E402
from model.sequences import test_points  # noqa: E402
from model.train import TrainConfig  # noqa: E402

log = logging.getLogger("bench.quality")

RECBOLE_VENV = HERE / ".venv-recbole"
RECBOLE_REQUIREMENTS = HERE / "requirements-recbole.txt"
RECBOLE_MODELS = ("SASRec", "GRU4Rec", "BERT4Rec")
ALL_MODELS = ("seqcast", "baselines", "sknn", *RECBOLE_MODELS)

# (column header, head, metric) of the results table, in order.
COLUMNS = (
    ("item R@20", "next_item", "recall@20"),
    ("item N@10", "next_item", "ndcg@10"),
    ("cat R@20", "next_category", "recall@20"),
    ("cat N@10", "next_category", "ndcg@10"),
    ("behavior AUC", "next_behavior", "macro_auc"),
    ("purchase AUC", "purchase", "auc"),
    ("return AUC", "return", "auc"),
    # the same windows asked about at a random later time (`model.sequences.later_points`)
    ("later: behavior AUC", "later.next_behavior", "macro_auc"),
    ("later: purchase AUC", "later.purchase", "auc"),
)


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- RecBole venv


def recbole_python(venv_dir: Path = RECBOLE_VENV) -> Path:
    return venv_dir / "bin" / "python"


def ensure_recbole_venv(venv_dir: Path = RECBOLE_VENV) -> Path:
    """Create RecBole's virtual environment on first use (pinned, --no-deps: the lock file
    is complete and leaves out ray, which RecBole only needs for hyper-parameter search)."""
    python = recbole_python(venv_dir)
    if python.exists():
        return python
    stderr(f"creating {venv_dir} (RecBole 1.2.1 and its pinned dependencies; a few minutes)")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-r",
         str(RECBOLE_REQUIREMENTS)],
        check=True,
    )
    subprocess.run([str(python), "-c", "import recbole.quick_start.quick_start"], check=False)
    return python


# --------------------------------------------------------------------------- one model each


def as_heads(result: dict[str, Any]) -> dict[str, Any]:
    """An item/category result (sknn, RecBole worker) in the evaluator's per-model shape."""
    return {"next_item": result["item"], "next_category": result["category"]}


def run_seqcast(
    data: LoadedLog, cfg: TrainConfig, split_cfg: SplitConfig, out: Path, baselines: bool
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], float]:
    """Train, export and evaluate seqcast (and the trainer's baselines) with the pipeline a
    user runs (`seqcast train`). Returns (model metrics, baseline metrics, seconds)."""
    started = time.perf_counter()
    evaluation = train_artifact(data, out, cfg, split_cfg=split_cfg, baselines=baselines)
    return evaluation["model"], evaluation.get("baselines", {}), time.perf_counter() - started


def run_recbole(
    model: str, workdir: Path, seed: int, args: argparse.Namespace, max_len: int
) -> tuple[dict[str, Any], float]:
    """One RecBole model in its venv; returns (metrics in the evaluator's shape, seconds)."""
    result_path = workdir / f"{model}.result.json"
    job = {
        "model": model,
        "seed": seed,
        "epochs": args.recbole_epochs,
        "stopping_step": args.recbole_patience,
        "max_len": max_len,
        "train_batch_size": args.recbole_batch_size,
        "eval_batch_size": 512,
        "threads": args.threads,
        "hyper": json.loads(args.recbole_hyper),
        "result": str(result_path),
    }
    job_path = workdir / f"{model}.job.json"
    job_path.write_text(json.dumps(job, indent=2))
    started = time.perf_counter()
    subprocess.run(
        [str(recbole_python()), str(HERE / "recbole_worker.py"), str(job_path)],
        cwd=workdir,
        check=True,
    )
    result = json.loads(result_path.read_text())
    heads = as_heads(result)
    heads["recbole"] = {k: v for k, v in result.items() if k not in ("item", "category")}
    return heads, time.perf_counter() - started


# --------------------------------------------------------------------------- summary, table


def day_resolution(data: LoadedLog) -> LoadedLog:
    """The log as a day-resolution source would give it: every time floored to its local
    midnight; within a day the events keep the file's order (the loader's sort is stable, and
    flooring keeps each user's order)."""
    tz = data.tz_offset_seconds
    ts = (data.log.ts + tz) // 86400 * 86400 - tz
    return replace(data, log=replace(data.log, ts=ts))


def lookup(metrics: dict[str, Any], head: str, name: str) -> Any:
    """metrics[head][name], a dotted head ("later.purchase") read level by level."""
    for part in head.split("."):
        metrics = metrics.get(part, {})
    return metrics.get(name)


def metric(run: dict[str, Any], head: str, name: str) -> float | None:
    value = lookup(run.get("metrics", {}), head, name)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: mean and (population) std over its runs of every table metric, the wall
    time, and how many runs there were."""
    summary: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == name]
        row: dict[str, Any] = {"n_runs": len(mine)}
        for _, head, key in COLUMNS:
            values = [v for r in mine if (v := metric(r, head, key)) is not None]
            row[f"{head}.{key}"] = (
                {"mean": float(np.mean(values)), "std": float(np.std(values))} if values else None
            )
        seconds = [r["seconds"] for r in mine if r["seconds"] is not None]
        row["seconds"] = float(np.mean(seconds)) if seconds else None
        summary[name] = row
    return summary


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    """The results table: mean ± std per metric, the best mean of each column in bold."""
    best: dict[str, float] = {}
    for _, head, key in COLUMNS:
        means = [s[f"{head}.{key}"]["mean"] for s in summary.values() if s[f"{head}.{key}"]]
        if means:
            best[f"{head}.{key}"] = max(means)
    header = ["model", *(c[0] for c in COLUMNS), "runs", "wall s/run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in summary.items():
        cells = [name]
        for _, head, key in COLUMNS:
            cell = row[f"{head}.{key}"]
            if cell is None:
                cells.append("—")
                continue
            text = f"{cell['mean']:.4f} ± {cell['std']:.4f}"
            cells.append(f"**{text}**" if cell["mean"] == best[f"{head}.{key}"] else text)
        seconds = row["seconds"]
        cells += [str(row["n_runs"]), "in seqcast's" if seconds is None else f"{seconds:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


SAME_BENCHMARK = ("data", "day_resolution", "n_events", "n_test_points", "split")


def earlier_runs(out: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs already in out/results.json, when they were scored on the same test points
    (same data and split); an out directory of another benchmark is refused, not mixed in."""
    path = out / "results.json"
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    differs = [k for k in SAME_BENCHMARK if earlier["meta"].get(k) != meta.get(k)]
    if differs:
        raise SystemExit(
            f"{path} holds results of another benchmark ({', '.join(differs)} differ): "
            "choose another --out or remove it"
        )
    return list(earlier["runs"])


def merge_runs(earlier: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """earlier with new added; a run of the same model and seed is replaced."""
    same = (new["model"], new["seed"])
    return [r for r in earlier if (r["model"], r["seed"]) != same] + [new]


def write_results(out: Path, meta: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json and results.md under out (rewritten after every run, so a long benchmark
    that is stopped keeps what it finished). Written by rename: a benchmark split over
    several invocations (say RecBole in one, seqcast in another) merges into one table."""
    summary = summarize(runs)
    seeds = sorted({r["seed"] for r in runs if r["seed"] is not None} | set(meta["seeds"]))
    meta = {**meta, "seeds": seeds}
    results = {"meta": meta, "summary": summary, "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".results.json.{os.getpid()}"
    partial.write_text(json.dumps(results, indent=2, default=str))
    partial.replace(out / "results.json")
    notes = [
        f"Data: `{meta['data']}` ({meta['n_events']} events after cleaning), "
        f"{meta['n_test_points']} test points; split {meta['split']}.",
        f"Seeds: {meta['seeds']}. Mean ± std over runs; deterministic models run once.",
    ]
    (out / "results.md").write_text(markdown_table(summary) + "\n" + "\n".join(notes) + "\n")
    return results


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="event log the trainer can load")
    p.add_argument("--format", default="auto", help="load_log format (default: auto)")
    p.add_argument("--out", type=Path, required=True, help="results directory")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--day-resolution", action="store_true",
                   help="floor every timestamp to its local day first (the order within a "
                   "day stays the file's): a log with dates only")
    p.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=ALL_MODELS)
    p.add_argument("--preset", default="default", help="seqcast TrainConfig preset")
    p.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=VALUE",
        help="seqcast TrainConfig overrides (e.g. max_epochs=5)",
    )
    p.add_argument("--recbole-epochs", type=int, default=20)
    p.add_argument("--recbole-patience", type=int, default=3, help="RecBole stopping_step")
    p.add_argument("--recbole-batch-size", type=int, default=256)
    p.add_argument("--recbole-hyper", default="{}", help="JSON of extra RecBole options")
    p.add_argument("--max-valid", type=int, default=3000, help="RecBole validation points")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return p.parse_args(argv)


def train_config(args: argparse.Namespace, seed: int) -> TrainConfig:
    overrides = dict(item.partition("=")[::2] for item in args.set)  # pydantic coerces them
    return TrainConfig.preset(args.preset, seed=seed, **overrides)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out = args.out.resolve()  # the RecBole worker runs in its own working directory
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    wanted = set(args.models)
    if wanted & set(RECBOLE_MODELS):
        ensure_recbole_venv()

    data = load_log(args.data, args.format)
    if args.day_resolution:
        data = day_resolution(data)
    split_cfg = SplitConfig()
    split = split_cfg.apply(data.log)
    cfg0 = train_config(args, args.seeds[0])
    points = test_points(
        data.log, split, cfg0.window_len, cfg0.horizon_seconds, cfg0.return_gap_seconds
    )
    meta = {
        "data": str(args.data),
        **({"day_resolution": True} if args.day_resolution else {}),
        "n_events": len(data.log),
        "n_test_points": len(points),
        "split": {**asdict(split_cfg), **asdict(split)},
        "seeds": args.seeds,
        "seqcast_config": cfg0.to_dict(),
        "recbole": {
            "epochs": args.recbole_epochs,
            "stopping_step": args.recbole_patience,
            "train_batch_size": args.recbole_batch_size,
            "max_len": cfg0.window_len,
            "max_valid_points": args.max_valid,
            "hyper": json.loads(args.recbole_hyper),
        },
        "sknn": asdict(SknnConfig()),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    stderr(f"{len(data.log)} events, {len(points)} test points, split {split}")
    kept = earlier_runs(args.out, meta)
    if kept:
        stderr(f"{args.out}: keeping {len(kept)} earlier runs (same model and seed replaced)")

    def record(
        model: str, seed: int | None, metrics: dict[str, Any], seconds: float | None
    ) -> None:
        run = {"model": model, "seed": seed, "seconds": seconds, "metrics": metrics}
        # Re-read: another invocation may have written runs to the same directory meanwhile.
        write_results(args.out, meta, merge_runs(earlier_runs(args.out, meta), run))
        took = "" if seconds is None else f"{seconds:.0f}s "
        stderr(f"  {model} (seed {seed}): {took}{one_line(metrics)}")

    if "sknn" in wanted:
        stderr("sknn: V-SkNN on the sessions before the test cutoff (deterministic: one run)")
        started = time.perf_counter()
        before_test = data.log.take(data.log.ts < split.test_cutoff)
        result = evaluate_sknn(
            before_test,
            data.log,
            points,
            recbole_data.item_categories(before_test),
            len(data.log.category_ids),
        )
        record("V-SkNN", None, as_heads(result), time.perf_counter() - started)

    for seed in args.seeds:
        work = args.out / "work" / f"seed{seed}"
        if wanted & {"seqcast", "baselines"}:
            stderr(f"[seed {seed}] seqcast: train, export, evaluate")
            cfg = train_config(args, seed)
            model_metrics, baseline_metrics, seconds = run_seqcast(
                data, cfg, split_cfg, work / "seqcast", "baselines" in wanted
            )
            if "seqcast" in wanted:
                record("seqcast", seed, model_metrics, seconds)
            for name, m in baseline_metrics.items():
                record(f"baseline:{name}", seed, m, None)
        recbole_models = [m for m in RECBOLE_MODELS if m in wanted]
        if recbole_models:
            rb_dir = work / "recbole"
            counts = recbole_data.export(
                data.log, split, points, rb_dir, cfg0.window_len, args.max_valid, seed
            )
            stderr(f"[seed {seed}] RecBole data: {counts}")
            for name in recbole_models:
                stderr(f"[seed {seed}] RecBole {name}")
                metrics, seconds = run_recbole(name, rb_dir, seed, args, cfg0.window_len)
                record(f"RecBole {name}", seed, metrics, seconds)
    results = write_results(args.out, meta, earlier_runs(args.out, meta))
    stderr(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return results


def one_line(metrics: dict[str, Any]) -> str:
    parts = []
    for label, head, key in COLUMNS:
        value = lookup(metrics, head, key)
        if value is not None:
            parts.append(f"{label} {value:.4f}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
