"""Side-by-side timing of ONNX graphs of one model: for justifying a change to the exported graph.

    python bench/onnx_ab.py --artifact artifacts/demo --onnx old=old.onnx --onnx new=new.onnx

Every graph gets the same featurized windows (the artifact's vocabulary, full-length windows
of known ids, batch 1 and --batch), one ONNX Runtime session each with one intra-op thread
(the service's default), and is run in turn, round after round, so all of them see the same
neighbours on a shared machine. Prints the median time per call of each graph, its ratio to
the first, and the largest output difference from the first (a graph change must not move the
answers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.artifact import load_artifact  # noqa: E402
from model.features import Event, featurize_windows  # noqa: E402


def windows(artifact_dir: Path, batch: int) -> dict[str, np.ndarray]:
    a = load_artifact(artifact_dir)
    n = a.manifest.features.window_len
    items, cats = a.items.ids, a.categories.ids
    rows = [
        [Event(items[(7 * i + b) % len(items)], cats[(i + b) % len(cats)], i % 4,
               1.7e9 + 60.0 * i) for i in range(n)]
        for b in range(batch)
    ]
    return featurize_windows(rows, a.manifest.features, a.items, a.categories)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifact", type=Path, required=True, help="for vocabularies and window")
    p.add_argument("--onnx", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--calls", type=int, default=50, help="calls per graph per round")
    args = p.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    graphs = {}
    for spec in args.onnx:
        name, _, path = spec.partition("=")
        graphs[name] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    print(f"| batch | {' | '.join(f'{n} us/call' for n in graphs)} | ratio to {next(iter(graphs))} "
          "| largest output difference |")
    print("|---:|" + "---:|" * (len(graphs) + 2))
    for batch in (1, args.batch):
        feeds = windows(args.artifact, batch)
        times: dict[str, list[float]] = {n: [] for n in graphs}
        outputs = {n: s.run(None, feeds) for n, s in graphs.items()}
        for _ in range(args.rounds):
            for name, session in graphs.items():
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    session.run(None, feeds)
                times[name].append((time.perf_counter() - t0) / args.calls * 1e6)
        medians = {n: float(np.median(t)) for n, t in times.items()}
        first = next(iter(graphs))
        diff = max(
            float(np.max(np.abs(a - b), initial=0.0))
            for n in graphs for a, b in zip(outputs[first], outputs[n], strict=True)
        )
        ratios = " / ".join(f"{medians[n] / medians[first]:.2f}" for n in graphs)
        cells = " | ".join(f"{medians[n]:,.0f}" for n in graphs)
        print(f"| {batch} | {cells} | {ratios} | {diff:.1e} |")


if __name__ == "__main__":
    main()
