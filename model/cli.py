"""The trainer's subcommands of `seqcast` (`model.dispatch` routes them here): synth, train,
train-demo, evaluate. Each imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.dispatch import COMMANDS
from model.errors import SeqcastError
from model.presets import PRESETS
from model.sequences import SplitConfig

DEMO_USERS = 400
DEMO_EVAL_SAMPLE = 2000  # of its ~9,000 test points: the model card's figures in seconds


def _fraction(text: str) -> float:
    """A share of the log's time span: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _positive(text: str) -> int:
    """A count: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--eval-sample",
        type=_positive,
        metavar="N",
        help="score a seeded sample of N test points when there are more (default: all; "
        "the report states the sample)",
    )
    p.add_argument(
        "--eval-seed", type=int, default=0, help="seed of --eval-sample (default %(default)s)"
    )


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="event log: CSV or Parquet file")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "taobao", "rees46", "retailrocket", "csv", "parquet"],
        help="log schema (auto: sniffed from the header and extension)",
    )
    p.add_argument(
        "--columns",
        help="for csv/parquet: canonical=file column pairs, "
        "e.g. user=uid,item=sku,category=cat,behavior=action,timestamp=ts",
    )
    p.add_argument(
        "--behavior-map",
        help="for csv/parquet: file value=behavior pairs (view|fav|cart|buy), "
        "e.g. click=view,order=buy",
    )
    p.add_argument(
        "--tz-offset-hours",
        type=float,
        help="local time of the shoppers, for hour-of-day features (default: per format)",
    )
    p.add_argument(
        "--allow-unmapped",
        action="store_true",
        help="load a log even when most rows have behavior values the mapping does not "
        "know (they are dropped either way, and counted in the data report)",
    )


def _load(args: argparse.Namespace, progress: bool = True) -> Any:
    from model.data import load_log, parse_mapping

    return load_log(
        args.data,
        args.format,
        columns=parse_mapping(args.columns) if args.columns else None,
        behavior_map=parse_mapping(args.behavior_map) if args.behavior_map else None,
        tz_offset_seconds=None
        if args.tz_offset_hours is None
        else int(args.tz_offset_hours * 3600),
        allow_unmapped=args.allow_unmapped,
        progress=progress,
    )


def _train_config(args: argparse.Namespace) -> Any:
    """The preset with the command line's overrides; `--set` values stay strings for
    pydantic to coerce ("true", "1", "64", "1e-3"). Raises ConfigError naming the field."""
    from model.train.config import ConfigError, TrainConfig

    overrides: dict[str, Any] = {}
    for pair in args.set or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set {pair!r}: expected NAME=VALUE")
        overrides[name] = value
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.horizon_hours is not None:
        overrides["horizon_seconds"] = int(args.horizon_hours * 3600)
    if args.epochs is not None:
        overrides["max_epochs"] = args.epochs
    return TrainConfig.preset(args.preset, **overrides)


def cmd_synth(args: argparse.Namespace) -> int:
    from model.synth import write_csv

    write_csv(args.out, args.users, args.seed)
    logging.getLogger("seqcast").info("wrote %d synthetic shoppers to %s", args.users, args.out)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Under torchrun, every rank runs this; rank 0 alone logs, writes and prints."""
    from model.pipeline import train_artifact
    from model.train.distributed import Placement

    cfg = _train_config(args)
    place = Placement.setup(cfg.device)
    if not place.leader:
        logging.getLogger().setLevel(logging.WARNING)
    data = _load(args, progress=place.leader)
    evaluation = train_artifact(
        data,
        args.out,
        cfg,
        split_cfg=SplitConfig(args.test_fraction, args.val_fraction),
        init_from=args.init_from,
        baselines=not args.no_baselines,
        int8=args.int8,
        eval_sample=args.eval_sample,
        eval_seed=args.eval_seed,
        place=place,
    )
    if evaluation is None:
        return 0
    logging.getLogger("seqcast").info(
        "artifact in %s; report in %s", args.out, args.out / "report" / "report.md"
    )
    json.dump(evaluation["model"], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from model.artifact import load_artifact
    from model.pipeline import evaluate_artifact

    artifact = load_artifact(args.artifact)  # a bad artifact stops before the log is read
    evaluation = evaluate_artifact(
        artifact,
        _load(args),
        baselines=not args.no_baselines,
        eval_sample=args.eval_sample,
        eval_seed=args.eval_seed,
    )
    json.dump(evaluation, sys.stdout, indent=None if args.json else 2)
    sys.stdout.write("\n")
    return 0


def cmd_train_demo(args: argparse.Namespace) -> int:
    import torch

    from model.pipeline import build_demo_artifact

    # The tiny model gains nothing from a second thread, and on a busy 2-core machine the
    # threads' spin-waits made the demo 3.5x slower (217 s against 61 s at load 7.5).
    torch.set_num_threads(1)
    logging.getLogger("seqcast").info(
        "training a demo model on %d synthetic shoppers into %s",
        args.users,
        args.out,
    )
    build_demo_artifact(args.out, users=args.users, preset="demo", progress=True,
                        eval_sample=DEMO_EVAL_SAMPLE)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqcast")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str) -> argparse.ArgumentParser:
        """A subcommand described by its line in model.dispatch.COMMANDS (`seqcast --help`)."""
        summary = COMMANDS[name][1]
        return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:])

    p = command("synth")
    p.add_argument("--users", type=_positive, required=True, help="number of shoppers")
    p.add_argument("--out", type=Path, required=True, help="CSV file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.set_defaults(run=cmd_synth)

    p = command("train")
    _add_data_options(p)
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    p.add_argument(
        "--preset",
        default="default",
        choices=list(PRESETS),
        help="model size: tiny (seconds on a laptop core: smoke runs), demo (tiny, stopped "
        "sooner: what `seqcast serve` trains on a first start) or default (default "
        "%(default)s)",
    )
    p.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="override a TrainConfig field"
    )
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--horizon-hours", type=float, help="purchase/return horizon (default 24)")
    p.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    p.add_argument(
        "--test-fraction",
        type=_fraction,
        default=SplitConfig.test_fraction,
        help="share of the time span at its end held out for the test (default %(default)s)",
    )
    p.add_argument(
        "--val-fraction",
        type=_fraction,
        default=SplitConfig.val_fraction,
        help="share just before the test period for early stopping and calibration; longer "
        "than the horizon (default %(default)s)",
    )
    p.add_argument("--init-from", type=Path, help="warm-start from an earlier artifact directory")
    p.add_argument("--int8", action="store_true", help="also export an int8-quantized model")
    p.add_argument("--no-baselines", action="store_true", help="skip the baselines (faster)")
    _add_eval_options(p)
    p.set_defaults(run=cmd_train)

    p = command("evaluate")
    p.add_argument(
        "--artifact", type=Path, required=True, help="artifact directory `seqcast train` wrote"
    )
    _add_data_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object on one line")
    p.add_argument("--no-baselines", action="store_true", help="score the model alone (faster)")
    _add_eval_options(p)
    p.set_defaults(run=cmd_evaluate)

    p = command("train-demo")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    p.add_argument(
        "--users", type=_positive, default=DEMO_USERS,
        help="synthetic shoppers to train on (default %(default)s)",
    )
    p.set_defaults(run=cmd_train_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. Bad options, configuration, data and files end in one line on
    stderr and exit status 2: the message says what to fix, a traceback would bury it."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # faiss's loader logs each instruction set it tries, with the ImportError of those this
    # wheel lacks: an alarming flood on every run that says nothing to act on.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    log = logging.getLogger("seqcast")
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():  # a log line printed under a live bar starts a line
            return int(args.run(args))
    except ModuleNotFoundError as exc:  # an install without the `train` extra
        log.error("%s: the trainer needs its dependencies, `pip install -e '.[train]'`", exc)
        return 2
    except (SeqcastError, ValueError, OSError) as exc:
        log.error("%s", " ".join(str(exc).split()))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
