"""The trainer-only packages, as import names: the `train` extra of pyproject.toml, read
from there so that the tests which hide them from the service cannot fall behind it.
A plain module next to the tests (pytest puts this folder on sys.path)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
IMPORT_NAMES = {"scikit-learn": "sklearn"}  # distributions imported under another name


def pyproject() -> dict[str, object]:
    return tomllib.loads(PYPROJECT.read_text())


def trainer_only() -> tuple[str, ...]:
    """The import name of every distribution of the `train` extra."""
    extra = pyproject()["project"]["optional-dependencies"]["train"]  # type: ignore[index]
    names = []
    for requirement in extra:
        match = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert match, requirement
        name = match.group(0).lower()
        names.append(IMPORT_NAMES.get(name, name.replace("-", "_")))
    return tuple(names)
