"""``pipeline``: an agent (or a chain of agents) over many items, concurrently, in this process.

Each item is one interaction: the chain's first agent gets the item as its input, each
next agent the replies of the one before; the item's result is the last agent's replies,
complete. Items are read lazily: at most ``max_in_flight`` items are between being read
and being handed to you, and at most ``max_concurrency`` of them run at once::

    items:     i0 i1 i2 i3 i4 ...            (read as room frees up)
    in flight: [i0 i1 i2 i3]                 (max_in_flight = 4)
    results:   r0 r1 r2 ...                  (ordered=True: the input's order)

An item whose agent failed gives a result holding the error (after ``retries`` more tries
for the errors in ``retry_on``), and the other items go on; with ``fail_fast=True`` the
first failure stops the run instead. The local twin of ``miniagents.ext.ray.ray_pipeline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from typing import Generic, TypeVar

from miniagents.messages import MessageTuple
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import MiniAgent, MiniAgents
from miniagents.pipeline.errors import (
    PipelineArgumentError,
    PipelineRerunError,
    PipelineTimeoutError,
)
from miniagents.pipeline.item_result import ItemResult

__all__ = ["Pipeline", "pipeline"]

T = TypeVar("T", bound=MessageType)

_DONE = object()


@dataclass(frozen=True)
class _Settings:
    max_in_flight: int
    max_concurrency: int
    ordered: bool
    retries: int
    retry_on: tuple[type[BaseException], ...]
    backoff: float
    timeout: float | None
    fail_fast: bool


class Pipeline(Generic[T]):
    """The results of :func:`pipeline`: iterate it with ``async for`` or ``for``, once.

    Nothing runs before the iteration starts. ``async for`` runs in the current
    ``MiniAgents`` context; plain ``for`` runs the items on a thread of its own, in a
    ``MiniAgents`` context of its own. Leaving the loop early cancels the items still
    running (an ``async for`` loop left early stops when the async generator is closed,
    e.g. with ``contextlib.aclosing``).
    """

    def __init__(
        self,
        agents: Sequence[MiniAgent[...]],
        items: Iterable[T] | AsyncIterable[T],
        settings: _Settings,
    ) -> None:
        """Prepare the run (:func:`pipeline` makes pipelines)."""
        self._chain = tuple(agents)
        self._items = items
        self._settings = settings
        self._used = False

    def _claim(self) -> None:
        if self._used:
            raise PipelineRerunError("A Pipeline runs once; call pipeline(...) again to rerun.")
        self._used = True

    async def _interact(self, item: T) -> MessageTuple:
        replies = self._chain[0].inquire(item)
        for agent in self._chain[1:]:
            replies = agent.inquire(replies)
        return await replies

    async def _one(self, limit: asyncio.Semaphore, index: int, item: T) -> ItemResult[T]:
        settings = self._settings
        attempts = 0
        while True:
            attempts += 1
            try:
                async with limit:
                    try:
                        replies = await asyncio.wait_for(self._interact(item), settings.timeout)
                    except TimeoutError as error:
                        if settings.timeout is None:
                            raise
                        raise PipelineTimeoutError(
                            f"Item {index} took longer than the pipeline's timeout of "
                            f"{settings.timeout} s; raise timeout= if it needs more time."
                        ) from error
                return ItemResult(index, item, replies, None, attempts)
            except Exception as error:
                if attempts <= settings.retries and isinstance(error, settings.retry_on):
                    await asyncio.sleep(settings.backoff * 2 ** (attempts - 1))
                    continue
                return ItemResult(index, item, MessageTuple(), error, attempts)

    async def __aiter__(self) -> AsyncGenerator[ItemResult[T], None]:
        """Run the pipeline, giving each item's result (awaiting between results)."""
        self._claim()
        settings = self._settings
        source = _aiter_items(self._items)
        limit = asyncio.Semaphore(settings.max_concurrency)
        running: dict[int, asyncio.Task[ItemResult[T]]] = {}
        read = 0
        handed = 0  # the next index to hand out, when ordered
        read_error: BaseException | None = None
        exhausted = False
        try:
            while True:
                while not exhausted and len(running) < settings.max_in_flight:
                    try:
                        item = await anext(source)
                    except StopAsyncIteration:
                        exhausted = True
                    except Exception as error:
                        read_error = error
                        exhausted = True
                    else:
                        running[read] = asyncio.ensure_future(self._one(limit, read, item))
                        read += 1
                ready = _ready(running, handed, settings.ordered)
                if ready is not None:
                    result = running.pop(ready).result()
                    handed = ready + 1
                    if settings.fail_fast and result.error is not None:
                        raise result.error
                    yield result
                    continue
                if not running:
                    if read_error is not None:
                        raise read_error
                    return
                await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in running.values():
                task.cancel()
            if running:
                await asyncio.gather(*running.values(), return_exceptions=True)
            closing = getattr(source, "aclose", None)
            if closing is not None:
                await closing()

    def __iter__(self) -> Iterator[ItemResult[T]]:
        """Run the pipeline on a thread of its own, giving each result (blocking between)."""
        self._claim()
        self._used = False  # __aiter__ claims it on the thread
        handoff: queue.Queue[object] = queue.Queue(maxsize=1)
        stop = threading.Event()
        loop_ready: queue.Queue[tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]] = (
            queue.Queue()
        )

        async def feed() -> None:
            async with MiniAgents():
                try:
                    async for result in self:
                        await asyncio.to_thread(handoff.put, result)
                        if stop.is_set():
                            return
                except BaseException as error:
                    handoff.put(error)
                    return
            handoff.put(_DONE)

        def run() -> None:
            async def main() -> None:
                task = asyncio.ensure_future(feed())
                loop_ready.put((asyncio.get_running_loop(), task))
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            asyncio.run(main())

        thread = threading.Thread(target=run, name="miniagents-pipeline", daemon=True)
        thread.start()
        loop, task = loop_ready.get()
        try:
            while True:
                got = handoff.get()
                if got is _DONE:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got  # type: ignore[misc]  # only ItemResults and the two above travel
        finally:
            stop.set()
            loop.call_soon_threadsafe(task.cancel)
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    handoff.get(timeout=0.05)
            thread.join()


