"""Training throughput of a preset on this machine: training events per second.

    python bench/train_throughput.py [--preset default] [--epochs 2] [--threads N] [KEY=VALUE ...]

Trains on ../shared/datasets/taobao_users when present (else a synthetic log) for a few
epochs with early stopping off, and prints one JSON line: events/s of each epoch (every
non-padding event of a training window counts once; per-batch featurization, forward,
backward and optimizer step included; validation excluded) and the best of them, the same
per second of this process's CPU time (what a machine shared with other jobs still tells:
with --threads 1 it is the one-core rate), and the per-head validation loss of the best
epoch, to weigh speed against quality.
KEY=VALUE overrides TrainConfig fields, e.g. d_model=48 item_loss=full.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import torch

from model.data import load_log
from model.sequences import SplitConfig
from model.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
TAOBAO = ROOT.parent / "shared" / "datasets" / "taobao_users" / "UserBehavior.csv"


def _overrides(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs, values as strings: TrainConfig.preset validates and coerces them."""
    return dict(pair.partition("=")[::2] for pair in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--patience", type=int, default=0, help="early stopping (0: off)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--synthetic-users", type=int, default=800)
    parser.add_argument("overrides", nargs="*", help="TrainConfig KEY=VALUE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    if TAOBAO.is_file():
        data = load_log(TAOBAO, "taobao", progress=False)
        source = "taobao_users"
    else:
        import tempfile

        from model.synth import write_csv

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "synthetic.csv"
            write_csv(csv, args.synthetic_users, 0)
            data = load_log(csv, "taobao", progress=False)
        source = f"synthetic ({args.synthetic_users} users)"
    split = SplitConfig().apply(data.log)  # the trainer's default split
    cfg = TrainConfig.preset(
        args.preset,
        max_epochs=args.epochs,
        patience=args.patience or args.epochs + 1,
        **_overrides(args.overrides),
    )
    t0 = time.perf_counter()
    trained = fit(cfg, data.log, split, tz_offset_seconds=data.tz_offset_seconds)
    rates = [round(h["events_per_s"]) for h in trained.history]
    per_cpu = [round(h["train_events"] / h["cpu_seconds"]) for h in trained.history]
    best = min(trained.history, key=lambda h: h["val_total"])
    print(
        json.dumps(
            {
                "bench": "train_throughput",
                "preset": args.preset,
                "overrides": args.overrides,
                "data": source,
                "train_events": trained.stats["train_events"],
                "parameters": trained.stats["parameters"],
                "epochs": len(rates),
                "events_per_s": rates,
                "best_events_per_s": max(rates),
                "events_per_cpu_s": per_cpu,
                "best_epoch": best["epoch"],
                "val_loss": {k: round(v, 4) for k, v in best["val_loss"].items()},
                "wall_s": round(time.perf_counter() - t0, 1),
                "torch_threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
