"""Shared fixtures: every test ends with no library task left running and no lost error."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, settings

from miniagents.promising.lowlevel import running_tasks

settings.register_profile(
    "deep",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""``pytest --hypothesis-profile=deep``: thousands of random examples, run by hand (the
topology fuzzer reads it: tests/miniagents/test_topology_fuzzer.py)."""

pytest_plugins = ["tests.fakes.fixtures"]  # fake_llm, virtual_clock


_TYPECHECKED = {"test_tool_loop_types.py"}  # beside tests/typing/*: read the one mypy run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put what must share a process in one pytest-xdist group (``--dist loadgroup``).

    The typing tests read one ``mypy`` run (``tests/fakes/typecheck.py``), the README blocks
    and examples one batch (``tests/fakes/batch.py``), and the Ray tests one local cluster
    (``tests/ext/ray/conftest.py``): each is made once, by the worker that runs its group.
    """
    for item in items:
        path = item.path
        if path.parent.name == "typing" or path.name in _TYPECHECKED:
            item.add_marker(pytest.mark.xdist_group("mypy"))
        elif path.name == "test_docs.py":
            item.add_marker(pytest.mark.xdist_group("docs"))
        elif item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what the imports made, so the collection after each test stays quick."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if a task started by the library is still running after it."""
    yield
    for _ in range(3):  # let tasks that are finishing take their last step
        await asyncio.sleep(0)
    leaked = running_tasks()
    for task in leaked:
        task.cancel()
    assert not leaked, f"tasks left running: {sorted(task.get_name() for task in leaked)}"


@pytest.fixture(autouse=True)
def no_lost_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if the library logged an error (a lost error, a broken observer).

    A test that expects such a log asserts on it and then calls ``caplog.clear()``.
    """
    yield
    gc.collect()
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    errors = [r for r in records if r.name == "miniagents" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
