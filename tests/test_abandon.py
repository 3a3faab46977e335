"""A reply every consumer gave up on is cancelled: its agent stops, and so does what fed it."""

from __future__ import annotations

import asyncio

import pytest

from miniagents import InteractionContext, MiniAgent, MiniAgents, miniagent
from miniagents.errors import StreamCancelledError


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


async def test_giving_up_on_a_reply_cancels_its_agent() -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = slow_agent(events).inquire()
        with pytest.raises(asyncio.TimeoutError):  # TimeoutError from Python 3.11
            await asyncio.wait_for(reply.aresolve(), 0.1)
        await asyncio.sleep(0.01)
        assert events == ["started", "cancelled"]
        with pytest.raises(StreamCancelledError):
            await reply


async def test_a_reply_with_another_consumer_is_not_abandoned() -> None:
    events: list[str] = []
    async with MiniAgents():
        reply = slow_agent(events).inquire()
        patient = asyncio.create_task(reply.aresolve())
        with pytest.raises(asyncio.TimeoutError):  # TimeoutError from Python 3.11
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
        with pytest.raises(asyncio.TimeoutError):  # TimeoutError from Python 3.11
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
