"""The library under Python 3.12's ``asyncio.eager_task_factory`` (or its stand-in before 3.12).

An eager task runs its first step inside ``create_task``, so an agent runs inside
``inquire`` until it first waits, and a handler that never waits has ended when its task is
returned. The tests here are of that; the tests of other modules that failed with eager tasks
before the library handled them run both ways in their own module (the ``lazy_and_eager_tasks``
fixture). (The topology fuzzer runs its programs this way too; ``pytest --eager-tasks`` runs
any test so.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.promising.lowlevel import running_tasks
from tests.fakes.eager_tasks import eager_tasks


async def test_an_agent_runs_inside_inquire_until_it_first_waits() -> None:
    events: list[str] = []
    go = asyncio.Event()

    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        events.append("first step")
        ctx.reply("before the wait")
        await go.wait()
        events.append("resumed")
        ctx.reply("after it")

    async with MiniAgents():
        with eager_tasks():
            replies = agent.inquire()
            events.append("inquire returned")
            assert len(running_tasks()) == 1  # it waits: its task is scheduled now
            go.set()
            assert [str(message) for message in await replies] == ["before the wait", "after it"]
    assert events == ["first step", "inquire returned", "resumed"]
    assert not running_tasks()


async def test_an_agent_that_never_waits_has_ended_when_inquire_returns() -> None:
    @miniagent
    async def agent(ctx: InteractionContext) -> None:
        ctx.reply("at once")

    async with MiniAgents():
        with eager_tasks():
            replies = agent.inquire()
            assert not running_tasks()  # its task ended in its first step: nothing is kept
            assert [str(message) for message in await replies] == ["at once"]


async def test_giving_up_on_an_unread_input_starts_none_of_what_it_holds() -> None:
    # giving up on an interaction's own input started it (to give up what it follows),
    # which ran a lazy agent's first step and a user's generator under eager tasks
    events: list[str] = []

    @miniagent(start_asap=False)
    async def lazy(ctx: InteractionContext) -> None:
        events.append("lazy started")
        ctx.reply("never read")

    async def tokens() -> AsyncIterator[str]:
        events.append("generator ran")
        yield "never read"

    @miniagent
    async def ignoring(ctx: InteractionContext) -> None:
        await asyncio.Event().wait()  # never reads its input

    async with MiniAgents():
        with eager_tasks():
            reply = ignoring.inquire([lazy.inquire(), tokens()])
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reply.aresolve(), 0.01)
    assert events == []


class _FinalizingLoop(asyncio.SelectorEventLoop):
    """A loop on which other code schedules a callback while a task is being made.

    As the garbage collector does when it runs a finalizer then (a dropped stream's
    ``__del__`` schedules its flow's reconsideration): a new future asks ``get_debug``.
    """

    def __init__(self) -> None:
        self.finalizer_armed = False  # (before the loop's own making, which asks get_debug)
        self.finalized: list[str] = []
        super().__init__()

    def get_debug(self) -> bool:
        if self.finalizer_armed:
            self.finalizer_armed = False
            self.call_soon(self.finalized.append, "finalizer")
        return super().get_debug()


def test_a_callback_scheduled_while_an_eager_task_is_made_runs_and_the_task_starts() -> None:
    # the stand-in took every call_soon during the task's making for the task's first
    # step: a finalizer's callback then failed (TypeError) or was run as the step, and the
    # task was never started (an agent's run lost: a deadlock in the deep fuzzer's run)
    loop = _FinalizingLoop()
    steps: list[str] = []

    async def first_step() -> None:
        steps.append("task")

    async def main() -> None:
        with eager_tasks():
            loop.finalizer_armed = True
            task = asyncio.get_running_loop().create_task(first_step())
            assert steps == ["task"]  # (eagerly: inside create_task)
            await task
        await asyncio.sleep(0)
        assert loop.finalized == ["finalizer"]

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
