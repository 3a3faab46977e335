"""Views: a stream made from another one unchanged shares its record instead of copying it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, Message, MessagePromise, MiniAgents, miniagent
from miniagents.errors import StreamCancelledError
from miniagents.messages import MessageSequencePromise


async def tokens(gate: asyncio.Event) -> AsyncIterator[str]:
    yield "a"
    yield "b"
    await gate.wait()
    yield "c"


async def test_a_message_view_has_its_own_metadata_and_the_same_tokens() -> None:
    gate = asyncio.Event()
    original = MessagePromise.from_async_iterable(tokens(gate), role="user")
    view = MessagePromise.from_observable(original.as_observable(), role="loud")
    again = MessagePromise.from_async_iterable(view, message_class=Message)
    gate.set()
    assert [token async for token in view] == ["a", "b", "c"]
    assert await view == Message(text="abc", role="loud")
    assert await original == Message(text="abc", role="user")
    assert await again == Message(text="abc")


async def test_cancelling_a_view_stops_it_for_its_own_consumers_only() -> None:
    gate = asyncio.Event()
    original = MessagePromise.from_async_iterable(tokens(gate))
    view = MessagePromise.from_observable(original.as_observable())
    reader = aiter(view)
    assert [await anext(reader), await anext(reader)] == ["a", "b"]
    waiting = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0)
    view.cancel()
    with pytest.raises(StreamCancelledError):
        await waiting
    with pytest.raises(StreamCancelledError):
        await view
    gate.set()
    assert (await original).text == "abc"  # the original goes on


async def test_a_new_reader_of_a_cancelled_view_gets_the_pieces_so_far_then_the_error() -> None:
    gate = asyncio.Event()
    original = MessagePromise.from_async_iterable(tokens(gate))
    view = MessagePromise.from_observable(original.as_observable())
    assert [await anext(aiter(original)) for _ in range(1)] == ["a"]
    await asyncio.sleep(0)
    view.cancel()
    seen: list[str] = []

    async def read() -> None:
        async for token in view:
            seen.append(token)

    with pytest.raises(StreamCancelledError):
        await read()
    assert seen == ["a", "b"]
    gate.set()
    assert (await original).text == "abc"


async def test_a_sequence_view_shares_the_messages_and_cancels_on_its_own() -> None:
    release = asyncio.Event()

    async def messages() -> AsyncIterator[str]:
        yield "one"
        await release.wait()
        yield "two"

    original = MessageSequencePromise(messages())
    views = [
        MessageSequencePromise.from_observable(original.as_observable()),
        MessageSequencePromise(original),
        MessageSequencePromise.from_observable(original.as_message_observable()),
    ]
    firsts = [await anext(aiter(view)) for view in views]
    assert all(first is firsts[0] for first in firsts)  # the same promise, not a copy
    views[0].cancel()
    release.set()
    assert [str(promise) async for promise in views[1]] == ["one", "two"]
    assert [str(message) for message in await views[2]] == ["one", "two"]
    with pytest.raises(StreamCancelledError):
        await views[0]


@miniagent
async def passer(ctx: InteractionContext) -> None:
    ctx.reply(ctx.message_promises)


async def test_an_agent_reading_its_input_sees_the_callers_promises() -> None:
    async with MiniAgents():
        inputs = MessageSequencePromise(["x", "y"])
        first = await anext(aiter(inputs))
        replies = [promise async for promise in passer.inquire(inputs)]
        assert replies[0] is first


async def test_a_cancelled_view_no_longer_keeps_the_stream_reachable() -> None:
    done = asyncio.Event()

    @miniagent
    async def busy(ctx: InteractionContext) -> None:
        for index in range(100):
            await ctx.areply(f"m{index}")  # waits for room while someone may read
        done.set()

    async with MiniAgents(high_water_mark=4):
        view = MessageSequencePromise(busy.inquire())  # the replies are reachable through it
        view.cancel()
        del view  # now nobody can read the replies: the agent is not held back
        await asyncio.wait_for(done.wait(), 5)
