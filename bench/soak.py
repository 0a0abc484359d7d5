"""Soak benchmark: a steady open-loop rate of mixed traffic for a long time, bounded.

    python bench/soak.py                          # 30 minutes at 200 requests/s
    python bench/soak.py --minutes 5 --bucket-seconds 30 --out docs/soak

Starts a private redis-server and `seqcast serve` (loopback only, as bench/load.py does),
seeds --users windows, then sends requests on a fixed schedule (--rate per second, whatever
the answers do: an open loop, so a slow answer delays nothing that follows and its wait
counts in its latency): a share --predict-share of GET predictions, the rest POST events
(one event each, the user's window rolling over). Latency is measured from each request's
scheduled time. Per bucket of --bucket-seconds it records the requests, errors, p50 and p99
and the resident memory of the service's processes and of redis-server. Flat memory and a
stable p99 are the bar: the windows are bounded per user and the users are a fixed set, so
nothing should grow after the first bucket.

Writes OUT/soak.json, OUT/soak.md (a table) and OUT/soak.png (memory and latency against
time); stops by itself after --minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402  (bench/load.py, a sibling script)

MAX_IN_FLIGHT = 512  # beyond this many unanswered requests the service is failing: stop


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--artifact", type=Path, default=load.ROOT / "artifacts" / "demo")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second, in all")
    p.add_argument("--predict-share", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--bucket-seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("soak-out"))
    return p.parse_args(argv)


@dataclass
class Bucket:
    """What happened in one interval of the run."""

    start_s: float
    requests: int = 0
    errors: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    service_rss_mb: float = float("nan")
    redis_rss_mb: float = float("nan")
    latencies: list[float] = field(default_factory=list, repr=False)

    def sample_memory(self, service_pgid: int, redis_pgid: int) -> None:
        """Resident memory at the bucket's end."""
        self.service_rss_mb = group_rss_mb(service_pgid)
        self.redis_rss_mb = group_rss_mb(redis_pgid)

    def finish(self) -> None:
        """Percentiles once every request scheduled in the bucket has its answer."""
        if self.latencies:
            ms = np.asarray(self.latencies) * 1000
            self.p50_ms, self.p99_ms = (float(v) for v in np.percentile(ms, [50, 99]))

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        del d["latencies"]
        return d


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every live process in a process group, in MiB (Linux /proc)."""
    pages = 0
    for proc, _ in load.group_processes(pgid):
        try:
            pages += int((proc / "statm").read_text().split()[1])
        except OSError:
            continue  # the process ended between the two reads
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def soak(url: str, workload: load.Workload, args: argparse.Namespace,
               service_pgid: int, redis_pgid: int) -> list[Bucket]:
    """Send the schedule, bucket the answers; returns the closed buckets."""
    rng = random.Random(args.seed)
    n = int(args.minutes * 60 * args.rate)
    buckets = [Bucket(0.0)]
    in_flight: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        t0 = time.perf_counter()

        async def one(i: int, predict: bool, scheduled: float, bucket: Bucket) -> None:
            try:
                if predict:
                    response = await client.get(load.prediction_path(workload, i))
                else:
                    response = await client.post(
                        "/v1/events", content=load.event_body(workload, i),
                        headers={"content-type": "application/json"})
                ok = response.status_code < 400
            except httpx.HTTPError:
                ok = False
            bucket.requests += 1
            bucket.errors += not ok
            bucket.latencies.append(time.perf_counter() - scheduled)

        for i in range(n):
            scheduled = t0 + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elapsed = scheduled - t0
            if elapsed >= len(buckets) * args.bucket_seconds:
                buckets[-1].sample_memory(service_pgid, redis_pgid)
                load.progress(bucket_line(buckets[-1], len(buckets)))
                buckets.append(Bucket(len(buckets) * args.bucket_seconds))
            if len(in_flight) >= MAX_IN_FLIGHT:
                raise SystemExit(f"{len(in_flight)} requests unanswered after {elapsed:.0f} s: "
                                 f"the service does not keep up with {args.rate:g}/s")
            predict = rng.random() < args.predict_share
            task = asyncio.create_task(one(i, predict, scheduled, buckets[-1]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    buckets[-1].sample_memory(service_pgid, redis_pgid)
    for b in buckets:
        b.finish()
    return buckets


def bucket_line(b: Bucket, k: int) -> str:
    """Progress at a bucket's end (its latest answers may still be on their way)."""
    median = float(np.median(b.latencies)) * 1000 if b.latencies else float("nan")
    return (f"bucket {k} ({b.start_s:.0f} s): {b.requests} answered, {b.errors} errors, "
            f"p50 {median:.2f} ms, service {b.service_rss_mb:.0f} MiB, "
            f"redis {b.redis_rss_mb:.0f} MiB")


def markdown(buckets: list[Bucket]) -> str:
    rows = ["| from s | requests | errors | p50 ms | p99 ms | service RSS MiB | redis RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {b.start_s:.0f} | {b.requests} | {b.errors} | {b.p50_ms:.2f} | "
             f"{b.p99_ms:.2f} | {b.service_rss_mb:.1f} | {b.redis_rss_mb:.1f} |"
             for b in buckets]
    return "\n".join(rows)


def plot(buckets: list[Bucket], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    minutes = [b.start_s / 60 for b in buckets]
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    mem, lat = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    mem.plot(minutes, [b.service_rss_mb for b in buckets], "-o", label="seqcast serve")
    mem.plot(minutes, [b.redis_rss_mb for b in buckets], "-s", label="redis-server")
    mem.set_ylabel("resident memory (MiB)")
    mem.set_ylim(bottom=0)
    lat.plot(minutes, [b.p50_ms for b in buckets], "-o", label="p50")
    lat.plot(minutes, [b.p99_ms for b in buckets], "-s", label="p99")
    lat.set_ylabel("latency from the scheduled send (ms)")
    lat.set_ylim(bottom=0)
    for ax in (mem, lat):
        ax.set_xlabel("minutes into the run")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    artifact = load.ensure_artifact(args.artifact, users=300)
    workload = load.make_workload(artifact, args.users, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seqcast-soak-") as tmp_dir:
        tmp = Path(tmp_dir)
        with load.redis_server(tmp) as redis_url:
            # started in its own session by load.running: its pid is its process group
            redis_pgid = int(redis.Redis.from_url(redis_url).info("server")["process_id"])
            with load.seqcast_service(artifact, redis_url, args.workers, tmp, {}) as (url, pid):
                load.seed_windows(url, {}, workload, args.seed)
                load.progress(f"soak: {args.rate:g} requests/s for {args.minutes:g} min, "
                              f"{args.predict_share:.0%} predictions")
                buckets = asyncio.run(soak(url, workload, args, pid, redis_pgid))
    title = (f"seqcast soak: {args.rate:g} req/s ({args.predict_share:.0%} GET prediction), "
             f"{args.workers} worker(s), {args.users} users")
    result = {"args": {k: str(v) for k, v in vars(args).items()},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "buckets": [b.to_dict() for b in buckets]}
    (args.out / "soak.json").write_text(json.dumps(result, indent=2))
    (args.out / "soak.md").write_text(markdown(buckets) + "\n")
    plot(buckets, args.out / "soak.png", title)
    print(markdown(buckets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
