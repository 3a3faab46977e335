"""Both apps forget every finished run after ``keep_runs_for``, read again or not: 1,000 runs each.

Under a real uvicorn server, in this process: runs whose clients read them once, and runs
read again with ``Last-Event-ID`` after they ended, ten at a time. Once the process has
levelled (a first batch warms its caches and allocators), a thousand more runs leave no run
kept and the resident memory within a few MB of where it levelled (it grew by about 100 KB
a run of 200 tokens while the AI SDK app kept its finished runs until someone read them
again). A burst of short runs within ``keep_runs_for`` keeps only the latest
``max_ended_runs`` (the others let go of at once), and a paused run is never let go of so.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette

from miniagents import Message, MiniAgent
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import call_count
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import BearerTokenAuth, NoAuthentication, WebSettings, agui_app
from miniagents.ext.web._keeping import Kept
from miniagents.ext.web.lowlevel import Run, RunManager
from tests.ext.web.ended_runs import end_runs, manager_at_bound, run_size
from tests.ext.web.serving import (
    AGUI,
    PROTOCOLS,
    Protocol,
    SSEEvent,
    agui_input,
    delete_file,
    deleted,
    get_events,
    nothing_deleted,  # noqa: F401
    post_events,
    served,
    unmetered,
    until,
)

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
    app = protocol.app(
        offline_agent.fork(reply="Hi " * 100, token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=0),
    )
    manager = app.state.runs
    async with served(app) as client:
        await runs(client, protocol, 0, WARM_UP, again=False)
        await until(lambda: manager.kept == 0 and manager.live == 0)
        gc.collect()
        levelled = resident_mb()
        await runs(client, protocol, WARM_UP, RUNS, again=False)  # nobody reads them again
        # (a job is let go of by its own timer, which may fire after its runs' forgetting)
        await until(
            lambda: manager.kept == 0 and manager.live == 0 and not manager.ended._ended_jobs
        )
        assert_kept_consistent(manager, forgotten=True)
        gc.collect()
        after = resident_mb()
    assert after - levelled < LEVEL_MB, f"{levelled:.1f} MB, then {after:.1f} MB"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_runs_read_again_are_forgotten_too(protocol: Protocol) -> None:
    app = protocol.app(
        offline_agent.fork(reply="Hi", token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=0.2),
    )
    manager = app.state.runs
    async with served(app) as client:
        await runs(client, protocol, 0, 100, again=True)
        # (a job is let go of by its own timer, which may fire after its runs' forgetting)
        await until(
            lambda: manager.kept == 0 and manager.live == 0 and not manager.ended._ended_jobs
        )
        assert_kept_consistent(manager, forgotten=True)


def kept_entries(kept: Kept[Any]) -> dict[Any, tuple[str | None, int, bool]]:
    """What a :class:`Kept` holds, by item: its principal, its size, and whether it is held.

    Checks on the way that its running totals (the whole, each principal's count and
    bytes, its members) are what a fresh sum over its entries gives, and that its index
    (the stamps, each principal's heap) holds each entry and nothing else but stale stamps.
    """
    entries = {item: (e.owner, e.size, e.held) for item, e in kept._entries.items()}
    members: dict[str | None, int] = {}
    candidates: dict[str | None, int] = {}
    totals: dict[str | None, int] = {}
    for owner, size, held in entries.values():
        members[owner] = members.get(owner, 0) + 1
        if not held:
            candidates[owner] = candidates.get(owner, 0) + 1
            totals[owner] = totals.get(owner, 0) + size
    assert kept.total == sum(totals.values()), (kept.total, totals)
    assert kept._members == members
    assert kept._candidates == candidates
    assert kept._totals == totals
    assert kept._stamped == {e.stamp: item for item, e in kept._entries.items()}
    assert set(kept._heaps) == set(members)
    for item, e in kept._entries.items():
        assert (e.key, e.stamp) in kept._heaps[e.owner], item
    return entries


def assert_kept_consistent(manager: RunManager, *, forgotten: bool = False) -> None:
    """Fail unless the manager's kept structures agree: each :class:`Kept`'s totals with
    its entries (:func:`kept_entries`), and each structure's entries with the others' (an
    entry one keeps and the others do not is a leak: a run or job nothing lets go of).

    ``forgotten``: every run has ended and been forgotten, so nothing is kept at all.
    """
    runs = kept_entries(manager.ended._kept_runs)
    jobs = kept_entries(manager.ended._kept_jobs)
    weighed = kept_entries(manager.ended._weighed)
    assert set(runs) == set(manager.ended._ended)
    assert set(jobs) == set(manager.ended._ended_jobs)
    assert {job: dict(ended) for job, ended in manager.ended._ended_of.items()} == {
        job: {run: None for run in manager.ended._ended if run.job is job}
        for job in {run.job for run in manager.ended._ended}
    }
    assert manager.ended._waited == {run.job: run for run in manager.ended._ended if runs[run][2]}
    expected: dict[Any, tuple[str | None, int, bool]] = {}
    for job in manager.ended._ended_jobs:
        ended = manager.ended._ended_of.get(job, {})
        expected[job] = (job.owner, job.kept_bytes + sum(run.size for run in ended), False)
    for run in manager.ended._ended:
        assert runs[run] == (run.job.owner, 1, run.job.paused and run.job.current is run)
        if run.job not in manager.ended._ended_jobs:
            expected[run] = (run.job.owner, run.size, runs[run][2])
    assert weighed == expected
    for job in jobs:
        assert jobs[job] == (job.owner, 1, False)
    if forgotten:
        assert runs == jobs == weighed == {}
        assert not manager.ended._ended_of
        assert not manager.ended._waited


def runs_named(key: str) -> list[Run]:
    """The runs under ``key`` that anything still holds, with their events (after a
    ``gc.collect()``; an ended job's stand-in for its last run, an empty run, is none)."""
    return [
        found
        for found in gc.get_objects()
        if isinstance(found, Run) and found.key == key and found.events
    ]


async def read_again(client: httpx.AsyncClient, protocol: Protocol, key: str) -> tuple[int, str]:
    """A run's status code and last event (``""``: none) when it is read again from the start."""
    response, events = await get_events(client, protocol.resume_path(key), {"last-event-id": "0"})
    return response.status_code, events[-1].type if events else ""


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_one_principals_burst_of_runs_pushes_out_their_own_ended_runs_not_anothers(
    protocol: Protocol,
) -> None:
    """``max_ended_runs=3``: Alice's run ends, then Bob's burst of ten; Alice's stays
    readable, and Bob keeps his two latest (the pool is the app's; the one let go is the
    oldest of whoever has the most kept)."""
    app = protocol.app(
        offline_agent.fork(reply="Hi " * 5, token_delay=0),
        authentication=BearerTokenAuth({"alice-secret-token": "alice", "bob-secret-token": "bob"}),
        settings=WebSettings(keep_runs_for=3600, max_ended_runs=3),
    )
    alice = {"Authorization": "Bearer alice-secret-token"}
    bob = {"Authorization": "Bearer bob-secret-token"}
    manager = app.state.runs
    async with served(app) as client:
        await post_events(client, protocol.body("a0"), headers=alice)
        for n in range(10):
            await post_events(client, protocol.body(f"b{n}"), headers=bob)
        await until(lambda: manager.live == 0)
        assert_kept_consistent(manager)
        kept = manager.kept

        async def read(key: str, who: dict[str, str]) -> int:
            response, _ = await get_events(
                client, protocol.resume_path(key), {"last-event-id": "0", **who}
            )
            return response.status_code

        alices = await read("a0", alice)
        bobs = [await read(f"b{n}", bob) for n in range(10)]
    assert kept == 3
    assert alices == 200
    assert bobs == [protocol.no_run_status] * 8 + [200, 200]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_burst_of_short_runs_keeps_the_latest_max_ended_runs_only(
    protocol: Protocol,
) -> None:
    """Kept for an hour, 30 runs that end at once: the 5 latest stay, the others are let go."""
    app = protocol.app(
        offline_agent.fork(reply="Hi " * 20, token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600, max_ended_runs=5),
    )
    manager = app.state.runs
    async with served(app) as client:
        await one_run(client, protocol, "k0", again=False)
        for n in range(1, 30):
            await one_run(client, protocol, f"k{n}", again=False)
        await until(lambda: manager.live == 0)
        assert_kept_consistent(manager)
        kept = manager.kept
        latest = [await read_again(client, protocol, f"k{n}") for n in range(25, 30)]
        evicted = await read_again(client, protocol, "k0")
        never = await read_again(client, protocol, "never-started")
        gc.collect()
        assert runs_named("k29") != []
    assert kept == 5
    assert latest == [(200, protocol.last_type)] * 5
    assert evicted == never == (protocol.no_run_status, "")  # as a run forgotten: not there
    assert runs_named("k0") == []  # let go of, its events with it (no timer holds it till then)
    assert manager.job("k0") is None


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_no_ended_run_kept_is_a_limit_too(protocol: Protocol) -> None:
    """``max_ended_runs=0`` (the least the app takes): a run is forgotten as it ends."""
    app = protocol.app(
        offline_agent.fork(reply="Hi", token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600, max_ended_runs=0),
    )
    manager = app.state.runs
    async with served(app) as client:
        await one_run(client, protocol, "k0", again=False)
        await until(lambda: manager.live == 0)
        kept = manager.kept
        again = await read_again(client, protocol, "k0")
    assert kept == 0
    assert again == (protocol.no_run_status, "")


async def test_a_paused_run_is_never_let_go_of_for_the_runs_that_end_after_it() -> None:
    app = agui_app(
        approving(),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600, max_ended_runs=2),
    )
    async with served(app) as client:
        _response, first = await post_events(client, agui_input("r0", thread="t0"))
        for n in range(1, 6):  # each pauses, then is resumed and ends: two ended runs each
            _response, asked = await post_events(client, agui_input(f"r{n}", thread=f"t{n}"))
            resume = [approval(asked)]
            _response, done = await post_events(
                client, agui_input(f"r{n}b", thread=f"t{n}", resume=resume)
            )
            assert unmetered(done[-1].json) == {
                "type": "RUN_FINISHED",
                "threadId": f"t{n}",
                "runId": f"r{n}b",
            }
        kept = app.state.runs.kept
        assert_kept_consistent(app.state.runs)
        _response, resumed = await post_events(
            client, agui_input("r0b", thread="t0", resume=[approval(first)])
        )
        assert_kept_consistent(app.state.runs)
    assert kept == 3  # the paused run, and the 2 latest of the 10 that ended
    assert unmetered(resumed[-1].json) == {"type": "RUN_FINISHED", "threadId": "t0", "runId": "r0b"}
    assert deleted == ["a.txt"] * 6


async def test_an_ended_job_holds_none_of_its_runs_once_they_are_let_go_of() -> None:
    """Two ended runs kept: a job of two runs, then another, lets the first job's runs go."""
    app = agui_app(
        approving(),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600, max_ended_runs=2),
    )
    manager = app.state.runs
    async with served(app) as client:
        for n in range(2):  # each pauses, then is resumed and ends: two ended runs each
            _response, asked = await post_events(client, agui_input(f"r{n}", thread=f"t{n}"))
            resume = [approval(asked)]
            await post_events(client, agui_input(f"r{n}b", thread=f"t{n}", resume=resume))
        assert manager.job("r0") is not None  # the first job is kept (two ended jobs) ...
        gc.collect()
        assert runs_named("r0") == runs_named("r0b") == []  # ... its runs are not
        assert [len(runs_named(key)) for key in ("r1", "r1b")] == [1, 1]
        assert await read_again(client, AGUI, "r0b") == (404, "")


