"""``MessageSequenceAppender``: what giving up on the sequence does to its producer."""

from __future__ import annotations

import asyncio

import pytest

from miniagents.messages import MessageSequenceAppender
from miniagents.promising.errors import StreamCancelledError


async def _forever() -> None:
    await asyncio.Event().wait()


async def _read(appender: MessageSequenceAppender) -> list[str]:
    return [str(await promise) async for promise in appender.sequence]


async def test_giving_up_cancels_the_producer_then_calls_then_once() -> None:
    appender = MessageSequenceAppender()
    producer = asyncio.create_task(_forever())
    seen: list[tuple[bool, bool]] = []  # (producer cancelling, sequence ended) when called
    appender.cancel_when_abandoned(
        producer, lambda: seen.append((producer.cancelling() > 0, appender.closed))
    )
    assert appender.task is producer
    reader = asyncio.create_task(_read(appender))
    appender.append("first")
    await asyncio.sleep(0)  # the reader waits for the next message
    reader.cancel()  # its only consumer gives up
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert seen == [(True, True)]  # after the producer's cancellation and the sequence's end
    with pytest.raises(asyncio.CancelledError):
        await producer
    with pytest.raises(StreamCancelledError):
        await appender.sequence
    assert seen == [(True, True)]  # once


async def test_a_sequence_read_to_its_end_never_calls_then() -> None:
    appender = MessageSequenceAppender()
    producer = asyncio.create_task(_forever())
    seen: list[str] = []
    appender.cancel_when_abandoned(producer, lambda: seen.append("given up"))
    reader = asyncio.create_task(_read(appender))
    appender.append("only")
    appender.complete()
    assert await reader == ["only"]
    assert seen == []
    producer.cancel()
