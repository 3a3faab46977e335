"""What the batch mode tests share: a journal in memory, a batch mode for tests, a pipeline in
batch mode, and waits on the loop and on the fake server's batches (the clock standing still
or moved by hand)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from contextlib import aclosing
from typing import Any

from miniagents import MiniAgents, pipeline
from miniagents.ext.llm.batch import BatchMode
from miniagents.miniagents import MiniAgent
from miniagents.pipeline import ItemResult, Pipeline
from miniagents.testing import FakeLLMServer, VirtualClock
from tests.fakes.fixtures import WAIT

__all__ = ["MemoryJournal", "batch_mode", "collect", "run_batched", "until", "until_looked"]


class MemoryJournal:
    """A ``RunJournal`` in memory, that keeps every record it was given and when."""

    def __init__(self, records: list[dict[str, object]] | None = None) -> None:
        self.records: list[dict[str, object]] = list(records or [])
        self.appended: list[dict[str, object]] = []
        self.times: list[float] = []
        self.cleared = 0
        self.changed = asyncio.Event()

    async def aload(self) -> list[dict[str, object]]:
        return list(self.records)

    async def aappend(self, record: Mapping[str, object]) -> None:
        self.records.append(dict(record))
        self.appended.append(dict(record))
        self.times.append(asyncio.get_running_loop().time())
        self.changed.set()

    async def aclear(self) -> None:
        self.records.clear()
        self.cleared += 1

    def kinds(self) -> list[object]:
        return [record["kind"] for record in self.appended]

    async def await_kind(self, kind: str) -> None:
        async def wait() -> None:
            while kind not in self.kinds():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), WAIT)


def batch_mode(**given: Any) -> BatchMode:
    given.setdefault("poll_interval", 0.005)
    given.setdefault("idle_wait", 0)
    given.setdefault("max_wait", 3600)  # flushed by count, bytes or idleness, never by time
    given.setdefault("journal", MemoryJournal())
    return BatchMode(**given)


async def run_batched(
    agent: MiniAgent[..., Any] | list[MiniAgent[..., Any]],
    items: list[str],
    mode: BatchMode,
    **options: Any,
) -> list[ItemResult[str, Any]]:
    options.setdefault("max_concurrency", max(1, len(items)))
    async with MiniAgents():
        return [result async for result in pipeline(agent, items, batch=mode, **options)]


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run (the clock standing still) until ``condition`` holds."""
    deadline = time.monotonic() + WAIT  # (a bound on a bug's hang, in the wall's time)
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0)


async def collect(run: Pipeline[str, Any]) -> list[ItemResult[str, Any]]:
    async with aclosing(run.__aiter__()) as results:
        return [result async for result in results]


async def until_looked(
    clock: VirtualClock, server: FakeLLMServer, batch_id: str, *, within: float
) -> None:
    """Let the batch be looked at once more, its poller's next look due ``within`` seconds.

    The clock moves a second at a time up to ``within`` seconds, then stands still: a look
    in flight (real HTTP, however slow the machine) is never timed out by the clock.
    """
    looks = server.batches.get(batch_id).looks
    deadline = time.monotonic() + WAIT  # (a bound on a bug's hang, in the wall's time)
    moved = 0
    while server.batches.get(batch_id).looks == looks:
        assert time.monotonic() < deadline, "the batch was never looked at"
        await asyncio.sleep(0)
        if moved < within:
            clock.advance(1)
            moved += 1