ASK = CallTool("delete_file", {"path": "a.txt"})


def approving() -> MiniAgent[..., Message]:
    """An agent whose every run calls ``delete_file``, which waits for approval, then ends."""
    return offline_agent.fork(
        tools=[FunctionTool(delete_file, requires_approval=True)],
        reply=lambda call: "Finished." if call_count(call.messages) else ASK,
        token_delay=0,
    )


def approval(events: list[SSEEvent]) -> dict[str, object]:
    """The resume entry that approves the call a run paused at."""
    [interrupt] = events[-1].json["outcome"]["interrupts"]
    return {"interruptId": interrupt["id"], "status": "resolved", "payload": {"approved": True}}


class _CountedRuns(dict[Run, Any]):
    """The manager's ended runs, counting the runs that anything walks through."""

    walked = 0

    def __iter__(self) -> Iterator[Run]:
        for run in super().__iter__():
            self.walked += 1
            yield run


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_a_job_that_ends_walks_through_none_of_the_runs_kept(protocol: Protocol) -> None:
    """Forgetting an ended job finds its runs by an index: with 40 ended runs kept (far
    under ``max_ended_runs``), one more run that ends walks through none of them (it went
    through all of them: a cost that grew with the runs kept)."""
    app = protocol.app(
        offline_agent.fork(reply="Hi", token_delay=0),
        authentication=NoAuthentication(),
        settings=WebSettings(keep_runs_for=3600),
    )
    manager = app.state.runs
    async with served(app) as client:
        for n in range(40):
            await one_run(client, protocol, f"k{n}", again=False)
        await until(lambda: manager.live == 0)
        counted = _CountedRuns(manager.ended._ended)
        manager.ended._ended = counted
        await one_run(client, protocol, "last", again=False)
        await until(lambda: manager.live == 0)
        assert len(counted) == 41
        assert counted.walked == 0


