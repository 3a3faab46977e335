"""The databases of durable runs that the subprocess tests of ``miniagents.ext.dbos`` share,
and the children they start."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ext.dbos.killed_child import Children
from tests.fakes.postgres import PostgresServer, postgres_binaries


@pytest.fixture
def children() -> Iterator[Children]:
    """The children a test starts (``children.start(...)``): each ended, with all it
    started, at the test's end, whatever happened in it."""
    with Children() as started:
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of durable runs: a SQLite file, or a database of a real Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.sqlite'}"
        return
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs Debian's postgresql)")
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.create_database(f"runs_{os.getpid()}_{time.monotonic_ns()}")
