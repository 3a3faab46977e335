"""A cancelled sync tool: its thread sees its call's flag set, and stops early.

Python cannot stop a thread; the function reads ``tool_cancellation()`` and returns. Each
test orders its steps with thread events, never sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from typing import cast

import pytest

from miniagents import (
    InteractionContext,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    miniagent,
)
from miniagents.errors import ArgumentError, StreamCancelledError
from miniagents.ext.llm import LLMCall, fallback_agent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import (
    ToolCallMessage,
    ToolCancellation,
    as_tool,
    run_tool_call,
    tool_cancellation,
)
from miniagents.testing import scripted_agent

SAFETY = 10.0
"""Seconds before a wait that would hang fails the test (never reached when the code works)."""


class SlowTool:
    """A sync tool function that works in steps until its call is cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.returned = threading.Event()
        self.flags: list[ToolCancellation] = []
        self.steps = 0
        self.thread: threading.Thread | None = None

    def crawl(self, site: str) -> str:
        """Crawl a site, page after page."""
        cancellation = tool_cancellation()
        self.flags.append(cancellation)
        self.thread = threading.current_thread()
        self.started.set()
        try:
            while self.steps < 20_000:  # bounded: a flag never set fails the test, not hangs
                if cancellation.wait(0.001):  # a step of work, or the cancellation
                    return f"stopped after {self.steps} steps"
                self.steps += 1
            return "never cancelled"
        finally:
            self.returned.set()


async def wait_in_thread(event: threading.Event) -> bool:
    return await asyncio.to_thread(event.wait, SAFETY)


async def test_cancelling_the_call_sets_the_flag_and_the_thread_returns() -> None:
    slow = SlowTool()
    call = ToolCallMessage(tool_name="crawl", arguments={"site": "example.org"}, call_id="c1")
    async with MiniAgents():
        result = run_tool_call(as_tool(slow.crawl), call)
        assert await wait_in_thread(slow.started)
        assert not slow.flags[0].cancelled  # running, not cancelled yet
        result.cancel()
        with pytest.raises(StreamCancelledError):
            await result
        assert await wait_in_thread(slow.returned)  # the function saw the flag and returned
    assert slow.flags[0].wait(0)  # set (mypy narrowed .cancelled to False above)
    assert slow.thread is not threading.current_thread()  # it ran in a worker thread


async def test_cancelling_the_agents_caller_stops_its_sync_tool() -> None:
    slow = SlowTool()
    agent = offline_agent.fork(
        token_delay=0,
        tools=[slow.crawl],
        reply=one_per_call(CallTool("crawl", {"site": "example.org"}), "Done."),
    )
    async with MiniAgents():
        caller = asyncio.ensure_future(agent.inquire("Crawl example.org").aresolve())
        assert await wait_in_thread(slow.started)
        caller.cancel()  # the caller gives up: the agent's tool call is cancelled
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await wait_in_thread(slow.returned)
    assert slow.flags[0].cancelled


async def test_a_call_that_ends_leaves_its_flag_unset() -> None:
    seen: list[ToolCancellation] = []

    def quick(x: int) -> int:
        """Double a number."""
        seen.append(tool_cancellation())
        return 2 * x

    call = ToolCallMessage(tool_name="quick", arguments={"x": 2}, call_id="c1")
    async with MiniAgents():
        result = await run_tool_call(as_tool(quick), call)
    assert str(result) == "4"
    assert not seen[0].cancelled


@pytest.mark.parametrize("timeout", [float("nan"), -1, "5", True])
def test_a_wait_of_no_number_of_seconds_is_refused(timeout: object) -> None:
    # (was: NaN and -1 returned at once, so `while not flag.wait(step)` spun; "5" was a
    # TypeError from threading)
    with pytest.raises(ArgumentError, match=r"^ToolCancellation.wait needs timeout to be a"):
        tool_cancellation().wait(cast(float, timeout))


@pytest.mark.parametrize("timeout", [float("inf"), 1e300])
def test_a_wait_of_inf_seconds_waits_for_the_cancellation(timeout: float) -> None:
    flag = ToolCancellation()
    started = threading.Event()
    outcome: list[object] = []

    def wait() -> None:
        started.set()
        try:
            outcome.append(flag.wait(timeout))
        except Exception as error:  # (was: OverflowError: timestamp out of range for ...)
            outcome.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    started.wait()
    flag.cancel()
    thread.join()
    assert outcome == [True]
    assert ToolCancellation().wait(0) is False


def test_outside_a_tool_call_the_flag_is_never_set() -> None:
    flag = tool_cancellation()
    assert not flag.cancelled
    assert flag.wait(0) is False
    flag.cancel()
    assert flag.wait(0) is True
    assert not tool_cancellation().cancelled  # a new one each time, outside a call
    assert repr(flag) == "<ToolCancellation cancelled=True>"


class GatedTool:
    """An async tool that works until the test opens its gate, or its call is cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.stopped = asyncio.Event()
        self.cancelled = False

    async def crawl(self, site: str) -> str:
        """Crawl a site."""
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.stopped.set()
        return f"crawled {site}"


async def read_tokens(reply: MessageSequencePromise) -> None:
    """The README's loop: each message of ``reply``, token by token."""
    async for message in reply:
        async for _ in message:
            pass


def passed_on(agent: MiniAgent[[]], how: str) -> MiniAgent[[]]:
    """``agent`` as it is, behind ``fallback_agent``, or replied on by an agent of its own."""
    if how == "fallback":
        return cast("MiniAgent[[]]", fallback_agent(agent))
    if how == "relay":

        @miniagent
        async def relay(ctx: InteractionContext, /) -> None:
            ctx.reply(agent.inquire(ctx.messages))

        return relay
    return agent


@pytest.mark.parametrize("how", ["directly", "fallback", "relay"])
@pytest.mark.parametrize("reader", ["alone", "with a reader of the whole reply"])
async def test_a_token_reader_giving_up_in_a_tool_result_stops_the_tool_loop(
    reader: str, how: str
) -> None:
    tool = GatedTool()
    calls: list[LLMCall] = []
    agent = passed_on(
        scripted_agent(
            CallTool("crawl", {"site": "example.org"}), "Done.", tools=[tool.crawl], calls=calls
        ),
        how,
    )
    async with MiniAgents():
        reply = agent.inquire("Crawl example.org")
        whole = asyncio.ensure_future(reply.aresolve()) if reader != "alone" else None
        tokens = asyncio.ensure_future(read_tokens(reply))
        await asyncio.wait_for(tool.started.wait(), SAFETY)  # the reader is in its result
        tokens.cancel()  # e.g. its timeout: it gives up inside the tool's result
        with pytest.raises(asyncio.CancelledError):
            await tokens
        if whole is None:  # nobody reads the reply: the tool stops, the model is not asked
            await asyncio.wait_for(tool.stopped.wait(), SAFETY)
            assert tool.cancelled
        else:  # the reader of the whole reply still gets all of it
            tool.gate.set()
            assert [str(message) for message in await whole][-1] == "Done."
            assert not tool.cancelled
    assert len(calls) == (1 if whole is None else 2)
