"""A refused configuration names the variable and the rule, in one line, and never echoes a
value: pydantic's ValidationError prints every input, API keys included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.embedded_redis import free_port
from app.settings import InvalidSettings, Settings, load_settings

SECRET = "SECRETKEYVALUE123"


def test_load_settings_names_the_variable_and_hides_the_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEQCAST_ENV", "production")
    monkeypatch.setenv("SEQCAST_API_KEYS", SECRET)
    with pytest.raises(InvalidSettings) as refused:
        load_settings()
    assert str(refused.value) == ("invalid configuration: SEQCAST_ADMIN_KEY must be changed "
                                  "from its default in production")
    monkeypatch.setenv("SEQCAST_MAX_BATCH_EVENTS", "abc")
    with pytest.raises(InvalidSettings, match="SEQCAST_MAX_BATCH_EVENTS: Input should be a "
                                              "valid integer") as refused:
        load_settings()
    assert SECRET not in str(refused.value) and "abc" not in str(refused.value)
    with pytest.raises(ValidationError) as raw:
        Settings()
    assert SECRET not in str(raw.value), "even pydantic's own message hides the inputs"


@pytest.mark.slow
def test_serve_refuses_a_production_configuration_without_printing_the_keys(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    env |= {"SEQCAST_ENV": "production", "SEQCAST_API_KEYS": SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "model.dispatch", "serve", "--port", str(free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert SECRET not in done.stdout and SECRET not in done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SEQCAST_ADMIN_KEY" in lines[0]
    assert not (tmp_path / "artifacts").exists(), "refused before any demo training"
