"""Constant memory: long pipelines keep a bounded number of messages, views copy nothing.

Memory is measured as the growth of the interpreter's allocated blocks
(``sys.getallocatedblocks``), sampled by the consumer as it reads: cheap enough for a
200,000-message pipeline to run in seconds. Keeping every message would cost tens of blocks
per message (the message, its promise, its core, their lists and strings); the bounds below
allow less than one block per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import tracemalloc
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from miniagents import (
    InteractionContext,
    MessagePromise,
    MessageSequencePromise,
    MiniAgents,
    miniagent,
)
from miniagents.errors import StreamCancelledError
from miniagents.promising.lowlevel import core_of, running_tasks


class Peak:
    """The most blocks allocated above the level at creation, over the samples taken."""

    def __init__(self) -> None:
        gc.collect()
        self.base = sys.getallocatedblocks()
        self.most = 0

    def sample(self) -> None:
        self.most = max(self.most, sys.getallocatedblocks() - self.base)


async def texts(n: int) -> AsyncIterator[str]:
    for index in range(n):
        yield f"message {index:07d}"


async def read_all(stage: MessageSequencePromise, peak: Peak) -> int:
    count = 0
    async for promise in stage:
        await promise
        count += 1
        if count % 500 == 0:
            peak.sample()
    return count


async def test_a_200000_message_sequence_pipeline_keeps_a_bounded_record() -> None:
    peak = Peak()
    stage = MessageSequencePromise(texts(200_000))
    for _ in range(3):
        stage = MessageSequencePromise.from_observable(stage.as_observable())
    assert await read_all(stage, peak) == 200_000
    assert peak.most < 100_000, peak.most


@miniagent
async def upper(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(str(await promise).upper())


async def test_an_agent_pipeline_the_user_holds_runs_in_bounded_memory() -> None:
    peak = Peak()
    async with MiniAgents(replay_window=100):
        first = upper.inquire(texts(50_000))
        second = upper.inquire(first)  # the user holds both stages
        assert await read_all(second, peak) == 50_000
        assert first.done
    assert peak.most < 50_000, peak.most


async def test_a_piped_agent_pipeline_runs_in_bounded_memory() -> None:
    peak = Peak()
    async with MiniAgents(replay_window=100):
        source = MessageSequencePromise(texts(50_000)).as_message_observable()
        piped = source.pipe(upper.as_operator(), upper.as_operator())
        assert await read_all(MessageSequencePromise.from_observable(piped), peak) == 50_000
    assert peak.most < 50_000, peak.most


async def tokens(n: int) -> AsyncIterator[str]:
    for index in range(n):
        yield f"t{index} "


def traced_peak(run: Coroutine[Any, Any, None]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        asyncio.run(run)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def read_tokens(stages: int) -> None:
    stage = MessagePromise.from_async_iterable(tokens(30_000))
    for _ in range(stages - 1):
        stage = MessagePromise.from_observable(stage.as_observable())
    assert len([token async for token in stage]) == 30_000


def test_views_of_a_message_share_its_record() -> None:
    one = traced_peak(read_tokens(1))
    twenty = traced_peak(read_tokens(20))
    assert twenty < 1.2 * one, (one, twenty)


@miniagent
async def _one_reply(ctx: InteractionContext) -> None:
    ctx.reply("done")


async def test_a_finished_agent_lets_go_of_its_task_while_its_replies_are_kept() -> None:
    async with MiniAgents():
        replies = [_one_reply.inquire() for _ in range(100)]
        tasks = set(running_tasks())
        assert len(tasks) == 100
        await asyncio.wait(tasks)  # (the library forgets each task before this returns)
        refs = [weakref.ref(task) for task in tasks]
        del tasks
        gc.disable()  # freed by reference counts alone: no cycle may be needed to free them
        try:
            assert [ref() for ref in refs] == [None] * 100  # the replies do not hold them
        finally:
            gc.enable()
        assert [str(await reply) for reply in replies] == ["done"] * 100


_ASYNCIO_OWN = {"Task", "coroutine", "Context", "Handle", "TaskStepMethWrapper", "ReferenceType"}
"""The objects an asyncio task makes (a raw task costs them too; the weak reference is
asyncio's set of all tasks), left out of the count below."""


async def test_a_pending_agent_keeps_only_its_replies_and_their_appender() -> None:
    # 10,000 agents may wait at once to run: each object one keeps is walked by every
    # collection meanwhile. Besides its task, one keeps its replies' promise, core and
    # record (a list), their flow and the appender: no bound method, no closure.
    async with MiniAgents():
        gc.collect()
        before = Counter(type(item).__name__ for item in gc.get_objects())
        replies = [_one_reply.inquire() for _ in range(100)]
        gc.collect()
        after = Counter(type(item).__name__ for item in gc.get_objects())
        made = {name: count for name, count in (after - before).items() if count >= 100}
        ours = {name: count for name, count in made.items() if name not in _ASYNCIO_OWN}
        assert ours == {
            "MessageSequencePromise": 100,
            "ReplayCore": 100,
            "list": ours.get("list", 0),
            "Flow": 100,
            "MessageSequenceAppender": 100,
        }
        assert 100 <= ours["list"] <= 101  # (the list holding the replies)
        assert [str(await reply) for reply in replies] == ["done"] * 100


@miniagent
async def _streaming_reply(ctx: InteractionContext) -> None:
    async def tokens() -> AsyncIterator[str]:
        for index in range(200):
            yield f" t{index}"

    ctx.reply(MessagePromise(tokens()))


@pytest.mark.usefixtures("lazy_and_eager_tasks")
async def test_a_long_lived_context_lets_go_of_the_replies_it_streamed() -> None:
    # A server keeps one context for its life: a reply read to its end and let go of must
    # be freed then, not when the context ends (it kept the last 1,024 streams before). With
    # eager tasks, the replies were tracked after the run had ended, and were kept for good.
    async with MiniAgents():
        refs: list[weakref.ref[object]] = []
        for _ in range(50):
            reply = _streaming_reply.inquire()
            async for message in reply:
                assert len(str(await message)) > 200
                refs.append(weakref.ref(core_of(message)))
            refs.append(weakref.ref(core_of(reply)))
            del reply, message
        gc.collect()
        assert [ref() for ref in refs] == [None] * 100


@miniagent
async def _gated(ctx: InteractionContext, gate: asyncio.Event) -> None:
    await gate.wait()
    ctx.reply("late")


@miniagent
async def _relaying(ctx: InteractionContext, gate: asyncio.Event) -> None:
    ctx.reply(["first", _gated.inquire(gate=gate)])  # it returns while these still stream


async def test_replies_that_end_after_their_agent_returned_are_let_go_of_at_their_end() -> None:
    # The context is told of an agent's replies by the agent's run, at its end; replies
    # still streaming then (here: another agent's, passed on) are followed to their end.
    async with MiniAgents():
        refs: list[weakref.ref[object]] = []
        for _ in range(20):
            gate = asyncio.Event()
            reply = _relaying.inquire(gate=gate)
            iterator = aiter(reply)
            assert str(await anext(iterator)) == "first"  # the agent has run
            for _ in range(3):
                await asyncio.sleep(0)  # _relaying's task ends; its replies still stream
            assert not core_of(reply).done
            gate.set()
            assert [str(await message) async for message in iterator] == ["late"]
            refs.append(weakref.ref(core_of(reply)))
            del reply, iterator
        gc.collect()
        assert [ref() for ref in refs] == [None] * 20


@miniagent
async def _stalling(ctx: InteractionContext, gate: asyncio.Event) -> None:
    ctx.reply("x" * 1000)
    ctx.reply(MessagePromise.from_async_iterable(_stalled_tokens(gate)))
    await gate.wait()  # never set: every reader gives up


async def _stalled_tokens(gate: asyncio.Event) -> AsyncIterator[str]:
    yield "a token"
    await gate.wait()
    yield "never"


async def test_a_long_lived_context_lets_go_of_the_replies_given_up_on() -> None:
    # A server whose clients time out: each reply given up on (cancelled) must be freed
    # then; a cancellation is never reported as a lost error, so nothing needs it kept.
    async with MiniAgents():
        refs: list[weakref.ref[object]] = []
        gate = asyncio.Event()
        for _ in range(50):
            reply = _stalling.inquire(gate=gate)
            iterator = aiter(reply)
            await anext(iterator)
            message = await anext(iterator)
            refs += [weakref.ref(core_of(message)), weakref.ref(core_of(reply))]
            waiting = asyncio.ensure_future(message.aresolve())
            await asyncio.sleep(0)  # it waits for the stalled message now
            waiting.cancel()  # the only reader gives up
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            assert waiting.cancelled()
            del reply, iterator, message, waiting
        stopping = running_tasks()  # the last agent and its tokens' task, being cancelled
        done, pending = await asyncio.wait(stopping, timeout=10) if stopping else (None, ())
        assert not pending
        del stopping, done  # (the cancelled tasks' errors hold their last frames, and cores)
        gc.collect()
        # the context keeps none of them: before, every one of the 100 was kept until the
        # context's exit
        assert sum(ref() is not None for ref in refs) == 0


@miniagent(start_asap=False)
async def _lazy_summary(ctx: InteractionContext) -> None:
    ctx.reply(f"summary of {len(str(await ctx.message_promises))} chars")


async def test_a_long_lived_context_lets_go_of_lazy_replies_dropped_unread() -> None:
    # A lazy agent nobody consumes never runs: its replies, dropped, must be freed then
    # (the context kept each, with its input, until its exit).
    async with MiniAgents():
        refs: list[weakref.ref[object]] = []
        for number in range(40):
            reply = _lazy_summary.inquire(f"doc {number} " + "x" * 1000)
            if number % 2:
                assert str(await reply) == f"summary of {len(str(number)) + 1005} chars"
            refs.append(weakref.ref(core_of(reply)))
            del reply
        stopping = running_tasks()
        _, pending = await asyncio.wait(stopping, timeout=10) if stopping else (None, ())
        assert not pending
        gc.collect()
        assert [ref() for ref in refs] == [None] * 40


async def test_a_lazy_reply_still_held_is_cancelled_after_an_error_in_its_context() -> None:
    held: list[MessageSequencePromise] = []

    async def failing() -> None:
        async with MiniAgents():
            held.append(_lazy_summary.inquire("never read"))
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await failing()
    with pytest.raises(StreamCancelledError):
        await held[0]  # not run after the context: cancelled with it


@miniagent
async def _session(ctx: InteractionContext) -> None:
    async for message in ctx.message_promises:
        ctx.reply(f"echo {await message}")


async def test_a_call_dropped_unfinished_ends_its_input_and_its_agent() -> None:
    # A server's client went away mid-session and nobody called finish(): the agent must
    # not wait (and be kept) until the context's exit.
    async with MiniAgents():
        call = _session.initiate_inquiry()
        call.send_message("hello")
        replies = call.reply_sequence(finish_call=False)
        del call  # dropped: nobody can send more
        gc.collect()
        assert [str(reply) for reply in await asyncio.wait_for(replies.aresolve(), 10)] == [
            "echo hello"
        ]
