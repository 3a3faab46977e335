"""One local Ray cluster for the whole session, started before its tests (2 CPUs, no dashboard).

Nothing is downloaded and nothing leaves the machine: usage statistics are off, and the
node's address is the loopback one. The workers import ``tests.ext.ray.remote`` from the
repository root (Ray puts the driver's working directory on their ``sys.path``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import cast

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage statistics are collected or sent
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # the node's address: 127.0.0.1

import ray

from tests.ext.ray.remote import Signals, SignalsHandle


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the cluster once the tests are selected, if one of them runs on it.

    It starts before the first test, not in its setup: the tests' timeouts (pytest-timeout
    counts a test's fixtures) bound the tests, not the cluster's start (8 s and more).
    """
    if session.config.option.collectonly:
        return
    if any("ray_cluster" in getattr(item, "fixturenames", ()) for item in session.items):
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200_000_000,  # enough here; Ray takes 30 % of the RAM by default
            logging_level=logging.ERROR,
        )
        nodes: Callable[[], list[dict[str, object]]] = ray.nodes
        assert {node["NodeManagerAddress"] for node in nodes()} == {"127.0.0.1"}


def pytest_sessionfinish() -> None:
    """Stop the cluster, if it was started."""
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_cluster() -> None:
    """The local Ray cluster of 2 CPUs, started before the first test (see above)."""
    assert ray.is_initialized()


@pytest.fixture(scope="session")
def signals(ray_cluster: None) -> SignalsHandle:
    """The session's :class:`tests.ext.ray.remote.Signals` actor."""
    return cast(SignalsHandle, ray.remote(num_cpus=0)(Signals).remote())
