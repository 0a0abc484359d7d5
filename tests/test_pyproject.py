"""pyproject.toml's layering contracts keep every trainer-only package out of the service."""

from __future__ import annotations

from packages import pyproject, trainer_only


def test_the_service_contracts_forbid_every_package_of_the_train_extra() -> None:
    contracts = pyproject()["tool"]["importlinter"]["contracts"]  # type: ignore[index]
    guarding = [c for c in contracts if "torch" in c.get("forbidden_modules", [])]
    assert {"app", "model.dispatch"} <= {m for c in guarding for m in c["source_modules"]}
    for contract in guarding:
        missing = set(trainer_only()) - set(contract["forbidden_modules"])
        assert not missing, f"{contract['name']!r} lets the service import {sorted(missing)}"
