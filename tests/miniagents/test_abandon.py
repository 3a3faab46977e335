"""A reply every consumer gave up on is cancelled: its agent stops, and so does what fed it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, MessagePromise, MiniAgent, MiniAgents, miniagent
from miniagents.errors import StreamCancelledError
from miniagents.testing import VirtualClock

pytestmark = pytest.mark.usefixtures("virtual_clock")  # the sleeps and timeouts: virtual


def slow_agent(events: list[str]) -> MiniAgent[[]]:
    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        events.append("started")
        try:
            ctx.reply("first")
            await asyncio.sleep(10)
            ctx.reply("never")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    return slow


async def test_giving_up_on_a_reply_cancels_its_agent(virtual_clock: VirtualClock) -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = slow_agent(events).inquire()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]
        with pytest.raises(StreamCancelledError, match="every consumer of it gave up") as raised:
            await reply
    assert virtual_clock.elapsed == pytest.approx(0.11)  # not the agent's 10 s
    assert "asyncio.shield" in str(raised.value)  # the message names how to let it finish


async def test_a_reply_with_another_consumer_is_not_abandoned() -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = slow_agent(events).inquire()
        patient = asyncio.create_task(reply.aresolve())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started"]
        patient.cancel()  # now the last consumer gives up too
        with pytest.raises(asyncio.CancelledError):
            await patient
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]


async def test_giving_up_propagates_through_agents_that_pass_replies_on() -> None:
    events: list[str] = []
    slow = slow_agent(events)

    @miniagent
    async def middle(ctx: InteractionContext) -> None:
        ctx.reply(["from middle", slow.inquire()])

    async with MiniAgents():
        reply = middle.inquire()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]


async def test_a_reply_read_to_its_end_is_never_cancelled() -> None:
    @miniagent
    async def quick(ctx: InteractionContext) -> None:
        ctx.reply("done")

    async with MiniAgents():
        reply = quick.inquire()
        assert str(await asyncio.wait_for(reply.aresolve(), 1)) == "done"
        assert str(await reply) == "done"


async def test_cancel_on_a_reply_cancels_its_agent_and_what_fed_it() -> None:
    events: list[str] = []
    fed: list[str] = []
    slow = slow_agent(fed)

    @miniagent
    async def relay(ctx: InteractionContext) -> None:
        events.append("relaying")
        try:
            async for message in slow.inquire():
                ctx.reply(await message)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async with MiniAgents():
        reply = relay.inquire()
        first = await anext(aiter(reply))
        assert str(await first) == "first"
        reply.cancel()
        await asyncio.sleep(0.01)
        assert events == ["relaying", "cancelled"]
        assert fed == ["started", "cancelled"]
        with pytest.raises(StreamCancelledError):
            await reply


# -- giving up on a message an agent replied with (issue 9) --------------------------------


async def slow_tokens(events: list[str]) -> AsyncIterator[str]:
    try:
        yield "first token"
        await asyncio.sleep(10)
        yield "never"
    finally:
        events.append("tokens closed")


def streaming_agent(events: list[str]) -> MiniAgent[[]]:
    @miniagent
    async def streaming(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(slow_tokens(events)))
        try:
            await asyncio.sleep(10)  # more work after replying
        except asyncio.CancelledError:
            events.append("agent cancelled")
            raise

    return streaming


async def test_giving_up_on_a_message_of_a_plain_agent_cancels_the_agent(
    virtual_clock: VirtualClock,
) -> None:
    events: list[str] = []
    async with MiniAgents():
        message = await anext(aiter(streaming_agent(events).inquire()))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(message.aresolve(), 0.1)
    assert virtual_clock.elapsed == pytest.approx(0.1)  # the context did not wait 10 s
    assert sorted(events) == ["agent cancelled", "tokens closed"]


async def test_giving_up_on_the_whole_reply_stops_the_messages_it_replied_with() -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = streaming_agent(events).inquire()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0)
        assert sorted(events) == ["agent cancelled", "tokens closed"]


async def test_a_message_another_consumer_reads_goes_on_when_one_gives_up() -> None:
    events: list[str] = []
    tokens: list[str] = []

    @miniagent
    async def one_message(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(slow_tokens(events)))

    async with MiniAgents():
        message = await anext(aiter(one_message.inquire()))

        async def patient() -> None:
            async for token in message:
                tokens.append(token)

        reader = asyncio.ensure_future(patient())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(message.aresolve(), 0.1)
        await asyncio.sleep(0)
        assert events == []  # the patient reader still reads it
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
    assert tokens == ["first token"]
    assert events == ["tokens closed"]
