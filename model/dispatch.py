"""The `seqcast` command: each subcommand's module is imported only when it runs.

`serve` belongs to the service (`app.cli`) and needs only the service's dependencies; the
others belong to the trainer (`model.cli`). The modules are named here as strings, so this
module imports the standard library only, and the import graph of `seqcast serve` is this
module, `app` and the contract modules of `model`: the import-linter contracts in
pyproject.toml check that graph holds no trainer module and no trainer dependency.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("model.cli", "write a synthetic shopper log (Taobao CSV format)"),
    "train": ("model.cli", "train, calibrate, export and evaluate a model"),
    "train-demo": ("model.cli", "train the demo model on synthetic shoppers (serve's default)"),
    "evaluate": ("model.cli", "score an artifact and the baselines on a log"),
    "serve": ("app.cli", "run the HTTP service"),
}
"""Subcommand -> (the module whose `main(argv)` runs it, its one-line help)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqcast", description="Real-time next-behavior prediction: train and serve."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        build_parser().parse_args(args)  # prints the help, or the error naming the commands
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    return int(module.main(args))


if __name__ == "__main__":
    raise SystemExit(main())
