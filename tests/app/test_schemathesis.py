"""Schemathesis against `seqcast serve`'s own OpenAPI document, over real HTTP, in both modes.

`seqcast serve` runs as a process with the demo model on the session's redis-server, once
open (development, no API keys) and once keyed (SEQCAST_API_KEYS set, the storefront key
supplied; the admin key for the admin route in both modes). `st run` reads the document the
service serves and runs every phase (examples, coverage, fuzzing, stateful sequences along
the document's links) with every check but one, a bounded number of examples per operation
and a fixed seed (the same cases on every run; SEQCAST_SCHEMATHESIS_SEED picks others).

Excluded: `use_after_free`, which expects a deleted user's prediction to be 404. After
`DELETE /v1/users/{user_id}` the user has no window, and a prediction for a user with no
window is the model's cold-start prior (200, `cold_start: true`), by design: the storefront
asks for predictions of users the service has never seen.

`schemathesis_hooks` keeps generated positive cases to the four rules of a request that the
document states in words only (its docstring lists them). A 413 (body over
SEQCAST_MAX_BODY_BYTES, checked before the body is read) counts as a rejection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.embedded_redis import free_port
from app.settings import DEFAULT_ADMIN_KEY

pytestmark = pytest.mark.slow

STOREFRONT_KEY = "sk-schemathesis"
MAX_EXAMPLES = 25  # per operation and phase: both modes in about 30 s on a 2-core VM
SEED = os.environ.get("SEQCAST_SCHEMATHESIS_SEED", "1")
HOOKS_DIR = Path(__file__).parent
NEGATIVE_STATUSES = ("400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx")


def _config(keyed: bool) -> str:
    """schemathesis.toml: the key of each route, 413 among the rejections."""
    lines = [f'headers = {{ "X-API-Key" = "{STOREFRONT_KEY}" }}'] if keyed else []
    lines += [
        "[checks.negative_data_rejection]",
        "expected-statuses = [" + ", ".join(f'"{s}"' for s in NEGATIVE_STATUSES) + "]",
        "[[operations]]",
        'include-path = "/v1/admin/reload"',
        f'headers = {{ "X-API-Key" = "{DEFAULT_ADMIN_KEY}" }}',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(params=["open", "keyed"])
def service(
    request: pytest.FixtureRequest, demo_artifact: Path, redis_url: str, key_prefix: str,
    tmp_path: Path, wait_ready: Callable[..., None],
) -> Iterator[tuple[str, bool]]:
    """`seqcast serve` on a free port: (its URL, whether it is keyed)."""
    keyed = request.param == "keyed"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQCAST_")}
    env.update(SEQCAST_RELOAD_POLL_SECONDS="0", SEQCAST_REDIS_KEY_PREFIX=key_prefix,
               SEQCAST_DATA_DIR=str(tmp_path / "var"))
    if keyed:
        env["SEQCAST_API_KEYS"] = STOREFRONT_KEY
    log = tmp_path / "serve.log"  # a file: a pipe nobody reads would fill and block the log
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "model.dispatch", "serve", "--artifact", str(demo_artifact),
             "--redis-url", redis_url, "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=out,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(proc, url)
            yield url, keyed
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "Traceback" not in text, text[-4000:]


def test_the_service_keeps_its_openapi_document(
    service: tuple[str, bool], tmp_path: Path
) -> None:
    url, keyed = service
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(keyed))
    env = os.environ | {"SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                        "PYTHONPATH": str(HOOKS_DIR)}
    st = Path(sys.executable).with_name("st")
    done = subprocess.run(
        [str(st), "--config-file", str(config), "--no-color", "run", url + "/openapi.json",
         "--checks", "all", "--exclude-checks", "use_after_free",
         "--max-examples", str(MAX_EXAMPLES), "--seed", SEED, "--workers", "1"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    # A failing case's body can be megabytes: each line of the report is cut short.
    report = "\n".join(line[:300] for line in done.stdout.splitlines()[-200:])
    assert done.returncode == 0, report + done.stderr[-2000:]
    assert " passed" in report and "failure" not in report, report
