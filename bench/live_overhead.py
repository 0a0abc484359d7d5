"""What the live record adds to a served prediction: the after-answer bookkeeping per request.

    python bench/live_overhead.py --artifact artifacts/demo

`Serving._follow` runs after every answer: it counts the scored window for the drift gauges
and draws the samples (live record, shadow). Timed here in-process on one 20-event window,
at LIVE_SAMPLE_SHARE 0 and 0.1, with the Redis write of a sampled prediction left out (it
runs in a background task after the answer); the model call on the same window is printed
beside it for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from app.inference.predictor import Predictor
from app.inference.serving import Serving
from app.metrics import Metrics
from model.features import Event


def per_call_us(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


async def run(artifact: Path, calls: int, rounds: int) -> None:
    metrics = Metrics(CollectorRegistry())
    predictor = Predictor(artifact, metrics=metrics)
    await predictor.start()
    current = predictor.require()
    ids = current.artifact.items.ids
    window = [Event(ids[i % len(ids)], None, 0, 1e9 + 30 * i) for i in range(20)]
    (answer,) = await predictor.predict([window])
    for share in (0.0, 0.1):
        serving = Serving(predictor, None, store=None,  # type: ignore[arg-type]
                          metrics=metrics, sample_share=share, rng=random.Random(0))
        serving._spawn = lambda work: work.close()  # type: ignore[method-assign]
        times = [per_call_us(lambda s=serving: s._follow(["u"], [window], [predictor],
                                                         [answer]), calls)
                 for _ in range(rounds)]
        print(f"LIVE_SAMPLE_SHARE={share}: after-answer bookkeeping "
              f"{statistics.median(times):.1f} us per request (median of {rounds} rounds)")
    model = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(200):
            await predictor.predict([window])
        model.append((time.perf_counter() - start) / 200 * 1e6)
    print(f"model call on the same window: {statistics.median(model):.0f} us")
    await predictor.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", type=Path, default=Path("artifacts/demo"))
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    asyncio.run(run(args.artifact, args.calls, args.rounds))


if __name__ == "__main__":
    main()
