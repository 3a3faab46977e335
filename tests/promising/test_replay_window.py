"""The replay window: full replay within it, only what live consumers need past it.

Streams here are made under small limits (``stream_limits``), so that a few pieces pass
the window; a message's tokens are exempt and keep everything.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
from reactivex import operators as ops

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.errors import MiniAgentsError, ReplayWindowError
from miniagents.messages import MessagePromise, MessageSequenceAppender, MessageSequencePromise
from miniagents.promising import StreamedPromise
from miniagents.promising.limits import (
    DEFAULT_HIGH_WATER_MARK,
    DEFAULT_REPLAY_WINDOW,
    StreamLimits,
    stream_limits,
)


@contextmanager
def limits(window: int | None, high_water: int | None = None) -> Iterator[None]:
    token = stream_limits.set(StreamLimits(window, high_water))
    try:
        yield
    finally:
        stream_limits.reset(token)


async def numbers(n: int) -> AsyncIterator[int]:
    for number in range(n):
        yield number


async def total(pieces: tuple[int, ...]) -> int:
    return sum(pieces)


async def collect(promise: StreamedPromise[int, int]) -> list[int]:
    return [n async for n in promise]


def stream(n: int) -> StreamedPromise[int, int]:
    return StreamedPromise(numbers(n), resolver=total)


async def test_within_the_window_every_consumer_gets_every_piece() -> None:
    with limits(5):
        promise = stream(5)
        early = aiter(promise)
        assert await anext(early) == 0
        together = await asyncio.gather(*(collect(promise) for _ in range(3)))
        assert together == [[0, 1, 2, 3, 4]] * 3
        assert [n async for n in early] == [1, 2, 3, 4]
        assert [n async for n in promise] == [0, 1, 2, 3, 4]  # late
        assert await promise == 10
        assert await promise.as_observable().pipe(ops.to_list()) == [0, 1, 2, 3, 4]


async def test_past_the_window_a_late_consumer_gets_a_clear_error() -> None:
    with limits(5):
        promise = stream(20)
        assert [n async for n in promise] == list(range(20))  # the only consumer: fine
    with pytest.raises(ReplayWindowError) as raised:
        [n async for n in promise]
    message = str(raised.value)
    assert "replay window of 5 pieces" in message
    assert "this StreamedPromise" in message
    assert "MiniAgents(replay_window=None)" in message
    assert isinstance(raised.value, MiniAgentsError)
    with pytest.raises(ReplayWindowError):
        await promise
    errors: list[BaseException] = []
    promise.as_observable().subscribe(on_error=errors.append)
    assert [type(error) for error in errors] == [ReplayWindowError]


async def test_a_live_iterator_keeps_what_it_still_needs() -> None:
    with limits(4, high_water=None):
        promise = stream(30)
        slow = aiter(promise)  # exists from the start, reads later
        assert [n async for n in promise] == list(range(30))
        assert [n async for n in slow] == list(range(30))


async def test_an_await_of_the_whole_begun_before_the_release_gets_everything() -> None:
    with limits(4, high_water=None):
        promise = stream(30)
        whole = asyncio.ensure_future(promise.aresolve())
        await asyncio.sleep(0)  # the await has begun
        assert [n async for n in promise] == list(range(30))
        assert await whole == sum(range(30))


async def test_no_window_keeps_everything() -> None:
    with limits(None):
        promise = stream(3000)
        assert len([n async for n in promise]) == 3000
        assert len([n async for n in promise]) == 3000
        assert await promise == sum(range(3000))


async def test_pieces_nobody_was_given_are_kept() -> None:
    with limits(3):
        appender = MessageSequenceAppender()
        for index in range(10):  # pushed, past the window, before any consumer
            appender.append(f"m{index}")
        appender.complete()
        sequence = appender.sequence
        assert [str(promise) async for promise in sequence] == [f"m{i}" for i in range(10)]


async def test_a_message_keeps_all_its_tokens_whatever_the_window() -> None:
    async def tokens() -> AsyncIterator[str]:
        for index in range(50):
            yield f"t{index} "

    with limits(3, high_water=2):
        promise = MessagePromise.from_async_iterable(tokens())
        assert len([token async for token in promise]) == 50
        assert len([token async for token in promise]) == 50  # late: all replayed
        assert (await promise).text == "".join(f"t{i} " for i in range(50))


class Piece:
    """An object the garbage collector can be asked about."""


async def test_a_stream_nobody_can_read_keeps_nothing_past_the_window() -> None:
    made: list[weakref.ref[Piece]] = []
    release = asyncio.Event()

    async def pieces() -> AsyncIterator[Piece]:
        for _ in range(20):
            piece = Piece()
            made.append(weakref.ref(piece))
            yield piece
        await release.wait()

    async def count(pieces: tuple[Piece, ...]) -> int:
        return len(pieces)

    with limits(5, high_water=None):
        promise = StreamedPromise(pieces(), resolver=count)
        promise.start()
        del promise  # nobody can consume it any more
        for _ in range(5):
            await asyncio.sleep(0)  # the producer runs to its wait
        gc.collect()
        assert len(made) == 20
        assert all(ref() is None for ref in made[:19])
        release.set()
        for _ in range(3):
            await asyncio.sleep(0)


async def test_the_default_window_and_high_water_mark() -> None:
    assert StreamLimits() == StreamLimits(DEFAULT_REPLAY_WINDOW, DEFAULT_HIGH_WATER_MARK)
    assert stream_limits.get() == StreamLimits()
    with pytest.raises(ValueError, match="replay_window must be a whole number of at least 1"):
        StreamLimits(replay_window=0)
    with pytest.raises(ValueError, match="high_water_mark must be a whole number of at least 1"):
        MiniAgents(high_water_mark=-1)


async def test_a_context_sets_the_limits_and_an_inner_one_inherits_them() -> None:
    async with MiniAgents(replay_window=7):
        assert stream_limits.get() == StreamLimits(7, DEFAULT_HIGH_WATER_MARK)
        async with MiniAgents(high_water_mark=3):
            assert stream_limits.get() == StreamLimits(7, 3)
            async with MiniAgents(replay_window=None):
                assert stream_limits.get() == StreamLimits(None, 3)
        assert stream_limits.get() == StreamLimits(7, DEFAULT_HIGH_WATER_MARK)
    assert stream_limits.get() == StreamLimits()


@miniagent
async def upper(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(str(await promise).upper())


async def test_the_replies_of_an_agent_past_the_window_name_the_agent() -> None:
    async with MiniAgents(replay_window=5):
        reply = upper.inquire([f"m{index}" for index in range(12)])
        assert len([promise async for promise in reply]) == 12
        with pytest.raises(ReplayWindowError, match="the replies of the agent UPPER"):
            await reply
        with pytest.raises(ReplayWindowError):
            str(reply)


async def test_a_stage_held_by_the_user_is_released_behind_the_next_stage() -> None:
    async with MiniAgents(replay_window=5, high_water_mark=2):
        first = upper.inquire([f"m{index}" for index in range(30)])
        second = upper.inquire(first)
        assert [str(p) async for p in second] == [f"M{index}" for index in range(30)]
        with pytest.raises(ReplayWindowError):
            [p async for p in first]  # consumed by the second stage, released past the window
    async with MiniAgents(replay_window=None, high_water_mark=2):
        first = upper.inquire([f"m{index}" for index in range(30)])
        second = upper.inquire(first)
        assert len([p async for p in second]) == 30
        assert len(await first) == 30  # every piece kept


async def test_a_sequence_made_of_a_released_stream_fails_at_its_place() -> None:
    with limits(3):
        appender = MessageSequenceAppender()
        source = appender.sequence
        for index in range(6):
            appender.append(f"m{index}")
        appender.complete()
        assert len([p async for p in source]) == 6
        combined = MessageSequencePromise(["before", source])
        seen: list[str] = []

        async def read() -> None:
            async for promise in combined:
                seen.append(str(promise))

        with pytest.raises(ReplayWindowError):
            await read()
        assert seen == ["before"]


# -- a reply passed on more than once (issue 58, item 1; found by the topology fuzzer) ------


@miniagent
async def producer(ctx: InteractionContext, count: int) -> None:
    for index in range(count):
        ctx.reply(f"p{index}")


@miniagent
async def pass_on_twice(ctx: InteractionContext, count: int, how: str) -> None:
    reply = producer.inquire(count=count)
    if how == "[r, r]":
        ctx.reply([reply, reply])
    else:
        ctx.reply(reply)
        ctx.reply(reply)


@pytest.mark.parametrize("how", ["[r, r]", "reply(r) twice", "MessageSequencePromise([r, r])"])
@pytest.mark.parametrize(
    ("window", "count"), [(8, 200), (DEFAULT_REPLAY_WINDOW, 1_100)], ids=["8-200", "default-1100"]
)
async def test_a_reply_passed_on_twice_is_read_in_full_by_both_copies_past_the_window(
    how: str, window: int, count: int
) -> None:
    """Each copy was passed on before the reply produced anything: each reads it from its
    first message, however far past the window the reply goes (it failed with a
    ReplayWindowError on the second copy past 1,024 messages)."""
    expected = [f"p{index}" for index in range(count)] * 2
    async with MiniAgents(replay_window=window):
        if how == "MessageSequencePromise([r, r])":  # (outside any agent)
            reply = producer.inquire(count=count)
            both = MessageSequencePromise([reply, reply])
        else:
            both = pass_on_twice.inquire(count=count, how=how)
        assert [str(promise) async for promise in both] == expected


@miniagent
async def echo_each(ctx: InteractionContext) -> None:
    async for promise in ctx.message_promises:
        ctx.reply(f"{await promise} seen")


@miniagent
async def two_readers(ctx: InteractionContext, count: int) -> None:
    """One reply passed on to two agents, their replies in order (issue 57's diamond)."""
    shared = producer.inquire(count=count)
    ctx.reply(echo_each.inquire(shared))
    ctx.reply(echo_each.inquire(shared))


async def test_a_reply_two_agents_get_is_read_by_both_in_full_with_no_high_water_mark() -> None:
    """With no high-water mark the producer replies its 2,000 messages before either agent
    has started reading: both were given the reply before it produced anything, so both
    read it from its first message (the second failed with a ReplayWindowError)."""
    async with MiniAgents(high_water_mark=None):
        texts = [str(message) for message in await two_readers.inquire(count=2_000)]
    assert texts == [f"p{index} seen" for index in range(2_000)] * 2
