"""Why a stream was cancelled: the reason its canceller gave, or the cause of its producer's end.

A reason given to ``ReplayCore.cancel(reason)`` is the stream's own (its ``reason``): its
readers get it, and so do the streams it holds (an agent's messages) that giving up on it
cancels, whenever that happens (in a step queued past ``NESTED`` streams fed inside one
another, after ``cancel`` returned, too). A stream whose producer (a task) was cancelled
says what is known of why: that reason, or the cancel's message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex.subject import Subject

from miniagents import (
    InteractionContext,
    MessagePromise,
    MessageSequencePromise,
    MiniAgents,
    Promise,
    StreamedPromise,
    miniagent,
)
from miniagents.errors import StreamCancelledError
from miniagents.messages import MessageTokenAppender
from miniagents.miniagents.lowlevel import start_task
from miniagents.promising._giving_up import check_abandoned
from miniagents.promising._replay import NESTED
from miniagents.promising._sources import from_async_iterable
from miniagents.promising.lowlevel import CancelReason, ReplayCore, core_of, running_tasks

REASON = "This stream was cancelled for a reason its canceller gave. Do it differently."


def _message_of(holder: ReplayCore[Any]) -> ReplayCore[str]:
    """A running stream held by ``holder`` (a message of replies), cancelled when given up."""
    message: ReplayCore[str] = ReplayCore(open_ended=True)
    message.wanted_by = (holder,)
    message.on_abandoned = message.cancel_now  # (as an agent's appender does)
    return message


async def test_a_stream_given_up_in_a_queued_step_tells_its_holders_reason() -> None:
    # The cancel runs inside a delivery (a forwarded piece), so the end of the streams fed by
    # the cancelled one is queued past NESTED of them and runs after cancel() has returned;
    # the message that end gives up on still tells the reason its holder was cancelled for.
    replies: ReplayCore[Any] = ReplayCore(open_ended=True)
    message = _message_of(replies)
    chain = [replies]
    for _ in range(NESTED + 2):
        chain.append(ReplayCore(source=chain[-1].observable()))
    chain[-1].start()  # (each follows the one before it)
    chain[-1].when_done(message.check_abandoned)  # at the end, the message is given up on
    ended_inside: list[bool] = []

    def cancel(_: int) -> None:
        replies.cancel(REASON)
        ended_inside.append(chain[-1].done)

    outer: ReplayCore[int] = ReplayCore(open_ended=True)
    outer.add_observer(cancel, lambda _: None, lambda: None)
    outer.accept_forwarded(1)

    assert ended_inside == [False]  # the end of the last stream was queued: it ran after
    assert chain[-1].done
    assert message.done
    assert isinstance(message.error, StreamCancelledError)
    assert str(message.error) == REASON
    assert str(chain[-1].error) == REASON  # (the readers of the streams fed by it: its error)


async def test_a_stream_given_up_as_its_follower_is_cancelled_tells_the_followers_reason() -> None:
    # an agent's replies that follow another agent's (a hand-off): cancelled for a reason,
    # they stop following it, which gives it up, for the same reason
    followed: ReplayCore[Any] = ReplayCore(open_ended=True)
    followed.on_abandoned = followed.cancel
    shared: ReplayCore[Any] = ReplayCore(open_ended=True)  # read by someone else too
    shared.on_abandoned = shared.cancel
    follower: ReplayCore[Any] = ReplayCore(source=followed.observable())
    follower.start()
    also: ReplayCore[Any] = ReplayCore(source=shared.observable())
    also.start()
    dispose = shared.add_observer(lambda _: None, lambda _: None, lambda: None, consumer=True)
    follower.on_abandoned = also.cancel_now  # (stops following ``shared`` too)
    follower.cancel(REASON)
    assert str(followed.error) == REASON
    assert followed.reason == REASON
    assert not shared.done  # still read: not given up, and no reason lent to it
    assert shared.reason is None
    dispose()
    assert str(shared.error) != REASON
    for core in (follower, followed, shared, also):
        core.handed_over = True


async def test_a_reason_is_the_streams_own_and_not_of_the_streams_cancelled_meanwhile() -> None:
    # an on_abandoned that cancels an unrelated stream does not lend it the reason
    replies: ReplayCore[Any] = ReplayCore(open_ended=True)
    unrelated: ReplayCore[Any] = ReplayCore(open_ended=True)
    replies.on_abandoned = unrelated.cancel
    replies.cancel(REASON)
    assert str(replies.error) == REASON
    assert str(unrelated.error) != REASON
    assert unrelated.reason is None
    assert replies.reason == REASON


async def test_a_cancelled_producer_says_the_cancels_message() -> None:
    core: ReplayCore[str] = ReplayCore(open_ended=True)
    core.fail(asyncio.CancelledError("the user pressed stop"))
    assert isinstance(core.error, StreamCancelledError)
    text = str(core.error)
    assert "cancelled with the message 'the user pressed stop'" in text
    assert "let that task run until the stream has ended" in text
    assert isinstance(core.error.__cause__, asyncio.CancelledError)
    core.handed_over = True  # (read here: no lost error to log)

    plain: ReplayCore[str] = ReplayCore(open_ended=True)
    plain.fail(asyncio.CancelledError())
    assert "with the message" not in str(plain.error)
    assert str(plain.error).startswith("The producer of this stream (the task that fed it)")
    plain.handed_over = True


async def test_a_cancelled_producer_of_a_held_stream_tells_the_holders_reason() -> None:
    # an agent's replies cancelled for a reason (its context's exit): a message of them that
    # someone still reads ends when the agent's task is cancelled, and says that reason
    replies: ReplayCore[Any] = ReplayCore(open_ended=True)
    message = _message_of(replies)
    replies.cancel(REASON)
    message.fail(asyncio.CancelledError())
    assert str(message.error) == REASON
    for core in (replies, message):
        core.handed_over = True


async def test_a_message_read_after_its_context_exited_with_an_error_is_told_why() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    replied = asyncio.Event()

    async def tokens() -> AsyncIterator[str]:
        yield "a "
        await never
        yield "b"

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise(tokens()))
        replied.set()
        await never

    reply = None
    try:
        async with MiniAgents():
            reply = slow.inquire("Hi")
            await replied.wait()
            raise KeyError("oops")
    except KeyError:
        pass
    assert reply is not None
    messages = core_of(reply).record()
    assert messages  # the message it was streaming
    with pytest.raises(StreamCancelledError) as caught:
        await messages[0]
    assert "context exited with an error (KeyError)" in str(caught.value)


async def test_a_stream_held_by_an_ended_stream_given_up_for_a_reason_tells_it() -> None:
    # an ended, paced stream of streams (a reply whose every message has entered) whose
    # last consumer gave up, a stream cancelled for a reason: the message of it still
    # streaming, given up on then, tells that reason (check_abandoned's ``reason``)
    replies: ReplayCore[Any] = ReplayCore(open_ended=True, paced="these replies")
    message = _message_of(replies)
    replies.accept(message.observable())
    replies.complete()
    check_abandoned(replies, REASON)
    assert message.done
    assert str(message.error) == REASON
    for core in (replies, message):
        core.handed_over = True


async def test_an_operators_own_input_cancelled_with_its_replies_tells_their_reason() -> None:
    # an agent piped after an outside observable reads its own record of it: the context's
    # exit after an error cancels the agent's replies for a reason, and that record with it
    inputs: list[MessageSequencePromise] = []
    started = asyncio.Event()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @miniagent
    async def holder(ctx: InteractionContext) -> None:
        inputs.append(ctx.message_promises)
        started.set()
        await never

    async def failing_context() -> None:
        source: Subject[str] = Subject()
        async with MiniAgents():
            source.pipe(holder.as_operator()).subscribe(lambda _: None, lambda _: None)
            source.on_next("x")
            await started.wait()
            raise KeyError("oops")

    with pytest.raises(KeyError):
        await failing_context()
    with pytest.raises(StreamCancelledError) as caught:
        await inputs[0]
    assert str(caught.value).startswith("This stream was cancelled because its MiniAgents")


async def test_a_stream_fed_by_a_task_the_contexts_exit_cancelled_names_that_exit() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fed = asyncio.Event()
    messages: list[MessagePromise] = []

    async def feed() -> None:
        with MessageTokenAppender() as appender:
            messages.append(appender.promise)
            appender.append("a")
            fed.set()
            await never

    async def failing_context() -> None:
        async with MiniAgents():
            start_task(feed(), "feeding a message")
            await fed.wait()
            raise KeyError("oops")

    with pytest.raises(KeyError):
        await failing_context()
    with pytest.raises(StreamCancelledError) as caught:
        await messages[0]
    text = str(caught.value)
    assert text.startswith("This stream was cancelled because its MiniAgents context exited")
    assert text.count("MiniAgents context") == 1  # said once, not quoted in another sentence
    assert "The producer of this stream" not in text


async def test_a_producer_cancelled_with_a_cancel_reason_says_it_alone() -> None:
    core: ReplayCore[str] = ReplayCore(open_ended=True)
    core.fail(asyncio.CancelledError(CancelReason(REASON)))
    assert str(core.error) == REASON
    core.handed_over = True  # (read here: no lost error to log)


async def test_the_exit_after_an_error_stops_the_streams_made_in_its_block() -> None:
    # streams of async generators made in the block itself (no agent's), partly read: the
    # exit after an error cancels their producers' tasks as it does its agents', and waits
    # for them (no task left running), and each stream tells that exit
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    closed: list[str] = []

    async def tokens(name: str) -> AsyncIterator[str]:
        try:
            yield "a"
            await never
            yield "b"
        finally:
            closed.append(name)

    async def joined(pieces: tuple[str, ...]) -> str:
        return "".join(pieces)

    streams: list[Any] = []

    async def failing_context() -> None:
        async with MiniAgents():
            streams.append(MessagePromise(tokens("message")))
            streams.append(StreamedPromise(tokens("stream"), resolver=joined))
            for stream in streams:
                async for _ in stream:
                    break
            raise KeyError("oops")

    with pytest.raises(KeyError):
        await failing_context()
    assert sorted(closed) == ["message", "stream"]  # closed before the exit returned
    for stream in streams:
        with pytest.raises(StreamCancelledError) as caught:
            await stream
        assert str(caught.value).startswith("This stream was cancelled because its MiniAgents")


async def test_a_source_that_goes_on_after_the_exits_cancel_tells_that_exit() -> None:
    # a source that catches the cancel of its context's exit after an error and gives one
    # more piece (or a resolver that returns): its stream still names that exit
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def tokens() -> AsyncIterator[str]:
        yield "a"
        with contextlib.suppress(asyncio.CancelledError):  # swallowed: it goes on
            await never
        yield "late"

    async def ending() -> AsyncIterator[str]:
        yield "a"
        try:
            await never
        except asyncio.CancelledError:
            return  # swallowed: it ends as if it had nothing more

    async def resolved() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await never
        return "late"

    streams: list[Any] = []

    async def failing_context() -> None:
        async with MiniAgents():
            streams.extend((MessagePromise(tokens()), MessagePromise(ending())))
            for stream in streams:
                async for _ in stream:
                    break
            streams.append(Promise(resolved))
            streams[2].start()
            await asyncio.sleep(0)  # (the resolver's task waits in it)
            raise KeyError("oops")

    with pytest.raises(KeyError):
        await failing_context()
    for stream in streams:
        with pytest.raises(StreamCancelledError) as caught:
            await stream
        assert str(caught.value).startswith("This stream was cancelled because its MiniAgents")


async def test_a_source_cancelled_with_its_stream_for_a_reason_is_told_that_reason() -> None:
    # the core's cancel(reason) stops the task that feeds it with that reason as the cancel's
    # message: the source that catches it can tell why
    asked = asyncio.Event()
    told: list[str] = []

    async def tokens() -> AsyncIterator[str]:
        try:
            asked.set()
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError as cancel:
            told.append(str(cancel))
        yield "late"

    core: ReplayCore[str] = ReplayCore(from_async_iterable(tokens(), "a source"))
    core.start()
    task = core.producer
    assert isinstance(task, asyncio.Task)
    await asked.wait()
    core.cancel(REASON)
    await asyncio.gather(task, return_exceptions=True)
    assert told == [REASON]
    assert task.cancelled()
    assert str(core.error) == REASON
    core.handed_over = True


async def test_the_exit_waits_for_the_streams_made_in_its_block() -> None:
    # a stream of an async generator made in the block itself (no agent's), partly read and
    # still streaming as the block ends well: the exit waits for its producer (as it does for
    # its agents), so no task of it outlives the block (and its loop) unnoticed
    go: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def tokens() -> AsyncIterator[str]:
        yield "a"
        await go
        yield "b"

    async with MiniAgents():
        message = MessagePromise(tokens())
        async for _ in message:
            break
        go.set_result(None)  # (its producer goes on only once the exit has begun)
    assert not [task for task in running_tasks() if not task.done()]
    assert core_of(message).done
    assert str(await message) == "ab"