def _ready(
    running: dict[int, asyncio.Task[ItemResult[T]]], handed: int, ordered: bool
) -> int | None:
    if ordered:
        task = running.get(handed)
        return handed if task is not None and task.done() else None
    for index, task in running.items():
        if task.done():
            return index
    return None


async def _aiter_items(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def pipeline(
    agents: MiniAgent[...] | Sequence[MiniAgent[...]],
    items: Iterable[T] | AsyncIterable[T],
    /,
    *,
    max_in_flight: int = 64,
    max_concurrency: int | None = None,
    ordered: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
    backoff: float = 0.5,
    timeout: float | None = None,
    fail_fast: bool = False,
) -> Pipeline[T]:
    """Run an agent, or a chain of agents, over every item, concurrently, in this process.

    Example:
        >>> # async for result in pipeline(summarizer, documents, max_concurrency=16): ...

    Args:
        agents: The agent, or the agents of a chain (each gets the replies of the one
            before; the first gets the item).
        items: The items: any iterable or async iterable of ``MessageType`` values, read
            lazily.
        max_in_flight: At most this many items are read and not yet handed to you.
        max_concurrency: At most this many items run at once (default: ``max_in_flight``).
        ordered: Give the results in the input's order (``True``) or as they complete.
        retries: How many more times an item that failed with one of ``retry_on`` is tried.
        retry_on: The errors worth retrying (e.g. ``LLMRateLimitError``, ``LLMServerError``).
        backoff: The wait before the first retry, in seconds; it doubles with each retry.
        timeout: The longest one try of an item may take, in seconds (a
            :class:`PipelineTimeoutError` after it); ``None`` for no limit.
        fail_fast: Stop the run at the first failed item, raising its error and cancelling
            the items in flight (instead of giving a result holding it).

    Raises:
        PipelineArgumentError: for no agents, a limit below 1 or negative retries (a
            ``ValueError``).
    """
    chain = [agents] if isinstance(agents, MiniAgent) else list(agents)
    if not chain:
        raise PipelineArgumentError("pipeline() needs at least one agent to run over the items.")
    concurrency = max_in_flight if max_concurrency is None else max_concurrency
    for name, value in (("max_in_flight", max_in_flight), ("max_concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PipelineArgumentError(
                f"pipeline() needs {name} to be a positive int; got {value!r}."
            )
    if retries < 0:
        raise PipelineArgumentError(f"pipeline() needs retries >= 0; got {retries}.")
    if timeout is not None and timeout <= 0:
        raise PipelineArgumentError(f"pipeline() needs a positive timeout or None; got {timeout}.")
    settings = _Settings(
        max_in_flight=max_in_flight,
        max_concurrency=concurrency,
        ordered=ordered,
        retries=retries,
        retry_on=retry_on,
        backoff=backoff,
        timeout=timeout,
        fail_fast=fail_fast,
    )
    return Pipeline(chain, items, settings)
