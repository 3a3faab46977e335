"""A long record of ``str`` tokens packs its front: bounded token objects, the same replay.

A message keeps every token (a late reader and ``await`` get them all), but past two blocks
of ``BLOCK`` tokens it keeps the older ones packed (one string per block), so that the
token objects it holds stay bounded while replay gives the same tokens in the same order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import reactivex

from miniagents import Message, MessagePromise, StreamedPromise
from miniagents.errors import StreamCancelledError
from miniagents.messages import MessageSequencePromise
from miniagents.promising._packing import BLOCK
from miniagents.promising.lowlevel import core_of, joined_text

N = 5 * BLOCK + 321
"""More than five blocks, and not a whole number of them."""


def token(i: int) -> str:
    """Tokens of varied lengths: empty ones, non-ASCII ones, longer ones."""
    if i % 97 == 0:
        return ""
    if i % 31 == 0:
        return f"é{i}→"
    return f"t{i} " * (1 + i % 3)


TOKENS = [token(i) for i in range(N)]


async def tokens(gate: asyncio.Event | None = None, stop_at: int = N) -> AsyncIterator[str]:
    """The tokens, one loop turn apart; with ``gate``, waiting for it at ``stop_at``."""
    for i in range(N):
        if i == stop_at and gate is not None:
            await gate.wait()
        yield TOKENS[i]
        await asyncio.sleep(0)


async def test_a_read_message_keeps_a_bounded_number_of_token_objects() -> None:
    promise = MessagePromise.from_async_iterable(tokens())
    core = core_of(promise)
    most = 0
    read = []
    async for piece in promise:
        read.append(piece)
        most = max(most, len(core.pieces))
    assert read == TOKENS
    assert most <= 2 * BLOCK  # the token objects kept, whatever the length
    assert core.packed is not None
    assert core.packed.count == core.base == 4 * BLOCK
    assert core.count == N


async def test_late_readers_await_and_subscribers_get_the_same_tokens() -> None:
    promise = MessagePromise.from_async_iterable(tokens(), role="assistant")
    assert [piece async for piece in promise] == TOKENS
    # after the end: every kind of late consumer, and a view over the same record
    assert [piece async for piece in promise] == TOKENS
    view = MessagePromise.from_observable(promise.as_observable())
    assert [piece async for piece in view] == TOKENS
    seen: list[str] = []
    promise.as_observable().subscribe(seen.append)
    assert seen == TOKENS
    message = await promise
    assert message == Message(text="".join(TOKENS), role="assistant")
    assert promise.message_now() is message
    assert joined_text(core_of(promise)) == "".join(TOKENS)
    assert core_of(promise).record() == TOKENS
    assert [core_of(promise).piece(i) for i in range(N)] == TOKENS


async def test_a_reader_behind_a_fast_producer_reads_the_packed_tokens() -> None:
    # a synchronous source hands every token before the reader runs: it reads them packed
    promise = MessagePromise.from_observable(reactivex.from_iterable(TOKENS))
    iterator = aiter(promise)
    first = await anext(iterator)
    core = core_of(promise)
    assert core.done
    assert core.base == 4 * BLOCK  # packed while nobody read
    assert [first, *[piece async for piece in iterator]] == TOKENS
    assert str(await promise) == "".join(TOKENS)


async def test_an_await_during_the_stream_gets_the_whole_text() -> None:
    promise = MessagePromise.from_async_iterable(tokens())
    whole, read = await asyncio.gather(promise, _read(promise))
    assert whole.text == "".join(TOKENS)
    assert read == TOKENS


async def _read(promise: MessagePromise) -> list[str]:
    return [piece async for piece in promise]


async def test_a_view_cancelled_after_packing_keeps_what_it_had() -> None:
    gate = asyncio.Event()
    promise = MessagePromise.from_async_iterable(tokens(gate, stop_at=3 * BLOCK))
    view = MessagePromise.from_observable(promise.as_observable())
    reader = aiter(view)
    got = [await anext(reader) for _ in range(3 * BLOCK)]
    assert core_of(promise).base > 0  # the front is packed
    view.cancel()
    gate.set()
    with pytest.raises(StreamCancelledError):
        await _read_into(reader, got)
    assert got == TOKENS[: 3 * BLOCK]  # what the record held when the view was cancelled
    with pytest.raises(StreamCancelledError):
        await view
    assert [piece async for piece in promise] == TOKENS  # the stream went on for the others


async def _read_into(reader: AsyncIterator[str], got: list[str]) -> None:
    async for piece in reader:
        got.append(piece)


async def test_a_finished_long_message_flattens_into_a_sequence_whole() -> None:
    promise = MessagePromise.from_async_iterable(tokens())
    await promise
    tokens_view: StreamedPromise[str, str] = StreamedPromise(
        promise.as_observable(), resolver=_join
    )
    sequence = MessageSequencePromise.from_observable(reactivex.of(promise))
    assert [str(message) for message in await sequence] == ["".join(TOKENS)]
    assert await tokens_view == "".join(TOKENS)


async def _join(pieces: tuple[str, ...]) -> str:
    return "".join(pieces)


async def test_streams_of_other_pieces_never_pack() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(N):
            yield i

    stream: StreamedPromise[int, int] = StreamedPromise(numbers(), resolver=_count)
    assert [piece async for piece in stream] == list(range(N))
    assert core_of(stream).packed is None


async def _count(pieces: tuple[int, ...]) -> int:
    return len(pieces)
