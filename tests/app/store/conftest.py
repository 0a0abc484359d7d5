"""The store's fixtures: a real three-node Redis Cluster for the session (`localcluster`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localcluster import LocalCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real three-node Redis Cluster for the session (tests that stop a node restart it)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
