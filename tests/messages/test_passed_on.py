"""A reply passed on is a consumer from its first piece, whatever the replay window.

``ctx.reply([r, r])`` (or ``ctx.reply(r)`` twice, or ``MessageSequencePromise([r, r])``)
reads ``r`` twice, in order: the second copy waits behind the first, which reads ``r`` to
its end. It was passed on before ``r`` produced anything, so ``r`` keeps every piece for it
until it is read (or given up), past the window too; a producer that waits for room
(``areply``) is a diamond then, which the deadlock watch relieves.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.messages import MessagePromise, MessageSequencePromise
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.lowlevel import core_of, running_tasks
from miniagents.testing.virtual_time import run_with_virtual_time

_COUNT = 1100  # past the default replay window (1,024)


@miniagent
async def producer(ctx: InteractionContext, paced: bool = False) -> None:
    for index in range(_COUNT):
        if paced:
            await ctx.areply(str(index))
        else:
            ctx.reply(str(index))


@miniagent
async def twice(ctx: InteractionContext, way: str, paced: bool) -> None:
    reply = producer.inquire(paced=paced)
    if way == "in one list":
        ctx.reply([reply, reply])
    else:
        ctx.reply(reply)
        ctx.reply(reply)


_TWICE = [str(index) for index in range(_COUNT)] * 2


@pytest.mark.parametrize("paced", [False, True], ids=["reply", "areply"])
@pytest.mark.parametrize("way", ["in one list", "in two replies"])
def test_a_reply_passed_on_twice_is_read_twice_in_full(way: str, paced: bool) -> None:
    async def main() -> list[str]:
        async with MiniAgents():
            return [str(message) for message in await twice.inquire(way=way, paced=paced)]

    assert run_with_virtual_time(main()) == _TWICE


@pytest.mark.parametrize("paced", [False, True], ids=["reply", "areply"])
def test_a_sequence_of_one_reply_twice_outside_any_agent_is_read_in_full(paced: bool) -> None:
    async def main() -> list[str]:
        async with MiniAgents():
            reply = producer.inquire(paced=paced)
            return [str(message) for message in await MessageSequencePromise([reply, reply])]

    assert run_with_virtual_time(main()) == _TWICE


def test_the_second_copy_lets_go_once_it_is_read_and_the_window_applies_again() -> None:
    """The hold lasts only while the copy waits: read, the stream releases as before."""

    async def main() -> tuple[int, int, int]:
        async with MiniAgents(replay_window=8):
            reply = producer.inquire()
            both = MessageSequencePromise([reply, reply])
            count = 0
            async for _message in both:
                count += 1
            flow = core_of(reply).flow
            assert flow is not None
            held = flow.queued
            del both
            gc.collect()
            return count, held, flow.queued

    count, held_after_reading, held_at_the_end = run_with_virtual_time(main())
    assert count == 2 * _COUNT
    assert held_after_reading == 0  # (the second copy followed it: no hold left)
    assert held_at_the_end == 0


@miniagent
async def endless(ctx: InteractionContext) -> None:
    index = 0
    while True:
        await ctx.areply(str(index))
        index += 1


def test_a_queued_copy_given_up_lets_go_and_stops_its_producer() -> None:
    """Giving up on the sequence gives up the copy that waited too (no hold, no task left)."""

    async def main() -> int:
        async with MiniAgents(replay_window=8, high_water_mark=4):
            reply = endless.inquire()
            both = MessageSequencePromise([reply, reply])
            read = 0
            async for _message in both:
                read += 1
                if read == 20:
                    both.cancel()
                    break
            flow = core_of(reply).flow
            assert flow is not None
            return flow.queued

    assert run_with_virtual_time(main()) == 0


@pytest.mark.parametrize(
    ("way", "ended"),
    [("in one list", False), ("in two replies", False), ("in one list", True)],
    ids=["in one list", "in two replies", "in one list, ended"],
)  # (replied twice, an ended reply's error ends the replies at the first: nothing to read)
def test_a_failed_reply_passed_on_twice_keeps_its_streaming_message_for_a_later_reader(
    way: str, ended: bool
) -> None:
    """The first copy's error stops the flattening; the second copy, the same stream, is
    not given up on: its message is in the reply already, for a reader that comes later.

    ``ended``: the reply has ended (its message still streaming) when it is passed on, so
    each copy is queued as its message and its error, the second copy's message the very
    one passed on already, and nobody reads the replies yet (found by the topology
    fuzzer's deep run with eager tasks, where agents run to their end inside ``inquire``).
    """
    gate = asyncio.Event()
    replied = asyncio.Event()

    async def two_tokens() -> AsyncIterator[str]:
        yield "b:"
        await gate.wait()
        yield "0"

    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(two_tokens()))
        raise ValueError("The failing agent failed.")

    @miniagent
    async def passes_twice(ctx: InteractionContext) -> None:
        reply = failing.inquire()
        if ended:
            for _ in range(20):  # the failing agent runs to its end
                await asyncio.sleep(0)
            assert core_of(reply).done
        if way == "in one list":
            ctx.reply([reply, reply])
        else:
            ctx.reply(reply)
            ctx.reply(reply)
        replied.set()

    async def main() -> tuple[list[str], BaseException | None]:
        read: list[str] = []
        async with MiniAgents():
            replies = passes_twice.inquire()
            await replied.wait()  # every agent runs to its end before anyone reads
            gate.set()
            try:
                async for promise in replies:
                    read.append(str(await promise))
            except ValueError as error:
                return read, error
        return read, None

    read, error = run_with_virtual_time(main())
    assert read == ["b:0"]
    assert isinstance(error, ValueError)


# -- a plain sequence given up on while a copy of a message it holds still waits in it -------


@pytest.mark.parametrize("first", ["at the front", "flattened"])
@pytest.mark.parametrize("given_up", ["cancelled", "its reader gone"])
async def test_a_sequence_given_up_with_a_queued_copy_keeps_the_message_for_its_holders(
    first: str, given_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``[m, slow, m]``, ``m`` still streaming: the sequence is given up on while it follows
    ``slow``, the second copy of ``m`` queued behind it. ``m`` was passed on already (its
    reader took it), so it is not given up on with the queued copy: it streams on for its
    holders (that reader, another sequence, whoever awaits it), nothing waits for nothing,
    no error is lost, no task is left. ``first``: ``m`` recorded at the sequence's start
    (the ready front), or passed on by its flattening (behind an async part that ended).
    """
    gate = asyncio.Event()
    slow_started = asyncio.Event()
    slow_closed = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "b:"
        await gate.wait()
        yield "0"

    async def early() -> AsyncIterator[str]:
        yield "early"

    async def slow() -> AsyncIterator[str]:
        slow_started.set()
        try:
            await asyncio.Event().wait()  # never set: the sequence waits here
            yield "never"
        finally:
            slow_closed.set()

    async with MiniAgents():
        message = MessagePromise.from_async_iterable(tokens())
        also = MessageSequencePromise([message])  # another holder
        before = [message] if first == "at the front" else [early(), message]
        both = MessageSequencePromise([*before, slow(), message])
        reader = aiter(both)
        taken = [await anext(reader) for _ in before]
        assert taken[-1] is message
        waiting = asyncio.ensure_future(anext(reader))  # its reader waits behind slow
        await slow_started.wait()
        assert not waiting.done()
        if given_up == "cancelled":
            both.cancel()
            with pytest.raises(StreamCancelledError):
                await waiting
        else:
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await reader.aclose()
        await slow_closed.wait()  # the part followed was let go
        assert not core_of(message).done  # still streaming, not given up on
        gate.set()
        assert str(await message) == "b:0"
        assert str(await taken[-1]) == "b:0"
        assert [str(read) for read in await also] == ["b:0"]
        del both, reader, waiting
    assert running_tasks() == frozenset()
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
