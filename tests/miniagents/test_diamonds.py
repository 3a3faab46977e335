"""Diamonds end at once, whatever else the loop holds (issue 57).

A *diamond*: one reply shared by two branches that meet again in order. ``REPORT`` (the
program of issue 57) splits the rows of ``ROWS`` into two per-row agents and replies with
both, in order: the second branch's replies are read only after the first's have ended,
and the first cannot end before the source has replied every row, while the source waits
for room in the second branch's bounded buffer. With an idle loop the deadlock watch
relieves that after its first check (a second); with anything else in the loop (a timer,
a timeout, a pipeline's own event, a ``pipe`` caller) it never did, and the program hung.

Each program runs on a virtual clock (:func:`~tests.fakes.cut_off.run_with_cut_off`): a
hang is seen at once, deterministically, and *at once* means what the same program takes
with ``high_water_mark=None`` (no virtual time at all) plus 50 ms.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Literal

import pytest
import reactivex
from reactivex import operators as ops

from miniagents import (
    InteractionContext,
    Message,
    MessagePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
    pipeline,
)
from miniagents.operators import resolve_messages
from miniagents.promising.limits import DEFAULT_REPLAY_WINDOW
from tests.fakes.cut_off import run_with_cut_off, within
from tests.fakes.uvloop_runs import on_uvloop

Caller = Literal["await", "timer", "timeout", "pipe", "pipeline", "complete"]
CALLERS: tuple[Caller, ...] = ("await", "timer", "timeout", "pipe", "pipeline", "complete")
"""A plain ``await``; the same with an unrelated timer pending in the loop; inside
``asyncio.timeout(60)``; ``reactivex.of("x").pipe(report.as_operator(), ...)``;
``pipeline(report, ["x"])``; the complete messages of the replies, awaited through
reactivex (``as_message_observable()``)."""

UVLOOP_WAIT = 10.0
"""Real seconds after which a program on uvloop counts as hung."""

AT_ONCE = 0.05
"""Seconds (of the virtual clock) a diamond may take more than with no high-water mark."""

CUT_OFF = 600.0
"""Seconds of the virtual clock after which a program counts as hung (the timeout caller's
60 s, the unrelated timer's hour: a hang ends at neither)."""


async def _two_tokens(first: str, second: str) -> AsyncIterator[str]:
    yield first
    yield second


@miniagent
async def rows(ctx: InteractionContext, count: int = 200, tokens: bool = False) -> None:
    """Replies ``count`` rows, each waiting for room (``areply``); streamed in two tokens."""
    for index in range(count):
        if tokens:
            await ctx.areply(MessagePromise.from_async_iterable(_two_tokens("row ", f"{index}")))
        else:
            await ctx.areply(f"row {index}")


@miniagent
async def per_row(ctx: InteractionContext, tokens: bool = False) -> None:
    """Replies one message per input message, reading it whole or token by token."""
    async for promise in ctx.message_promises:
        text = "".join([token async for token in promise]) if tokens else str(await promise)
        ctx.reply(f"{text} seen")


@miniagent
async def report(ctx: InteractionContext, count: int = 200, tokens: bool = False) -> None:
    """Issue 57's program: one reply shared by two branches, replied with in order."""
    shared = rows.inquire(count=count, tokens=tokens)
    ctx.reply(per_row.inquire(shared, tokens=tokens))
    ctx.reply(per_row.inquire(shared, tokens=tokens))


def _expected(count: int) -> list[str]:
    return [f"row {index} seen" for index in range(count)] * 2


async def _read(caller: Caller, agent: MiniAgent[..., Message]) -> list[str]:
    """What ``caller`` reads of ``agent``'s replies to the input "x"."""
    if caller == "pipe":
        texts: list[str] = await reactivex.of("x").pipe(
            agent.as_operator(), ops.map(str), ops.to_list()
        )
        return texts
    if caller == "pipeline":
        (result,) = [result async for result in pipeline(agent, ["x"], progress=False)]
        return [str(message) for message in result.get()]
    if caller == "complete":
        complete: list[str] = (
            await agent.inquire("x").as_message_observable().pipe(ops.map(str), ops.to_list())
        )
        return complete
    loop = asyncio.get_running_loop()
    timer = loop.call_later(3600, _nothing) if caller == "timer" else None
    around: AbstractAsyncContextManager[object] = (
        asyncio.timeout(60) if caller == "timeout" else nullcontext()
    )
    try:
        async with around:
            return [str(message) for message in await agent.inquire("x")]
    finally:
        if timer is not None:
            timer.cancel()


def _nothing() -> None:
    """An unrelated timer's work (a heartbeat, a server's keep-alive): here, nothing."""


async def _timed(
    caller: Caller,
    agent: MiniAgent[..., Message],
    high_water_mark: int | None,
    replay_window: int | None = DEFAULT_REPLAY_WINDOW,
) -> tuple[list[str], float]:
    """What ``caller`` read, and the seconds of the loop's clock it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with MiniAgents(high_water_mark=high_water_mark, replay_window=replay_window):
        texts = await _read(caller, agent)
    return texts, loop.time() - start


# -- issue 57's program, under every caller -------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("count", "high_water_mark"), [(200, 64), (2, 1)], ids=["200-64", "2-1"])
def test_issue_57s_report_ends_at_once_under_every_caller(
    caller: Caller, count: int, high_water_mark: int
) -> None:
    """200 rows at the default high-water mark (it hung after 128 replies), and 2 rows at a
    high-water mark of 1 (the shape, not the size, is what hung)."""
    agent = report.fork(count=count)
    texts, elapsed = run_with_cut_off(_timed(caller, agent, high_water_mark), CUT_OFF)
    assert texts == _expected(count)
    unbounded_texts, unbounded = run_with_cut_off(_timed(caller, agent, None), CUT_OFF)
    assert unbounded_texts == texts
    assert elapsed <= unbounded + AT_ONCE, f"{elapsed} s of the virtual clock, not at once"


@pytest.mark.parametrize("caller", CALLERS)
def test_issue_57s_report_ends_at_once_on_uvloop(caller: Caller) -> None:
    """On uvloop (real time, the watch's own interval of a second): at once means well under
    that second (the watch's relief there takes two of its checks, two seconds; ``pipe``
    hung for good). A hang fails after 10 s."""

    async def main() -> tuple[list[str], float]:
        start = time.perf_counter()
        texts, _ = await within(_timed(caller, report.fork(count=2), 1), UVLOOP_WAIT)
        return texts, time.perf_counter() - start

    texts, elapsed = on_uvloop(main, wait=2 * UVLOOP_WAIT)
    assert texts == _expected(2)
    assert elapsed < 1.0, f"{elapsed:.2f} s on uvloop, not at once"


# -- diamonds whose branches pass the reply on (found by the fuzzer on the fixes' main) -------


@miniagent
async def all_rows(ctx: InteractionContext) -> None:
    """Replies once it has every row (a branch that needs the whole source first)."""
    ctx.reply(" + ".join(str(message) for message in await ctx.messages))


@miniagent
async def per_row_twice(ctx: InteractionContext) -> None:
    """Passes PER_ROW's reply on twice (``ctx.reply(r)``, twice)."""
    reply = per_row.inquire(ctx.message_promises)
    ctx.reply(reply)
    ctx.reply(reply)


@miniagent
async def all_rows_piped(ctx: InteractionContext) -> None:
    """ALL_ROWS through reactive operators over this agent's input."""
    ctx.reply(reactivex.of(ctx.message_promises).pipe(resolve_messages(), all_rows.as_operator()))


@miniagent
async def diamond_twice(ctx: InteractionContext) -> None:
    shared = rows.inquire(count=2)
    ctx.reply(all_rows.inquire(shared))
    ctx.reply(per_row_twice.inquire(shared))


@miniagent
async def chain_twice(ctx: InteractionContext) -> None:
    """No diamond in sight: PER_ROW_TWICE over the rows (but ``[r, r]`` is one: a reply
    read by two copies that meet again in order)."""
    ctx.reply(per_row_twice.inquire(rows.inquire(count=2)))


@miniagent
async def diamond_piped(ctx: InteractionContext) -> None:
    shared = rows.inquire(count=2)
    ctx.reply(all_rows_piped.inquire(shared))
    ctx.reply(per_row.inquire(shared))


BRANCHES_THAT_PASS_IT_ON = {
    "a chain into a reply passed on twice": (
        chain_twice,
        ["row 0 seen", "row 1 seen", "row 0 seen", "row 1 seen"],
    ),
    "a branch passing its reply on twice": (
        diamond_twice,
        ["row 0 + row 1", "row 0 seen", "row 1 seen", "row 0 seen", "row 1 seen"],
    ),
    "a branch reading it through as_operator": (
        diamond_piped,
        ["row 0 + row 1", "row 0 seen", "row 1 seen"],
    ),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("shape", list(BRANCHES_THAT_PASS_IT_ON))
def test_replies_passed_on_twice_or_through_operators_end_at_once(
    shape: str, caller: Caller
) -> None:
    """Two rows at a high-water mark of 1 into an agent that passes its reply on twice (alone,
    or as the second branch of a diamond), or a diamond whose first branch reads the rows
    through a pipe of operators: found by the fuzzer after the fixes of issues 57 and 58
    (the first two hung there with a timer, a pipe or a complete-messages reader, and waited
    for the watch's second otherwise; the third hung so before the fixes and after)."""
    agent, expected = BRANCHES_THAT_PASS_IT_ON[shape]
    texts, elapsed = run_with_cut_off(_timed(caller, agent, 1), CUT_OFF)
    assert texts == expected
    assert elapsed <= AT_ONCE, f"{elapsed} s of the virtual clock, not at once"


# -- diamonds of every size and high-water mark ----------------------------------------------


@pytest.mark.parametrize("tokens", [False, True], ids=["whole", "tokens"])
@pytest.mark.parametrize("high_water_mark", [1, 2, 7, 64, 1024])
@pytest.mark.parametrize("count", [2, 65, 129, 1000])
def test_a_diamond_of_any_size_ends_at_once_with_a_timer_pending(
    count: int, high_water_mark: int, tokens: bool
) -> None:
    """The source replies 2 to 1,000 rows (below, at and past the high-water marks and their
    doublings); the branches read them whole or token by token; an unrelated timer waits."""
    agent = report.fork(count=count, tokens=tokens)
    texts, elapsed = run_with_cut_off(_timed("timer", agent, high_water_mark), CUT_OFF)
    assert texts == _expected(count)
    assert elapsed <= AT_ONCE, f"{elapsed} s of the virtual clock, not at once"


@pytest.mark.parametrize(
    ("caller", "high_water_mark"), [("timer", 1), ("pipe", 1024), ("pipeline", 64), ("timeout", 1)]
)
def test_a_diamond_of_20000_rows_ends_at_once(caller: Caller, high_water_mark: int) -> None:
    """20,000 rows under each caller of a loop that is never idle (a few seconds each)."""
    agent = report.fork(count=20_000)
    texts, elapsed = run_with_cut_off(_timed(caller, agent, high_water_mark), CUT_OFF)
    assert texts == _expected(20_000)
    assert elapsed <= AT_ONCE, f"{elapsed} s of the virtual clock, not at once"


# -- memory: what the shape needs, not what the source replies -------------------------------


@miniagent
async def first_row(ctx: InteractionContext) -> None:
    """Replies on its first input message only, and ends (it reads no more)."""
    async for promise in ctx.message_promises:
        ctx.reply(f"first: {await promise}")
        return


@miniagent
async def headline(ctx: InteractionContext, count: int = 200) -> None:
    """A diamond whose first branch needs one row: the rows stream on into the second."""
    shared = rows.inquire(count=count)
    ctx.reply(first_row.inquire(shared))
    ctx.reply(per_row.inquire(shared))


async def _streamed(
    agent: MiniAgent[..., Message],
    high_water_mark: int | None,
    replay_window: int | None,
    timer: bool = True,
) -> tuple[int, str]:
    """Read the replies message by message (with a timer pending), keeping only a digest.

    Returns:
        How many messages it read, and the digest of their texts (a line each).
    """
    loop = asyncio.get_running_loop()
    pending = loop.call_later(3600, _nothing) if timer else None
    digest = hashlib.sha256()
    count = 0
    try:
        async with MiniAgents(high_water_mark=high_water_mark, replay_window=replay_window):
            async for promise in agent.inquire("x"):
                digest.update(f"{await promise}\n".encode())
                count += 1
    finally:
        if pending is not None:
            pending.cancel()
    return count, digest.hexdigest()


def _digest(texts: list[str]) -> tuple[int, str]:
    return len(texts), hashlib.sha256("".join(f"{text}\n" for text in texts).encode()).hexdigest()


def _peak(
    agent: MiniAgent[..., Message],
    high_water_mark: int | None,
    replay_window: int | None = DEFAULT_REPLAY_WINDOW,
    timer: bool = True,
) -> tuple[tuple[int, str], int]:
    """What :func:`_streamed` read, and the peak of the memory allocated meanwhile (bytes)."""
    gc.collect()
    tracemalloc.start()
    try:
        read = run_with_cut_off(_streamed(agent, high_water_mark, replay_window, timer), CUT_OFF)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return read, peak


def test_a_diamond_keeps_no_more_in_memory_than_with_no_limits_at_all() -> None:
    """Issue 57's diamond needs a branch's worth of memory (the second branch's replies, or
    the rows, wait while the first branch is read): with a high-water mark of 1 and a timer
    pending it ends (at once) with a peak no higher than with no limit and no window."""
    agent = report.fork(count=5_000)
    expected = _digest(_expected(5_000))
    unbounded_read, unbounded = _peak(agent, None, None)
    assert unbounded_read == expected
    bounded_read, bounded = _peak(agent, 1)
    assert bounded_read == expected
    assert bounded <= unbounded, f"peak {bounded} B with a high-water mark, {unbounded} B without"


def test_a_diamond_whose_first_branch_needs_one_row_keeps_a_bounded_memory() -> None:
    """HEADLINE's first branch reads one row and ends, so the rows stream on into the second
    branch: ten times the rows, about the same peak (the window and the buffers)."""
    small_read, small = _peak(headline.fork(count=1_000), 64)
    assert small_read == _digest(["first: row 0", *_expected(1_000)[:1_000]])
    large_read, large = _peak(headline.fork(count=10_000), 64)
    assert large_read == _digest(["first: row 0", *_expected(10_000)[:10_000]])
    assert large <= 1.5 * small, f"peak {large} B for 10,000 rows, {small} B for 1,000"


def test_a_diamond_of_100000_rows_ends_at_once_with_a_timer_pending() -> None:
    """The largest source of issue 57's matrix, read message by message at the default
    high-water mark, with an unrelated timer pending."""
    (count, digest), elapsed = run_with_cut_off(
        _timed_streamed(report.fork(count=100_000), 64), CUT_OFF
    )
    assert (count, digest) == _digest(_expected(100_000))
    assert elapsed <= AT_ONCE, f"{elapsed} s of the virtual clock, not at once"


async def _timed_streamed(
    agent: MiniAgent[..., Message], high_water_mark: int | None
) -> tuple[tuple[int, str], float]:
    """What :func:`_streamed` read (a timer pending), and the seconds of the clock it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    read = await _streamed(agent, high_water_mark, DEFAULT_REPLAY_WINDOW)
    return read, loop.time() - start
