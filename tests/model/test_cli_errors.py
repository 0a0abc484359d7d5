"""Every option, configuration or input error of the trainer's subcommands ends in one line
on stderr naming what to fix, and a non-zero exit: the real `seqcast` entry point, run as a
child process, never shows a Python traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from model.synth import write_csv


@pytest.fixture(scope="module")
def shoppers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "shoppers.csv"
    write_csv(path, 20, 0)
    return path


def _seqcast(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "model.dispatch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_errors_are_one_line_naming_the_field(shoppers: Path, tmp_path: Path) -> None:
    train = ("train", "--data", str(shoppers), "--out", str(tmp_path / "a"), "--preset", "tiny")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("when,who,what\n2024-01-01,u1,click\n")
    cases = {
        "max_val_points='abc'": (*train, "--set", "max_val_points=abc"),
        "nosuch='1'": (*train, "--set", "nosuch=1"),
        "--preset: invalid choice: 'huge' (choose from ": (*train, "--preset", "huge"),
        "--test-fraction": (*train, "--test-fraction", "2"),
        "no such file": ("train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path)),
        "--users: 0 is not at least 1": ("synth", "--users", "0", "--out", str(tmp_path / "s")),
        # The artifact is checked before the log is read: a missing one is named, not the log.
        f"{tmp_path / 'no-artifact'}": (
            "evaluate", "--artifact", str(tmp_path / "no-artifact"), "--data", str(unknown),
        ),
        # In the terms of the command line, not of the Python function behind it.
        "or pass --format csv with a column mapping (--columns user=...,item=...": (
            "train", "--data", str(unknown), "--out", str(tmp_path / "b"),
        ),
    }
    # All at once: each child pays the trainer's import time, not each in turn.
    children = {expected: _seqcast(*args) for expected, args in cases.items()}
    for expected, child in children.items():
        _, err = child.communicate(timeout=120)
        assert child.returncode == 2, (expected, err)
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert expected in lines[-1], (expected, err)
        assert len([line for line in lines if "ERROR" in line or "error:" in line]) == 1, err
