"""DBOS's launch and what it recovers: outside of every user's context and timeout.

- A durable pipeline launches DBOS before its first item's try starts: ``timeout=`` limits
  the tries alone, not the seconds a launch takes.

These tests launch DBOS in the test's process (a database of their own) and destroy it at
their end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import miniagents.ext.dbos._engine as engine_module
from miniagents import MiniAgents
from miniagents.ext.dbos import use_database
from miniagents.ext.llm.offline import offline_agent
from miniagents.messages import Message
from miniagents.pipeline import ItemResult, Pipeline, pipeline
from miniagents.testing import manual_time


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file of runs of its own; DBOS destroyed after the test."""
    from dbos import DBOS

    path = tmp_path / "runs.sqlite"
    use_database(f"sqlite:///{path}")
    try:
        yield path
    finally:
        DBOS.destroy(destroy_registry=False)


async def test_a_pipelines_timeout_does_not_count_the_launch_of_dbos(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launching = threading.Event()
    launched = threading.Event()
    checked = engine_module._check_reachable

    def slow_check(url: str) -> None:  # the launch waits here until the test lets it go
        checked(url)
        launching.set()
        launched.wait()

    monkeypatch.setattr(engine_module, "_check_reachable", slow_check)
    echo = offline_agent.fork(alias="ECHO_TIMED", reply="Done.", token_delay=0)
    async with MiniAgents():
        with manual_time() as clock:
            results = asyncio.ensure_future(
                _results(pipeline(echo, ["a"], timeout=2, durable="launch-timeout"))
            )
            try:
                await asyncio.to_thread(launching.wait)  # DBOS is launching
                clock.advance(10)  # the launch took 10 s: longer than an item's timeout
            finally:
                launched.set()
            done = await results
    assert [(result.error, [str(reply) for reply in result.replies]) for result in done] == [
        (None, ["Done."])
    ]


async def _results(running: Pipeline[str, Message]) -> list[ItemResult[str, Message]]:
    return [result async for result in running]
