"""Pytest fixtures: the testing kit's fake LLM server and virtual clock, a real PostgreSQL,
DBOS destroyed after a test that launched it, and a test run with lazy and with eager tasks.

``tests/conftest.py`` registers them for every test module; a module that names a
fixture only as a parameter may also import it, to make the dependency plain (the
``noqa`` keeps ruff from calling the import unused)::

    from miniagents.testing import FakeLLMServer
    from tests.fakes.fixtures import fake_llm  # noqa: F401


    async def test_something(fake_llm: FakeLLMServer) -> None:  # noqa: F811
        fake_llm.reply(tokens=["Hel", "lo"])
        client = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test")
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from miniagents.testing import FakeLLMServer, VirtualClock, virtual_time
from tests.fakes.eager_tasks import eager_tasks
from tests.fakes.postgres import PostgresServer, postgres_server

WAIT = 10.0
"""Seconds a test waits, at most, for something that happens at once unless there is a bug
(a thread's event, a request reaching the fake server): a hang fails instead of blocking."""

THREAD_WAIT = WAIT
"""The same, for a thread waiting on a ``threading.Event``."""


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A started ``FakeLLMServer`` on a free local port, stopped after the test.

    After the test, it fails if the server itself raised an unexpected error.
    """
    with FakeLLMServer() as server:
        yield server
    assert not server.errors, f"the fake LLM server failed: {server.errors!r}"


@pytest.fixture
async def virtual_clock() -> AsyncIterator[VirtualClock]:
    """The test's event loop on a virtual clock that runs by itself (``virtual_time()``)."""
    with virtual_time() as clock:
        yield clock


@pytest.fixture(params=[False, True], ids=["lazy tasks", "eager tasks"])
async def lazy_and_eager_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The test run twice: with the loop's tasks started as ever, then started eagerly.

    For the tests that once failed only under eager tasks (``tests/fakes/eager_tasks.py``):
    ``@pytest.mark.usefixtures("lazy_and_eager_tasks")`` runs each both ways.
    """
    if request.param:
        with eager_tasks():
            yield
    else:
        yield


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster on 127.0.0.1, one per test process, stopped at the end."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_standby() -> Iterator[PostgresServer]:
    """A real PostgreSQL standby that takes no connection (57P03: not ready), one per process."""
    with postgres_server(standby=True) as server:
        yield server


@pytest.fixture
def destroyed() -> Iterator[None]:
    """DBOS destroyed after the test (it launches it in this process)."""
    from dbos import DBOS

    try:
        yield
    finally:
        DBOS.destroy(destroy_registry=False)
