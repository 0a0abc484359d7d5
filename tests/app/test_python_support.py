"""The Python versions seqcast declares are the ones it runs on: 3.11 and later. 3.10 is
refused at install (its asyncio.wait_for raises asyncio.TimeoutError, which the batcher's
`except TimeoutError` does not catch, and the trainer's PyTorch wheel starts at 3.11)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]


def python_310() -> str | None:
    """A working python3.10: on PATH, or a pyenv build (pyenv's shim answers only when 3.10
    is selected)."""
    candidates = [shutil.which("python3.10"),
                  *map(str, sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


def project() -> dict[str, object]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def test_declared_pythons_are_the_ones_the_suite_and_images_run() -> None:
    declared = SpecifierSet(str(project()["requires-python"]))
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in declared
    assert "3.10" not in declared
    classifiers = [str(c) for c in project()["classifiers"]]  # type: ignore[attr-defined]
    listed = [m.group(1) for c in classifiers
              if (m := re.fullmatch(r"Programming Language :: Python :: (3\.[0-9]+)", c))]
    assert listed and all(v in declared for v in listed)
    assert min(listed, key=lambda v: int(v.split(".")[1])) == "3.11"


@pytest.mark.slow
def test_pip_on_python_310_refuses_to_install(tmp_path: Path) -> None:
    python = python_310()
    if python is None:
        pytest.skip("no python3.10 here")
    for name in ("pyproject.toml", "README.md", "LICENSE"):  # metadata only, built in tmp
        shutil.copy(ROOT / name, tmp_path / name)
    done = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode != 0
    assert "requires a different Python" in done.stderr
