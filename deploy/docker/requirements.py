"""Prints the service image's pip requirements, one per line, read from pyproject.toml.

The service runs on the project's base dependencies (no PyTorch). The GPU variant swaps the
CPU `onnxruntime` wheel for the `gpu` extra's `onnxruntime-gpu`: both install the same
`onnxruntime` module, so an image must never carry the two.

    python deploy/docker/requirements.py --variant cpu|gpu [--pyproject PATH]
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

VARIANTS = ("cpu", "gpu")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def service_requirements(pyproject: Path, variant: str) -> list[str]:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    project = tomllib.loads(pyproject.read_text())["project"]
    base: list[str] = list(project["dependencies"])
    if variant == "cpu":
        return base
    gpu: list[str] = list(project["optional-dependencies"]["gpu"])
    return [r for r in base if requirement_name(r) != "onnxruntime"] + gpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, default="cpu")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    sys.stdout.write("\n".join(service_requirements(args.pyproject, args.variant)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
