"""Training cost against catalog size: training steps, and whole runs, over growing catalogs.

    python bench/train_scale.py steps [--catalogs 20000 500000] [--steps 20] [--preset default]
    python bench/train_scale.py memory [--events 2000000] [--users 20000] [--catalogs 20000]
    python bench/train_scale.py fit [--events 2000000] [--users 20000] [--catalogs 20000 500000]
                                    [--preset default] [--threads N]

`steps`: one network per catalog size (vocabulary rows), trained in one process by the real
loss and optimizer (`SeqNet.forward` with targets, `model.train.loop.Optimizer`) on the same
random batches (batch_size windows of window_len events, Zipf items, 1,024 sampled item
negatives from the Zipf proposal); the networks take steps in turn, so a load on the machine
falls on all of them alike. Prints the median step seconds and events/s of each, its ratio to
the first catalog's, and the process's peak RSS after each network's steps (cumulative: the
process holds every network, its tables and its optimizer's moments).

`memory`: bytes per event of the first catalog's synthetic log, as `load_log` leaves it and
once `model.train.dataset.prepare` (what `fit` trains on) is built: the arrays held
(tracemalloc, which counts NumPy's buffers; peak in brackets) and the RSS growth from just
before the load (torch and the trainer imported first).

`fit`: for each catalog size, a synthetic log in the Taobao CSV layout
(user,item,category,behavior,ts; Zipf-distributed items, 1.0 exponent, each item in one of
5,000 categories; pv/fav/cart/buy at 89/3/6/2 %; 9 days) is written to a temporary
directory and trained on in a child process, the children at the same time (one thread
each with --threads 1, so the machine's load falls on all alike): load_log,
the 2 % test / 20 % validation split, then `fit` with `--epochs 1` (validation and
calibration included; export, evaluation and baselines not).
Prints one JSON line per catalog and a markdown table: training events/s (the epoch's
`events_per_s`), its ratio to the first catalog's, seconds of load and fit, and the child's
peak RSS (os.wait4's ru_maxrss, so the loader, the training data and the model all count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T0 = 1_511_539_200  # 2017-11-25 00:00 +08:00 ... the 9 days of Taobao's log
SPAN = 9 * 86400
N_CATEGORIES = 5000
BEHAVIORS = np.array(["pv", "fav", "cart", "buy"])
BEHAVIOR_SHARES = [0.89, 0.03, 0.06, 0.02]


def write_log(path: Path, events: int, users: int, items: int, seed: int) -> None:
    """A synthetic Taobao-layout CSV, vectorized (2M rows in seconds)."""
    rng = np.random.default_rng(seed)
    item = rng.choice(items, size=events, p=_zipf(items))
    ids = rng.permutation(items) + 1  # popularity rank -> item id, so ids are not ranks
    category = (ids * 2654435761 % N_CATEGORIES) + 1  # one category per item
    columns = np.stack([
        rng.integers(1, users + 1, events).astype(str),
        ids[item].astype(str),
        category[item].astype(str),
        BEHAVIORS[rng.choice(4, size=events, p=BEHAVIOR_SHARES)],
        (T0 + rng.integers(0, SPAN, events)).astype(str),
    ], axis=1)
    np.savetxt(path, columns, fmt="%s", delimiter=",")


def child(csv: Path, preset: str) -> None:
    """Load and train one log; print the figures as one JSON line."""
    from model.data import load_log
    from model.sequences import SplitConfig
    from model.train import TrainConfig, fit

    t0 = time.perf_counter()
    data = load_log(csv, "taobao", progress=False)
    loaded = time.perf_counter() - t0
    split = SplitConfig(test_fraction=0.02).apply(data.log)
    cfg = TrainConfig.preset(preset, max_epochs=1)
    trained = fit(cfg, data.log, split, tz_offset_seconds=data.tz_offset_seconds,
                  progress=False)
    epoch = trained.history[0]
    print(json.dumps({
        "events": len(data.log),
        "items": trained.items.size,
        "load_s": round(loaded, 1),
        "fit_s": round(time.perf_counter() - t0 - loaded, 1),
        "train_events": epoch["train_events"],
        "events_per_s": round(epoch["events_per_s"], 1),
    }))


def steps(args: argparse.Namespace) -> list[dict[str, float]]:
    """Interleaved training steps of one network per catalog size (see the module doc)."""
    import resource

    import torch

    from model.net.network import SeqNet, Targets
    from model.train.config import TrainConfig
    from model.train.frequencies import Proposal
    from model.train.loop import Optimizer

    torch.set_num_threads(args.threads)
    cfg = TrainConfig.preset(args.preset)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    shape = (cfg.batch_size, cfg.window_len)
    runs = []
    for items in args.catalogs:
        torch.manual_seed(args.seed)
        net = SeqNet(cfg.net_config(items, N_CATEGORIES + 1, 19))
        zipf = rng.choice(items, size=200_000, p=_zipf(items))
        runs.append((items, net, Optimizer.of(net, cfg), Proposal(zipf, items, torch.device("cpu")),
                     Proposal(zipf % N_CATEGORIES, N_CATEGORIES + 1, torch.device("cpu"))))
    seconds: dict[int, list[float]] = {items: [] for items in args.catalogs}
    rss: dict[int, float] = {}
    for _ in range(args.steps):
        highs = (None, N_CATEGORIES + 1, 5, 19, 25, 8)
        for items, net, optimizer, item_q, category_q in runs:
            inputs = [torch.from_numpy(rng.choice(items, size=shape, p=_zipf(items)) + 1
                                       ).clamp(max=items - 1) if h is None
                      else torch.randint(1, h, shape, generator=gen) for h in highs]
            targets = Targets(torch.randint(0, 4, shape, generator=gen), inputs[1].roll(-1, 1),
                              inputs[0].roll(-1, 1), torch.randint(0, 2, shape, generator=gen),
                              torch.randint(0, 2, shape, generator=gen))
            t0 = time.perf_counter()
            losses = net(*inputs, targets, item_q.sample(cfg.n_negatives, gen),
                         category_q.sample(cfg.n_category_negatives, gen))
            optimizer.step(losses.sum(), net.parameters(), cfg.grad_clip)
            seconds[items].append(time.perf_counter() - t0)
            rss[items] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    first = float(np.median(seconds[args.catalogs[0]]))
    rows = []
    for items in args.catalogs:
        median = float(np.median(seconds[items]))
        rows.append({"catalog": items, "step_s": round(median, 3),
                     "events_per_s": round(cfg.batch_size * cfg.window_len / median, 1),
                     "vs_first": round(first / median, 2), "peak_rss_gb": round(rss[items], 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


_ZIPF: dict[int, np.ndarray] = {}


def _zipf(items: int) -> np.ndarray:
    """Zipf(1) probabilities over items rows, cached."""
    if items not in _ZIPF:
        weights = 1.0 / np.arange(1, items + 1)
        _ZIPF[items] = weights / weights.sum()
    return _ZIPF[items]


def memory(args: argparse.Namespace) -> None:
    """Bytes per event held after the load and after `prepare` (see the module doc)."""
    import tracemalloc

    import model.train.loop  # noqa: F401 - torch and the trainer, before the baseline RSS
    from model.data import load_log
    from model.sequences import SplitConfig
    from model.train.config import TrainConfig
    from model.train.dataset import prepare

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "events.csv"
        write_log(csv, args.events, args.users, args.catalogs[0], args.seed)
        start = _rss()
        tracemalloc.start()
        data = load_log(csv, "taobao", progress=False)
        n = len(data.log)
        _report_memory("load_log", n, start)
        split = SplitConfig(test_fraction=0.02).apply(data.log)
        run = prepare(TrainConfig.preset(args.preset), data.log, split, data.tz_offset_seconds,
                      None)
        _report_memory("+ prepare", n, start)
        del run


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _report_memory(stage: str, n: int, start: int) -> None:
    import gc
    import tracemalloc

    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    print(json.dumps({"stage": stage, "events": n, "held_b_per_event": round(held / n, 1),
                      "peak_b_per_event": round(peak / n, 1),
                      "rss_b_per_event": round((_rss() - start) / n, 1)}), flush=True)


def fit_runs(args: argparse.Namespace) -> list[dict[str, float]]:
    """One child per catalog size, all at the same time (see the module doc)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for items in args.catalogs:
            csv = Path(tmp) / f"events_{items}.csv"
            write_log(csv, args.events, args.users, items, args.seed)
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            procs.append((items, subprocess.Popen(
                [sys.executable, __file__, "fit", "--child", str(csv), "--preset", args.preset],
                stdout=subprocess.PIPE, text=True, env=env,
            )))
        for items, proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            if status != 0:
                raise SystemExit(f"the {items}-item run failed ({status})")
            row = {"catalog": items, **json.loads(out.splitlines()[-1]),
                   "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def steps_table(rows: list[dict[str, float]]) -> str:
    lines = ["| catalog (rows) | median step s | events/s | vs first | peak RSS GB |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['catalog']:,} | {r['step_s']} | {r['events_per_s']:,.0f} | "
              f"{r['vs_first']:.2f}x | {r['peak_rss_gb']} |" for r in rows]
    return "\n".join(lines)


def fit_table(rows: list[dict[str, float]]) -> str:
    first = rows[0]["events_per_s"]
    lines = ["| catalog (items) | vocabulary rows | events/s | vs first | load s | fit s | "
             "peak RSS GB |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['catalog']:,} | {r['items']:,} | {r['events_per_s']:,.0f} | "
              f"{r['events_per_s'] / first:.2f}x | {r['load_s']} | {r['fit_s']} | "
              f"{r['peak_rss_gb']} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("steps", "memory", "fit"), nargs="?", default="steps")
    p.add_argument("--steps", type=int, default=20, help="steps per network (steps mode)")
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--catalogs", type=int, nargs="+", default=[20_000, 500_000])
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.child, args.preset)
        return
    print(f"{platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    if args.mode == "steps":
        print(steps_table(steps(args)))
    elif args.mode == "memory":
        memory(args)
    else:
        print(fit_table(fit_runs(args)))


if __name__ == "__main__":
    main()
