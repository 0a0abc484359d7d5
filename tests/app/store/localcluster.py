"""A real Redis Cluster on localhost for the tests: three redis-server processes in cluster mode
(the binary the embedded mode uses), one primary each, all 16384 slots assigned.

The cluster is made with CLUSTER ADDSLOTS and CLUSTER MEET through redis-py, so no redis-cli
is needed. Each node keeps an append-only file synced before each reply (`appendfsync
always`: with `everysec` a write may wait behind a slow fsync, and a crash loses what was
already acknowledged), so a node killed and restarted comes back with all it acknowledged.
`cluster-require-full-coverage no` lets the other nodes serve their slots while one is down
(a cluster without replicas otherwise refuses every command).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.crc import key_slot

from app.embedded_redis import find_redis_server, free_port

SLOTS = 16384
CLUSTER_BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000


def _port_with_free_bus() -> int:
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port


class ClusterNode:
    """One redis-server process in cluster mode, persisting into its own directory."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(find_redis_server()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
            "--cluster-require-full-coverage", "no", "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "", "--daemonize", "no", "--loglevel", "warning",
        ]
        with (self.data_dir / "redis.log").open("ab") as log_file:
            self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"cluster node on {self.port} did not start") from None
                time.sleep(0.02)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class LocalCluster:
    """Three primaries on localhost; `nodes[i].url` reaches the whole cluster."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.nodes = [ClusterNode(root / f"node{i}", _port_with_free_bus()) for i in range(size)]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for i, node in enumerate(self.nodes):
            with node.client() as client:
                client.execute_command("CLUSTER ADDSLOTS", *self._slots(i))
        with self.nodes[0].client() as first:
            for node in self.nodes[1:]:
                first.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        self.wait_ok()

    def _slots(self, index: int) -> range:
        size = len(self.nodes)
        return range(index * SLOTS // size, (index + 1) * SLOTS // size)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node sees every other and all slots are served (cluster_state:ok)."""
        deadline = time.monotonic() + timeout
        while not all(self._node_ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def _node_ok(self, node: ClusterNode) -> bool:
        try:
            with node.client() as client:
                info = client.cluster("info")
        except redis.RedisError:
            return False
        return (info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == SLOTS
                and int(info["cluster_known_nodes"]) == len(self.nodes))

    def node_of(self, key: str) -> int:
        """The index of the node that serves `key`'s slot."""
        slot = key_slot(key.encode())
        return next(i for i in range(len(self.nodes)) if slot in self._slots(i))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
