"""The sources' tasks (``pull``, ``from_async_iterable``, ``from_awaitable_factory``): what they
push, and when they end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.messages import MessagePromise
from miniagents.promising import Promise, StreamedPromise
from miniagents.promising._sources import from_async_iterable, from_awaitable_factory
from miniagents.promising.lowlevel import pull, running_tasks


class Seen:
    """An observer that writes down what it is told, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.reason: str | None = None  # (attached as a core: the stop reads why it stops)

    def on_next(self, value: object) -> None:
        self.events.append(f"next {value}")

    def on_error(self, error: BaseException) -> None:
        self.events.append(f"error {type(error).__name__}")

    def on_completed(self) -> None:
        self.events.append("completed")


def _source_finishing_its_read(asked: list[asyncio.Event]) -> AsyncIterator[str]:
    """A source that, cancelled in a read, finishes it (as some libraries do), then reads on."""

    async def source() -> AsyncIterator[str]:
        try:
            asked[0].set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # finishes the read it was asked
        yield "late"
        asked[1].set()
        await asyncio.Event().wait()
        yield "never"

    return source()


async def _pulled_again(task: asyncio.Task[None], asked: list[asyncio.Event]) -> bool:
    """Whether ``task`` asked its source for another item before it ended; end it anyway."""
    again = asyncio.ensure_future(asked[1].wait())
    await asyncio.wait([task, again], return_when=asyncio.FIRST_COMPLETED)
    pulled_again = again.done()
    again.cancel()
    task.cancel()
    await asyncio.gather(task, again, return_exceptions=True)
    return pulled_again


async def test_a_pull_asked_before_dispose_pushes_nothing_after_it() -> None:
    asked = [asyncio.Event(), asyncio.Event()]
    seen = Seen()
    stop = pull(_source_finishing_its_read(asked), seen, "a source")
    task = stop.task  # type: ignore[attr-defined]
    await asked[0].wait()
    stop()  # dispose with the pull asked
    pulled_again = await _pulled_again(task, asked)
    assert "next late" not in seen.events
    assert not pulled_again
    assert task.cancelled()  # ended as cancelled, as a stopped pull does


async def test_a_subscription_disposed_with_its_read_asked_reads_no_further() -> None:
    asked = [asyncio.Event(), asyncio.Event()]
    seen = Seen()
    observable = from_async_iterable(_source_finishing_its_read(asked), "a source")
    subscription = observable.subscribe(seen.on_next, seen.on_error, seen.on_completed)
    (task,) = (task for task in running_tasks() if task.get_name() == "miniagents:a source")
    await asked[0].wait()
    subscription.dispose()  # with the read asked
    pulled_again = await _pulled_again(task, asked)
    assert "next late" not in seen.events
    assert not pulled_again
    assert task.cancelled()


async def test_a_source_its_context_cancels_after_an_error_reads_no_further() -> None:
    asked = [asyncio.Event(), asyncio.Event()]

    @miniagent
    async def replying(ctx: InteractionContext) -> None:
        ctx.reply(MessagePromise.from_async_iterable(_source_finishing_its_read(asked)))

    async def failing_block() -> None:
        async with MiniAgents():
            replying.inquire()
            await asked[0].wait()  # the reply's source is asked for its first piece
            raise _BlockFailed  # the context's exit cancels its tasks

    block = asyncio.ensure_future(failing_block())
    again = asyncio.ensure_future(asked[1].wait())
    await asyncio.wait([block, again], return_when=asyncio.FIRST_COMPLETED)
    pulled_again = again.done()
    again.cancel()
    for task in running_tasks():  # (without the fix: the source's task waits for ever)
        task.cancel()
    (failure,) = await asyncio.gather(block, return_exceptions=True)
    assert not pulled_again
    assert isinstance(failure, _BlockFailed)  # the exit ended, with the block's error


async def test_a_resolver_that_swallows_the_cancel_of_its_dispose_sends_nothing() -> None:
    awaiting = asyncio.Event()

    async def resolver() -> str:
        try:
            awaiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallows the cancel
        return "late"

    seen = Seen()
    subscription = from_awaitable_factory(resolver, "a promise").attach(seen)  # type: ignore[arg-type]
    (task,) = (task for task in running_tasks() if task.get_name() == "miniagents:a promise")
    await awaiting.wait()
    subscription.dispose()
    await asyncio.gather(task, return_exceptions=True)
    assert "next late" not in seen.events
    assert "completed" not in seen.events
    assert task.cancelled()  # ended as cancelled, as a disposed pump does


class _BlockFailed(Exception):
    """The error of the test's block."""


async def _listed(pieces: tuple[str, ...]) -> list[str]:
    return list(pieces)


class _ClosingSlowly:
    """An async iterator of two items whose ``aclose`` awaits (as a connection's close does)."""

    def __init__(self) -> None:
        self.items = ["a", "b"]
        self.closed = asyncio.Event()
        self.close_started = False

    def __aiter__(self) -> _ClosingSlowly:
        return self

    async def __anext__(self) -> str:
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)

    async def aclose(self) -> None:
        self.close_started = True
        await asyncio.sleep(0)  # (a cancel asked of its task now would cut the close)
        self.closed.set()


async def test_a_stream_whose_source_ended_lets_its_task_close_the_source() -> None:
    """The end a pumping task passes on disposes its stop: the task is not cancelled by it."""
    source = _ClosingSlowly()
    async with MiniAgents():
        promise = StreamedPromise[str, list[str]](source, resolver=_listed)
        assert await promise == ["a", "b"]
    assert source.close_started  # (the exit waits for the streams' tasks: see MiniAgents)
    assert source.closed.is_set()


async def test_a_resolver_task_that_gave_its_value_ends_not_cancelled() -> None:
    """A promise's task ends as it returned, not cancelled by the end it passed on."""
    tasks: list[asyncio.Task[Any]] = []

    async def resolve() -> int:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        return 7

    async with MiniAgents():
        promise = Promise[int](resolver=resolve)
        assert await promise == 7
        await asyncio.wait([tasks[0]])
    assert not tasks[0].cancelled()