def counting_calls(
    method: Callable[[RunManager, Any], None], counted: list[int]
) -> Callable[[RunManager, Any], None]:
    """``method``, which adds the Python calls each of its calls makes to ``counted[0]``."""

    def counted_method(manager: RunManager, argument: Any) -> None:
        def profile(_frame: FrameType, event: str, _arg: object) -> None:
            if event == "call":
                counted[0] += 1

        before = sys.getprofile()
        sys.setprofile(profile)
        try:
            method(manager, argument)
        finally:
            sys.setprofile(before)

    return counted_method


async def calls_per_end_at_the_bound(
    monkeypatch: pytest.MonkeyPatch, bound: str, kept: int, size: int
) -> float:
    """The Python calls the manager makes as a run (and its job) ends, with ``kept`` ended
    runs kept at the ``bound`` (each run's log ``size`` bytes): each end lets one go."""
    manager = await manager_at_bound(bound, kept, size)
    full = manager.kept  # (by bytes: about as many, their jobs' records counted too)
    assert kept * 9 // 10 <= full <= kept
    counted = [0]
    with monkeypatch.context() as patched:
        for owner, name in [(type(manager.ended), "forget_later"), (RunManager, "forget_job")]:
            patched.setattr(owner, name, counting_calls(getattr(owner, name), counted))
        await end_runs(manager, [f"m{n:05}" for n in range(10)])
    assert manager.kept == full
    assert_kept_consistent(manager)
    await manager.aclose()
    return counted[0] / 10


