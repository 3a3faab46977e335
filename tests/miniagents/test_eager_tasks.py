"""The library under Python 3.12's ``asyncio.eager_task_factory`` (or its stand-in before 3.12).

An eager task runs its first step inside ``create_task``, so an agent runs inside
``inquire`` until it first waits, and a handler that never waits has ended when its task is
returned. Each test here runs a test of another module with the running loop's tasks started
eagerly; each failed so before the library handled eager tasks. (The topology fuzzer runs its
programs this way too; ``pytest --eager-tasks`` runs any test so.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.promising.lowlevel import running_tasks
from miniagents.testing import VirtualClock
from tests.fakes.eager_tasks import eager_tasks
from tests.miniagents import test_abandon, test_memory, test_persist
from tests.operators import test_operators
from tests.promising import test_backpressure

_PLAIN: list[Callable[[], Awaitable[None]]] = [
    # the replies were tracked after the run had ended, and were kept for good
    test_memory.test_a_long_lived_context_lets_go_of_the_replies_it_streamed,
    # a message replied in the agent's first step was not adopted: nobody cancelled it
    test_abandon.test_giving_up_on_the_whole_reply_stops_the_messages_it_replied_with,
    # the agent waited for room before its replies were dropped, and was never woken
    test_backpressure.test_replies_nobody_can_read_stop_pressing_at_once,
    # the agent never waits: it had replied and returned inside the subscription, so the
    # take(1) found its replies complete, and cancelling them (a no-op) stopped nothing; its
    # input kept the source's subscription
    test_operators.test_an_agent_operator_taken_from_gives_up_quietly_and_lets_go_of_its_source,
    test_operators.test_an_agent_operator_lets_go_of_its_source_when_its_agent_has_returned,
]


@pytest.mark.parametrize("test", _PLAIN, ids=lambda test: test.__name__)
async def test_passes_with_eager_tasks(test: Callable[[], Awaitable[None]]) -> None:
    with eager_tasks():
        await test()


async def test_giving_up_on_a_message_of_a_plain_agent_cancels_it_with_eager_tasks(
    virtual_clock: VirtualClock,
) -> None:
    with eager_tasks():
        await test_abandon.test_giving_up_on_a_message_of_a_plain_agent_cancels_the_agent(
            virtual_clock
        )


@pytest.mark.timeout(300)
async def test_the_persist_bookkeeping_stays_bounded_with_eager_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a handler's task that ended in its first step was registered all the same, and its
    # done callback kept it until the loop turned: 16 MB over this test's messages
    with eager_tasks():
        await test_persist.test_the_bookkeeping_stays_bounded_over_many_distinct_messages(
            monkeypatch
        )


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
