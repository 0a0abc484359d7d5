"""Side-by-side A/B of two source trees of the service, interleaved in one run.

    python bench/ab_service.py --tree base=/tmp/ab/base --tree new=. --rounds 5
    python bench/ab_service.py --tree base=/tmp/ab/base --tree new=. \
        --artifact-of base=/tmp/old-artifact --artifact NEW_ARTIFACT   # schemas differ

Each tree (a directory holding `app/` and `model/`) is served by `seqcast serve` with
`PYTHONPATH=<tree>` on one shared private redis-server, each with its own key prefix and
its own seeded users. Then `wrk` drives the same route on each service in turn, round after
round (A, B, A, B, ...), so both see the same neighbours on a shared machine. Printed per
tree: the median over rounds of req/s, p50, p99 and server CPU ms per request, and the
ratio to the first tree. Uses bench/load.py's process, seeding and wrk helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402  (bench/load.py, a sibling script)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", action="append", required=True, metavar="NAME=DIR",
                   help="a source tree to serve (twice or more)")
    p.add_argument("--artifact", type=Path, default=load.ROOT / "artifacts" / "demo")
    p.add_argument("--artifact-of", action="append", default=[], metavar="NAME=DIR",
                   help="another artifact for one tree (the same model in the layout that "
                        "tree's build reads)")
    p.add_argument("--kind", choices=["prediction", "events"], default="prediction")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--env", action="append", default=[], metavar="NAME=NAME=VALUE",
                   help="extra environment for one tree's service, e.g. base=SEQCAST_X=1")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on kill
    trees = dict(t.split("=", 1) for t in args.tree)
    envs: dict[str, dict[str, str]] = {name: {} for name in trees}
    for spec in args.env:
        name, pair = spec.split("=", 1)
        key, value = pair.split("=", 1)
        envs[name][key] = value
    artifacts = {name: args.artifact for name in trees}
    artifacts.update((name, Path(d)) for name, d in (a.split("=", 1) for a in args.artifact_of))
    workload = load.make_workload(args.artifact, args.users, 0)
    script = load.wrk_script(args.kind, workload, {})
    path = "/v1/events" if args.kind == "events" else "/"
    runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="seqcast-ab-") as tmp_name, \
            contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        redis_url = stack.enter_context(load.redis_server(tmp))
        services = {}
        for i, (name, tree) in enumerate(trees.items()):
            # PYTHONSAFEPATH: `python -m` must not put the working directory before the tree.
            env = {"PYTHONPATH": str(Path(tree).resolve()), "PYTHONSAFEPATH": "1",
                   "SEQCAST_REDIS_KEY_PREFIX": f"ab{i}", **envs[name]}
            sub = tmp / name
            sub.mkdir()
            services[name] = stack.enter_context(
                load.seqcast_service(artifacts[name], redis_url, args.workers, sub, env))
            load.seed_windows(services[name][0], {}, workload, 0)
        for r in range(args.rounds):
            for name, (url, pgid) in services.items():
                before = load.group_cpu_seconds(pgid)
                n, errors, seconds, p50, p99 = load.run_wrk(
                    url, path, script, args.clients, args.duration, tmp)
                cpu_ms = (load.group_cpu_seconds(pgid) - before) * 1000 / max(1, n)
                if errors:
                    raise SystemExit(f"{name}: {errors} errors")
                runs[name].append((n / seconds, p50 * 1e3, p99 * 1e3, cpu_ms))
                load.progress(f"round {r + 1} {name:<10} {n / seconds:8.0f}/s  p50 "
                              f"{p50 * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms  CPU {cpu_ms:.3f} ms")
    first = next(iter(runs))
    medians = {name: [statistics.median(col) for col in zip(*rows, strict=True)]
               for name, rows in runs.items()}
    print(f"{args.kind}, workers={args.workers}, clients={args.clients}, "
          f"{args.rounds} rounds x {args.duration:g} s, medians (ratio to {first})")
    print("| tree | req/s | p50 ms | p99 ms | server CPU ms/req |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, m in medians.items():
        base = medians[first]
        cells = [f"{v:,.3f} ({v / b:.2f}x)" if name != first else f"{v:,.3f}"
                 for v, b in zip(m, base, strict=True)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps({"args": vars(args) | {"artifact": str(args.artifact)}, "runs": runs},
                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
