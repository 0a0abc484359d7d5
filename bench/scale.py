"""Cost against log and catalog size: synthetic logs trained, evaluated and served.

    python bench/scale.py [--points 1M:20k,2M:20k,2M:500k] [--timeout 3600]

For each point EVENTS:ITEMS, `scale_log.write_log` writes a synthetic Taobao-layout log
(reused from --work when there), then, each in its own process:

    seqcast train --data LOG --format taobao --out DIR --epochs 1 --no-baselines
                  --test-fraction 0.02 [--train-args ...]
        peak RSS (wait4's ru_maxrss), wall seconds, and from the artifact's metrics.json
        the load seconds, the epoch's training events/s and the evaluation's points/s
    python bench/load.py --artifact DIR --workers W --clients 16
        GET prediction p50 with one client and predictions/s with 16 clients

A point that fails or passes --timeout is recorded as such. Results accumulate by point in
--results (JSON); --md gets its "## Scale runs" section (re)written from them (the rest
of the file is kept) and --png a plot of the costs against catalog size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scale_log import count, write_log
from scale_report import plot, write_section

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
PREDICTION = "GET /v1/users/{id}/prediction"


def progress(message: str) -> None:
    sys.stderr.write(f"[scale] {message}\n")
    sys.stderr.flush()


def shown(argv: list[str]) -> str:
    """argv as a shell line, paths under the repository relative to it."""
    root = f"{ROOT}/"
    return shlex.join(a[len(root):] if a.startswith(root) else a for a in argv)


def measured(argv: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """Run argv (output to log) in its own process group: its status, wall seconds and peak
    RSS; past timeout the group is killed and the status is "timeout"."""
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    rc = proc.returncode
    return {
        "status": "timeout" if expired.is_set() else ("ok" if rc == 0 else f"failed ({rc})"),
        "seconds": round(time.monotonic() - t0, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),  # ru_maxrss is in KiB on Linux
        "log": shown([str(log)]),
    }


def train(log: Path, out: Path, work: Path, label: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, "-m", "model.dispatch", "train", "--data", str(log),
            "--format", "taobao", "--out", str(out), "--epochs", "1", "--no-baselines",
            "--test-fraction", "0.02", *shlex.split(args.train_args)]
    run = measured(argv, work / f"train-{label}.log", args.timeout)
    run["command"] = shown(["seqcast", *argv[3:]])
    if run["status"] != "ok":
        return {**run, **from_log((work / f"train-{label}.log").read_text(errors="replace"))}
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    epoch = metrics["training"]["history"][0]
    model = metrics["model"]
    return {
        **run,
        "load_s": metrics["data"]["load_seconds"],
        "n_events": metrics["data"]["n_events"],
        "n_items_seen": metrics["data"]["n_items"],
        "train_events_per_s": round(epoch["events_per_s"], 1),
        "train_events_per_s_from": "metrics.json",
        "epoch_s": round(epoch["seconds"], 1),
        "test_points": metrics["n_test_points"],
        "eval_points_per_s": round(metrics["n_test_points"] / model["seconds"], 1),
        "item_ndcg@10": model.get("next_item", {}).get("ndcg@10"),
    }


def from_log(text: str) -> dict[str, Any]:
    """What a run that did not finish still tells: the epoch's events/s from its log line,
    else the last rate the training bar showed (its postfix `events_s=18,400`, in the lines
    `model.progress` logs a minute apart where stderr is a file, as here)."""
    epoch = re.findall(r"epoch 1: ([0-9.]+) events/s", text)
    if epoch:
        return {"train_events_per_s": float(epoch[-1]), "train_events_per_s_from": "log"}
    # the digits in groups of three: not the ", " before the postfix's next key
    bar = re.findall(r"events_s=([0-9]+(?:,[0-9]{3})*)", text)
    if bar:
        return {"train_events_per_s": float(bar[-1].replace(",", "")),
                "train_events_per_s_from": "progress bar, epoch unfinished"}
    return {}


def serve(out: Path, work: Path, label: str, args: argparse.Namespace) -> dict[str, Any]:
    result = work / f"load-{label}.json"
    argv = [sys.executable, str(BENCH / "load.py"), "--artifact", str(out),
            "--workers", str(args.serve_workers), "--clients", "16",
            "--duration", str(args.serve_duration), "--json-out", str(result)]
    run = measured(argv, work / f"load-{label}.log", args.timeout)
    run["command"] = shown(["python", "bench/load.py", *argv[2:]])
    if run["status"] != "ok":
        return run
    rows = [r for r in json.loads(result.read_text())["results"] if r["target"] == PREDICTION]
    one = next(r for r in rows if r["clients"] == 1)
    many = next(r for r in rows if r["clients"] == 16)
    return {**run, "p50_ms": one["p50_ms"], "predictions_per_s": many["per_second"]}


def run_point(point: str, args: argparse.Namespace) -> dict[str, Any]:
    events, items = (count(part) for part in point.split(":"))
    label = point.replace(":", "-")
    work: Path = args.work
    log = work / f"scale-{label}-seed{args.seed}.csv"
    t0 = time.monotonic()
    if not log.exists():
        write_log(log.with_suffix(".part"), events, items, args.seed).rename(log)
    result: dict[str, Any] = {
        "point": point, "events": events, "items": items, "seed": args.seed,
        "generate_s": round(time.monotonic() - t0, 1),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    out = work / f"artifact-{label}"
    progress(f"{point}: training")
    result["train"] = train(log, out, work, label, args)
    if result["train"]["status"] == "ok":
        progress(f"{point}: serving")
        result["serve"] = serve(out, work, label, args)
    return result


def machine() -> str:
    with open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
    gpu = "a GPU" if Path("/dev/nvidia0").exists() else "no GPU"
    return f"{os.cpu_count()}-core CPU, {kib / 2**20:.0f} GB, {gpu} ({platform.platform()})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--points", default="1M:20k,2M:20k,2M:500k",
                   help="comma list of EVENTS:ITEMS (k, M suffixes)")
    p.add_argument("--work", type=Path, default=ROOT / "artifacts" / "scale",
                   help="logs, artifacts and run logs")
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "benchmarks-scale.json")
    p.add_argument("--md", type=Path, default=ROOT / "docs" / "benchmarks-scale.md")
    p.add_argument("--png", type=Path, default=ROOT / "docs" / "benchmarks-scale.png")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    p.add_argument("--train-args", default="", help="more `seqcast train` options")
    p.add_argument("--serve-workers", type=int, default=2)
    p.add_argument("--serve-duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    known = json.loads(args.results.read_text()) if args.results.exists() else {}
    command = shown(["python", "bench/scale.py", *(sys.argv[1:] if argv is None else argv)])
    for point in args.points.split(","):
        result = run_point(point, args)
        known[point] = {**result, "command": command, "machine": machine()}
        args.results.write_text(json.dumps(known, indent=2) + "\n")
        write_section(args.md, known, args.png)
        plot(known, args.png)
        progress(f"{point}: {json.dumps(result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