@pytest.mark.parametrize("bound", ["max_ended_runs", "max_ended_run_bytes"])
async def test_a_run_that_ends_at_the_bound_does_work_that_does_not_grow_with_the_runs_kept(
    monkeypatch: pytest.MonkeyPatch, bound: str
) -> None:
    """At the bound, each run that ends lets the oldest go: the manager keeps each
    principal's ended runs and totals as they come and go, so what it does as a run ends
    (counted in Python calls) is the same with 2,000 runs kept as with 20 (it went through
    every kept run, and summed the paused jobs' runs, at each end: 2,000 calls and more)."""
    size = await run_size()
    few = await calls_per_end_at_the_bound(monkeypatch, bound, 20, size)
    many = await calls_per_end_at_the_bound(monkeypatch, bound, 2_000, size)
    assert many <= few + 5, (few, many)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
async def test_the_ended_runs_keep_at_most_max_ended_run_bytes_of_events(
    protocol: Protocol,
) -> None:
    """A bound of about three runs' logs, in bytes (far under ``max_ended_runs``): Alice's
    run ends, then Bob's ten; the logs kept stay under it, Alice's is kept and Bob keeps his
    latest two (the oldest of whoever keeps the most bytes goes first, as A2A's tasks). They
    were bounded by count only: all eleven were kept."""
    size = 0

    def app_of(bound: int) -> Starlette:
        return protocol.app(
            offline_agent.fork(reply="Hi " * 100, token_delay=0),
            authentication=BearerTokenAuth(
                {"alice-secret-token": "alice", "bob-secret-token": "bob"}
            ),
            settings=WebSettings(keep_runs_for=3600, max_ended_run_bytes=bound),
        )

    alice = {"Authorization": "Bearer alice-secret-token"}
    bob = {"Authorization": "Bearer bob-secret-token"}
    app = app_of(10**9)  # (a run's log, measured)
    async with served(app) as client:
        await post_events(client, protocol.body("a0"), headers=alice)
        await until(lambda: app.state.runs.live == 0)
        size = log_bytes(app.state.runs.get("a0", "alice"))
    app = app_of(size * 7 // 2)
    manager = app.state.runs
    async with served(app) as client:
        await post_events(client, protocol.body("a0"), headers=alice)
        for n in range(10):
            await post_events(client, protocol.body(f"b{n}"), headers=bob)
        await until(lambda: manager.live == 0)
        assert_kept_consistent(manager)
        kept = {key: manager.get(key, "bob") for key in [f"b{n}" for n in range(10)]}
        alices = manager.get("a0", "alice")
        assert alices is not None
        assert [key for key, run in kept.items() if run is not None] == ["b8", "b9"]
        total = log_bytes(alices) + sum(log_bytes(run) for run in kept.values() if run)
        assert total <= size * 7 // 2


def log_bytes(run: Run | None) -> int:
    """The bytes of a run's events (UTF-8)."""
    assert run is not None
    return sum(len(event.encode()) for event in run.events)


@pytest.mark.parametrize(
    "settings",
    [
        WebSettings(keep_runs_for=3600, max_ended_runs=0),
        WebSettings(keep_runs_for=3600, max_ended_run_bytes=0),
    ],
    ids=["max_ended_runs", "max_ended_run_bytes"],
)
async def test_a_paused_run_is_kept_by_an_app_that_keeps_no_ended_run(
    settings: WebSettings,
) -> None:
    """``max_ended_runs=0`` or ``max_ended_run_bytes=0``: every run is forgotten as it ends,
    but a paused one, which its job waits on, is live: kept, followed, resumed. (It ended
    before its job was paused, so the bound let it go as it paused.)"""
    app = agui_app(
        approving(),
        authentication=NoAuthentication(),
        settings=settings,
    )
    async with served(app) as client:
        _response, first = await post_events(client, agui_input("r0", thread="t0"))
        _response, other = await post_events(client, agui_input("r1", thread="t1"))
        kept = app.state.runs.kept
        assert_kept_consistent(app.state.runs)
        again = await read_again(client, AGUI, "r0")
        _response, resumed = await post_events(
            client, agui_input("r0b", thread="t0", resume=[approval(first)])
        )
        after = app.state.runs.kept
        assert_kept_consistent(app.state.runs)
    assert kept == 2  # the two paused runs
    assert again == (200, "RUN_FINISHED")  # (its stream ended where it paused)
    assert unmetered(resumed[-1].json) == {"type": "RUN_FINISHED", "threadId": "t0", "runId": "r0b"}
    assert after == 1  # r1 still paused; r0 and r0b, ended, forgotten at once
    assert deleted == ["a.txt"]
    assert other[-1].json["outcome"]["type"] == "interrupt"
