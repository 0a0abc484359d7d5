"""`seqcast serve`: the service's command line (`model.dispatch` routes `serve` here).

The artifact is --artifact, else SEQCAST_ARTIFACT_DIR, else artifacts/demo. Only the demo
default is trained when absent (or when an older build wrote it: its manifest no longer
reads), by the trainer's `seqcast train-demo` in a child process:
the service never imports the trainer, so PyTorch is never loaded into it, and an install
without the trainer's dependencies fails with one line that says what to do. The child
writes its progress to the same terminal. An artifact directory that is named (flag or
variable) is served as it is: the service waits for a model to appear there.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from app.logs import configure_logging
from app.serve import serve
from app.settings import DEMO_ARTIFACT, load_settings
from model.artifact import MANIFEST, Manifest
from model.errors import SeqcastError

log = logging.getLogger("seqcast")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqcast")
    sub = parser.add_subparsers(dest="command", required=True)
    # `seqcast --help` shows the one-line help of model.dispatch.COMMANDS.
    p = sub.add_parser(
        "serve",
        description="Run the HTTP service: the artifact's model, each user's window in Redis. "
        "Settings beyond these options are SEQCAST_* environment variables (docs/service.md).",
    )
    p.add_argument(
        "--artifact",
        type=Path,
        help=f"artifact directory (default: SEQCAST_ARTIFACT_DIR, else {DEMO_ARTIFACT}, "
        "trained on synthetic data if absent)",
    )
    p.add_argument(
        "--redis-url",
        help="redis://[:password@]host:port/db or rediss:// (TLS); "
        "default: a private embedded redis-server",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; more than one shares the metrics through Prometheus' "
        "multiprocess mode (default %(default)s)",
    )
    return parser


def train_demo(artifact: Path) -> bool:
    """Train the demo artifact with the trainer, in a child process; True when it did."""
    done = subprocess.run(
        [sys.executable, "-m", "model.cli", "train-demo", "--out", str(artifact)], check=False
    )
    if done.returncode != 0:
        log.error("no model in %s and the demo model could not be trained (exit %d): install "
                  "the trainer with `pip install -e '.[train]'`, or pass --artifact DIR",
                  artifact, done.returncode)
    return done.returncode == 0


def demo_reads(artifact: Path) -> bool:
    """The demo artifact is there and its manifest reads with this build (its schema)."""
    try:
        Manifest.parse((artifact / MANIFEST).read_text())
    except (OSError, SeqcastError):
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("INFO")
    try:
        settings = load_settings()  # a refused configuration stops before any training
        artifact = args.artifact
        if artifact is None and "artifact_dir" in settings.model_fields_set:
            artifact = settings.artifact_dir
        if artifact is None:
            artifact = DEMO_ARTIFACT
            if not demo_reads(artifact) and not train_demo(artifact):
                return 2
        serve(artifact, args.redis_url, args.host, args.port, args.workers)
    except SeqcastError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
