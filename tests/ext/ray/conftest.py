"""One local Ray cluster for the whole session, started by the tests (2 CPUs, no dashboard).

Nothing is downloaded and nothing leaves the machine: usage statistics are off, and the
node's address is the loopback one. The workers import ``tests.ext.ray.remote`` from the
repository root (Ray puts the driver's working directory on their ``sys.path``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import cast

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage statistics are collected or sent
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # the node's address: 127.0.0.1

import ray

from tests.ext.ray.remote import Signals, SignalsHandle


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster of 2 CPUs, for the session."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200_000_000,  # enough here; Ray takes 30 % of the RAM by default
        logging_level=logging.ERROR,
    )
    try:
        nodes: Callable[[], list[dict[str, object]]] = ray.nodes
        assert {node["NodeManagerAddress"] for node in nodes()} == {"127.0.0.1"}
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def signals(ray_cluster: None) -> SignalsHandle:
    """The session's :class:`tests.ext.ray.remote.Signals` actor."""
    return cast(SignalsHandle, ray.remote(num_cpus=0)(Signals).remote())
