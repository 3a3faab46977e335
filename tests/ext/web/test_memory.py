"""Both apps forget every finished run after ``keep_runs_for``, read again or not: 1,000 runs each.

Under a real uvicorn server, in this process: runs whose clients read them once, and runs
read again with ``Last-Event-ID`` after they ended, ten at a time. Once the process has
levelled (a first batch warms its caches and allocators), a thousand more runs leave no run
kept and the resident memory within a few MB of where it levelled (it grew by about 100 KB
a run of 200 tokens while the AI SDK app kept its finished runs until someone read them
again).
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx2 as httpx
import pytest

from miniagents.ext.llm.offline import offline_agent
from tests.ext.web.serving import PROTOCOLS, Protocol, get_events, post_events, served, until

WARM_UP = 200
RUNS = 1_000
AT_ONCE = 10
LEVEL_MB = 10.0
"""How much the resident memory may move over the 1,000 runs (allocator noise)."""


def resident_mb() -> float:
    """The resident memory of this process, in MB (Linux: ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def one_run(client: httpx.AsyncClient, protocol: Protocol, key: str, again: bool) -> None:
    _response, events = await post_events(client, protocol.body(key))
    assert events[-1].type == protocol.last_type
    if again:  # read again after it ended (a client that lost the end of the stream)
        await get_events(client, protocol.resume_path(key), {"last-event-id": "0"})


async def runs(
    client: httpx.AsyncClient, protocol: Protocol, start: int, count: int, *, again: bool
) -> None:
    for batch in range(start, start + count, AT_ONCE):
        keys = range(batch, batch + AT_ONCE)
        await asyncio.gather(*(one_run(client, protocol, f"k{n}", again) for n in keys))


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_thousand_runs_leave_no_run_kept_and_the_memory_level(protocol: Protocol) -> None:
    app = protocol.app(offline_agent.fork(reply="Hi " * 100, token_delay=0), keep_runs_for=0)
    manager = app.state.runs
    async with served(app) as client:
        await runs(client, protocol, 0, WARM_UP, again=False)
        await until(lambda: manager.kept == 0 and manager.live == 0)
        gc.collect()
        levelled = resident_mb()
        await runs(client, protocol, WARM_UP, RUNS, again=False)  # nobody reads them again
        await until(lambda: manager.kept == 0 and manager.live == 0)
        gc.collect()
        after = resident_mb()
    assert after - levelled < LEVEL_MB, f"{levelled:.1f} MB, then {after:.1f} MB"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_runs_read_again_are_forgotten_too(protocol: Protocol) -> None:
    app = protocol.app(offline_agent.fork(reply="Hi", token_delay=0), keep_runs_for=0.2)
    manager = app.state.runs
    async with served(app) as client:
        await runs(client, protocol, 0, 100, again=True)
        await until(lambda: manager.kept == 0 and manager.live == 0)
