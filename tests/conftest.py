"""Shared fixtures: every test ends with no library task left running and no lost error."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from miniagents.promising.lowlevel import running_tasks

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import Scheduling

settings.register_profile(
    "deep",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""``pytest --hypothesis-profile=deep``: thousands of random examples, run by hand (the
topology fuzzer reads it: tests/miniagents/test_topology_fuzzer.py)."""

pytest_plugins = ["tests.fakes.fixtures"]  # fake_llm, virtual_clock, postgres, destroyed, ...


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--eager-tasks``: run the tests with every event loop starting its tasks eagerly."""
    parser.addoption(
        "--eager-tasks",
        action="store_true",
        help="start every asyncio task eagerly, as Python 3.12's eager_task_factory does "
        "(tests/fakes/eager_tasks.py); tests that count tasks or steps may then fail",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Install the eager tasks' event loop policy if ``--eager-tasks`` is given."""
    if config.getoption("eager_tasks"):
        from tests.fakes.eager_tasks import EagerTaskPolicy

        asyncio.set_event_loop_policy(EagerTaskPolicy())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """Schedule ``--dist loadgroup`` (the README's ``pytest -n auto``) by our groups.

    What must share a process shares a group: see ``tests/fakes/scheduling.py``.
    """
    if config.getoption("dist") != "loadgroup":
        return None
    from tests.fakes.scheduling import GroupScheduling  # only where pytest-xdist runs

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give the tests that read the one mypy run (``tests/fakes/typecheck.py``) its bound.

    The first of them in a process runs mypy over every typed test and the pages' blocks
    (bounded at 600 s there): on a loaded machine that outlasts the 120 s default, and the
    test would fail for the load alone. A test's own ``timeout`` mark is kept.
    """
    from tests.fakes.typecheck import MYPY_SECONDS, assert_passes_mypy

    for item in items:
        module = getattr(item, "module", None)
        reads_mypy = getattr(module, "assert_passes_mypy", None) is assert_passes_mypy
        if reads_mypy and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(MYPY_SECONDS + 60))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what the imports made, so the collection after each test stays quick."""
    gc.collect()
    gc.freeze()


_LEFT_BEFORE = pytest.StashKey[list[str]]()
"""The lost errors heard while collecting what the tests before this one left."""


class _LostErrors(logging.Handler):
    """Hears the library's error logs (what ``no_lost_errors`` fails a test for)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "miniagents":
            self.messages.append(record.getMessage())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the test's fixtures: collect what the tests before left, then freeze the rest.

    ``no_lost_errors`` collects the garbage after each test, and a full collection walks
    every object the collector tracks: without this freeze, everything the earlier tests
    left alive (lazily imported SDKs, caches, pytest's reports), which made the collections
    most of the suite's CPU. What survives here is alive before the test starts, so the
    test's own garbage is still collected (and its lost errors seen) after it. A lost error
    in the garbage of the test before (freed when pytest dropped its fixtures) is heard here
    and fails this test, as the collection after this test used to.
    """
    heard = _LostErrors()
    logger = logging.getLogger("miniagents")
    logger.addHandler(heard)
    try:
        gc.collect()
    finally:
        logger.removeHandler(heard)
    gc.freeze()
    item.stash[_LEFT_BEFORE] = heard.messages


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
def no_lost_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fail the test if the library logged an error (a lost error, a broken observer).

    A test that expects such a log asserts on it and then calls ``caplog.clear()``.
    """
    left_before = request.node.stash.get(_LEFT_BEFORE, [])
    assert not left_before, f"lost errors in what the tests before this one left: {left_before}"
    yield
    gc.collect()
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    errors = [r for r in records if r.name == "miniagents" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
