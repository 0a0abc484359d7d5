"""What a pause between requests costs: featurize + ONNX Runtime call back to back, and
after a sleep of each --gaps microseconds.

    python bench/idle_penalty.py [--artifact artifacts/demo] [--calls 2000]

A lone client leaves the service idle between requests (the answer travels back, the next
request comes). If the call after a pause is slower than back to back, part of the
single-client latency is the machine (cores waking, caches refilling), not the service's
code. Prints one line per gap and a JSON line. Only the call is timed, not the sleep.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.inference.checks import check_windows  # noqa: E402
from model.artifact import load_artifact  # noqa: E402
from model.runtime import OnnxModel  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", type=Path, default=ROOT / "artifacts" / "demo")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--gaps", type=int, nargs="+", default=[0, 200, 500, 1000],
                   help="microseconds of sleep before each call")
    args = p.parse_args(argv)
    artifact = load_artifact(args.artifact)
    model = OnnxModel(artifact, intra_op_threads=1)  # the service's setting
    window = check_windows(artifact)[-1]  # a full window of known ids, every behavior
    n = len(window)
    for _ in range(200):
        model.score([window])
    medians = {}
    for gap in args.gaps:
        times = []
        for _ in range(args.calls):
            if gap:
                time.sleep(gap / 1e6)
            start = time.perf_counter()
            model.score([window])
            times.append(time.perf_counter() - start)
        medians[gap] = statistics.median(times) * 1e6
        ratio = medians[gap] / medians[args.gaps[0]]
        print(f"sleep {gap:5d} us before each call: median {medians[gap]:7.1f} us ({ratio:.2f}x)")
    print(json.dumps({"bench": "idle_penalty", "artifact": str(args.artifact), "window": n,
                      "median_us_by_gap_us": {str(k): round(v, 1) for k, v in medians.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
