"""Evaluation at a large catalog: points/s and peak RSS of each scorer, two code trees side
by side.

    python bench/eval_scale.py --artifact DIR [--before OTHER_TREE] [--catalog 2000000]
        [--users 40] [--points 256] [--chunk 64]

The log is synthetic shoppers (`model.synth.generate`, ids in the demo model's vocabulary:
`seqcast train-demo --out DIR` makes the artifact) whose item id table is padded with ids no
event touches up to --catalog codes, so every scorer ranks each target among that many
codes. Each scorer (the exported model through ONNX Runtime, popularity, markov, last) is
fitted and scored on a seeded sample of --points test points in its own process, once with
this tree's `model` package and once with --before's (a checkout of another commit: `git
archive COMMIT | tar -x -C DIR`), alternating, so the two trees share the machine's load.
Prints one JSON line per run and a Markdown table: points/s, peak RSS (ru_maxrss) and the
RSS the process had before scoring, and the item Recall@20 / NDCG@10 (equal in both trees
when the ranking is exact).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCORERS = ("model", "popularity", "markov", "last")


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One scorer, fitted and scored in this process (the tree is what PYTHONPATH says)."""
    import numpy as np

    import model
    from model.artifact import load_artifact
    from model.baselines.registry import Fitting, fit_baseline
    from model.evaluation.network import onnx_scorer
    from model.evaluation.protocol import Horizon
    from model.evaluation.scoring import score_points
    from model.sequences import TimeSplit, test_points
    from model.synth import generate

    log = generate(args.users, seed=1)
    pad = np.array([f"catalog-{k}" for k in range(args.catalog - len(log.item_ids))],
                   dtype=object)
    log = replace(log, item_ids=np.concatenate([log.item_ids, pad]))
    split = TimeSplit.by_fraction(log, 0.2, 0.1)
    artifact = load_artifact(args.artifact)
    m = artifact.manifest
    h = Horizon(m.features.window_len, m.horizon_seconds, m.return_gap_seconds,
                m.features.tz_offset_seconds)
    points = test_points(log, split, h.window_len, h.horizon, h.return_gap)
    points = points.sample(args.points, 0)
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    scorer = (onnx_scorer(artifact) if args.worker == "model"
              else fit_baseline(args.worker, Fitting(log, split, h)))
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = score_points(scorer, log, points, chunk_size=args.chunk)
    seconds = time.perf_counter() - t0
    item = result["next_item"]
    return {
        "tree": str(Path(model.__file__).parents[1]),
        "scorer": args.worker,
        "catalog": len(log.item_ids),
        "points": len(points),
        "chunk": args.chunk,
        "fit_seconds": round(fit_seconds, 2),
        "score_seconds": round(seconds, 2),
        "points_per_s": round(len(points) / seconds, 1),
        "rss_before_scoring_mib": round(rss_before),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "item_recall@20": item["recall@20"],
        "item_ndcg@10": item["ndcg@10"],
    }


def run(tree: Path, scorer: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--worker", scorer, "--artifact", str(args.artifact),
            "--catalog", str(args.catalog), "--users", str(args.users),
            "--points", str(args.points), "--chunk", str(args.chunk)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--before", type=Path, help="another tree to measure side by side")
    parser.add_argument("--catalog", type=int, default=2_000_000)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--worker", choices=SCORERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    trees = {"after": ROOT, **({"before": args.before} if args.before else {})}
    rows = []
    for scorer in SCORERS:
        got = {side: run(tree, scorer, args) for side, tree in reversed(trees.items())}
        rows.append((scorer, got))
    sides = list(reversed(trees))
    both = len(sides) == 2
    head = ["scorer", *(f"{s} {what}" for s in sides for what in ("points/s", "peak RSS MiB")),
            "RSS before scoring MiB", *(["after / before points/s"] if both else [])]
    print("\n| " + " | ".join(head) + " |\n|---|" + "---:|" * (len(head) - 1))
    for scorer, got in rows:
        measured = (f"{got[s][k]:,}" for s in sides for k in ("points_per_s", "peak_rss_mib"))
        cells = [scorer, *measured, f"{got['after']['rss_before_scoring_mib']:,}"]
        if both:
            cells.append(f"{got['after']['points_per_s'] / got['before']['points_per_s']:.2f}")
        print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
