"""``pipeline``: an agent (or a chain of agents) over many items, concurrently, in this process.

Each item is one interaction: the chain's first agent gets the item as its input, each
next agent the replies of the one before; the item's result is the last agent's replies,
complete. Items are read lazily: at most ``max_in_flight`` items are between being read
and being handed to you, and at most ``max_concurrency`` of them run at once (a try counts
until its interactions have stopped: one given up on by its timeout may still be cleaning
up, and its retry waits for it)::

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
import contextvars
import functools
import inspect
import queue
import random
import reprlib
import threading
import types
import weakref
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Generic, TypeGuard

from pydantic import BaseModel
from reactivex import Observable
from typing_extensions import TypeVar

from miniagents.arguments import a_class, check_count, check_flag, check_seconds, refused_argument
from miniagents.messages import Message, MessageSequencePromise, MessageTuple
from miniagents.messages.errors import MessageTypeError
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import MiniAgent, MiniAgents
from miniagents.miniagents.errors import LoopAlreadyRunningError
from miniagents.miniagents.lowlevel import InteractionScope, at_exit, start_task
from miniagents.pipeline.batching import BatchedRun, PipelineBatching, RunEnding
from miniagents.pipeline.durability import durable_items, durable_pipeline_id
from miniagents.pipeline.errors import (
    PipelineArgumentError,
    PipelineRerunError,
    PipelineTimeoutError,
)
from miniagents.pipeline.item_result import ItemResult
from miniagents.pipeline.item_runner import ItemRunner
from miniagents.pipeline.progress import (
    ProgressBar,
    check_progress_options,
    known_total,
    progress_bar,
)
from miniagents.promising import StreamedPromise
from miniagents.promising.errors import StreamLimitError
from miniagents.promising.limits import Overflow, checked_overflow
from miniagents.promising.lowlevel import (
    ReplayObservable,
    core_of,
    mark_received,
    read_on_demand,
    report_lost_error,
)

__all__ = [
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_MAX_IN_FLIGHT",
    "Pipeline",
    "PipelineSettings",
    "agent_chain",
    "checked_batch",
    "item_input_error",
    "observed_items",
    "pipeline",
    "pipeline_settings",
    "refuse_blocking_a_context",
]

T = TypeVar("T", bound=MessageType)
ReplyT = TypeVar("ReplyT", bound=Message, default=Message)

_DONE = object()

DEFAULT_MAX_BACKOFF = 120.0
"""The longest wait between two tries of an item by default, in seconds (``max_backoff=``).

The wait doubles from ``backoff`` with each retry, up to this cap (as urllib3's ``Retry``
caps its backoff at 120 s): without one, the 20th retry of a 0.5 s backoff would wait three
days, and the doubling of the 1,025th would not fit in a float (an ``OverflowError``).
"""

DEFAULT_MAX_IN_FLIGHT = 64
"""The most items read and not yet handed out by default (``max_in_flight=None``).

A ``max_concurrency`` above it raises it to as many: without that, ``max_concurrency=1_000``
alone would run 64 items at once (every item that runs is one in flight).
"""

_JITTER = random.Random()
"""The random source of the waits' jitter unless a pipeline is given its own (``jitter=``)."""


@dataclass(frozen=True)
class PipelineSettings:
    """How a local pipeline runs (the arguments of :func:`pipeline`, checked)."""

    max_in_flight: int
    max_concurrency: int
    ordered: bool
    retries: int
    retry_on: tuple[type[BaseException], ...]
    backoff: float
    timeout: float | None
    fail_fast: bool
    progress: bool | None
    description: str
    total: int | None
    overflow: Overflow
    max_backoff: float = DEFAULT_MAX_BACKOFF
    caller: str = "pipeline"
    jitter: random.Random | None = None
    """The random source of the waits' full jitter (``None``: no jitter, each wait whole)."""


class Pipeline(Generic[T, ReplyT]):
    """The results of :func:`pipeline`: iterate it with ``async for`` or ``for``, once.

    Nothing runs before the iteration starts. ``async for`` runs in the current
    ``MiniAgents`` context; plain ``for`` runs the items on a thread of its own, in a
    ``MiniAgents`` context of its own (and reads the items there: an async iterable or an
    observable given to it must not be tied to another event loop). Leaving the loop
    early cancels the items still running, waits until their interactions have stopped,
    and closes the source (an ``async for`` loop left early stops when the async
    generator is closed, e.g. with ``contextlib.aclosing``).
    """

    def __init__(
        self,
        agents: Sequence[MiniAgent[..., Message]],
        items: Iterable[T] | AsyncIterable[T] | Observable[T],
        settings: PipelineSettings,
        runner: ItemRunner | None = None,
        batch: PipelineBatching | None = None,
        name: str | None = None,
    ) -> None:
        """Prepare the run (:func:`pipeline` makes pipelines).

        ``runner``: what runs each try of an item instead of the chain's interactions (see
        :mod:`miniagents.pipeline.item_runner`; ``pipeline(..., durable=...)`` gives the
        durable layer's); ``batch``: the batch mode its calls of models go through (see
        :mod:`miniagents.pipeline.batching`); ``name``: the pipeline's name for it (by
        default its agents' aliases joined by ``>``).

        Raises:
            PipelineArgumentError: if ``items`` is not an iterable, an async iterable or an
                observable, or is a string.
        """
        given: object = items  # (typed so; code mypy does not check may pass anything)
        if not isinstance(given, (Iterable, AsyncIterable, Observable)):
            raise PipelineArgumentError(
                "pipeline() needs its items as an iterable, an async iterable or an observable "
                f"(e.g. a list); got {a_class(type(given))} ({given!r:.60}). For one item, pass "
                "[item]."
            )
        if isinstance(given, str):  # (an Iterable[str]: each character would be an item)
            raise PipelineArgumentError(
                f"{settings.caller}() needs its items as an iterable of items, not the string "
                f"{_shown(given)} (each of its characters would be an item). For one item, "
                f"pass [{_shown(given)}]."
            )
        self._chain = tuple(agents)
        self._items = items
        self._settings = settings
        self._runner = runner
        self._batch = checked_batch(batch, settings.caller)
        self._name = name or durable_pipeline_id(self._chain)
        self._batched: BatchedRun | None = None
        self._used = False
        self._run: _Run[T, ReplyT] | None = None
        self._stopped = False

    def stop(self) -> None:
        """Stop the run now, from plain code on its event loop: nothing is read or starts after.

        For code that cannot await the generator's closing (an observable's ``dispose``):
        no item is read from the source after it, no agent's code starts (an item's
        interactions whose code has not run yet are cancelled, their replies with them,
        whatever started them: the chain, or an item runner's try such as a durable run),
        and the items in flight are cancelled. The ``async for`` loop, if it goes on, ends
        at its next step (the results not handed out yet are dropped); the clean-up (the
        items' interactions waited for, the source closed) is still the generator's.
        A pipeline stopped before it is iterated gives no result.
        """
        self._stopped = True
        if self._run is not None:
            self._run.halt()

    def _claim(self) -> None:
        if self._used:
            raise PipelineRerunError("A Pipeline runs once; call pipeline(...) again to rerun.")
        self._used = True

    async def _interact(self, index: int, attempt: int, item: T) -> MessageTuple[ReplyT]:
        if self._runner is not None:  # (e.g. a durable run: the last agent's replies, recorded)
            return await self._runner.run(index, attempt, item)  # type: ignore[return-value]
        chain = [self._chain[0].inquire(item)]
        for agent in self._chain[1:]:
            chain.append(agent.inquire(chain[-1]))
        try:
            with self._stoppable(chain):
                result: MessageTuple[ReplyT] = await chain[-1]  # type: ignore[assignment]
        except asyncio.CancelledError:
            # given up on (the run stopped, or the try timed out): an error that ended the
            # replies meanwhile is not lost, nobody wants this try's result any more
            for replies in chain:
                core = core_of(replies)
                if core.done and core.error is not None:
                    mark_received(core.error)
            raise
        return result

    async def _try(self, index: int, number: int, item: T) -> MessageTuple[ReplyT]:
        timeout = self._settings.timeout
        if timeout is None:
            return await self._interact(index, number, item)
        attempt = asyncio.ensure_future(self._interact(index, number, item))
        try:
            done, _ = await asyncio.wait((attempt,), timeout=timeout)
        except BaseException:  # the item was cancelled: so is its attempt
            await _cancelled(attempt)
            raise
        if not done:
            await _cancelled(attempt)
            raise PipelineTimeoutError(
                f"Item {index} took longer than the pipeline's timeout of {timeout} s; "
                "raise timeout= if it needs more time."
            )
        return attempt.result()

    async def _one(self, limit: asyncio.Semaphore, index: int, item: T) -> ItemResult[T, ReplyT]:
        settings = self._settings
        attempts = 0
        wait = min(settings.backoff, settings.max_backoff)  # the ceiling of the next wait
        jitter = settings.jitter
        while True:
            attempts += 1
            tried = InteractionScope()  # the interactions of this try
            try:
                async with limit:
                    try:
                        with tried, self._batched_item(), self._stoppable_try(tried):
                            replies = await self._try(index, attempts, item)
                    finally:
                        # a try keeps its slot until its interactions have stopped: one given
                        # up on (timed out, cancelled) may still be cleaning up, and its retry
                        # or another item must not run beside it
                        await tried.astopped()
                return ItemResult(index, item, replies, None, attempts)
            except Exception as error:
                if attempts <= settings.retries and isinstance(error, settings.retry_on):
                    # full jitter: anywhere from 0 to the ceiling, so that items that failed
                    # together (one rate limit) do not all try again together
                    await asyncio.sleep(wait if jitter is None else jitter.uniform(0.0, wait))
                    # doubled, and capped at every step: it never grows past the cap (2 **
                    # (attempts - 1) would not fit in a float past the 1,024th retry)
                    wait = min(wait * 2, settings.max_backoff)
                    continue
                return ItemResult(index, item, MessageTuple(), error, attempts)

    @contextlib.contextmanager
    def _stoppable(self, chain: list[MessageSequencePromise[Message]]) -> Iterator[None]:
        """Around a try's wait: its chain's replies, for :meth:`stop` to cancel at once."""
        run = self._run
        if run is None:  # (the try of a run that is over: nothing can stop it any more)
            yield
            return
        run.chains[id(chain)] = chain
        try:
            yield
        finally:
            del run.chains[id(chain)]

    @contextlib.contextmanager
    def _stoppable_try(self, tried: InteractionScope) -> Iterator[None]:
        """Around a try, whatever runs it: its interactions, for :meth:`stop` to give up on.

        An item runner's (a durable run, an eval's case) as the chain's: their replies are
        not the pipeline's to cancel, but each interaction started in the try is the
        try's scope's.
        """
        run = self._run
        if run is None:  # (the try of a run that is over: nothing can stop it any more)
            yield
            return
        run.tries.add(tried)
        try:
            yield
        finally:
            run.tries.discard(tried)

    def _batched_item(self) -> contextlib.AbstractContextManager[object]:
        """Around a try: the batch mode's (its calls may flush a queue), else nothing."""
        if self._batched is None:
            return contextlib.nullcontext()
        return self._batched.item()

    def __aiter__(self) -> AsyncGenerator[ItemResult[T, ReplyT], None]:
        """Run the pipeline, giving each item's result (awaiting between results).

        The items are read by a task of its own, so that a result is handed out as soon as
        it is ready, even while the source waits for its next item. Stopped early (the loop
        left and the generator closed, an error, a cancellation), the run cancels the items
        in flight, waits until their interactions have stopped, and closes the source: an
        async generator's or a generator's clean-up runs, an observable is unsubscribed
        from, and an agent's replies that nobody else reads are given up (the agent stops).

        The ``MiniAgents`` context's exit waits until the run has stopped, as it waits for
        its agents: a loop left with ``break`` (the generator closed when it is collected),
        or a generator still held but no longer read (closed by the exit), leaves no task
        of the run behind the exit. After an error in the context, the run is cancelled.

        Raises:
            NoActiveContextError: outside of every ``MiniAgents`` context (plain ``for``
                makes one of its own).
            PipelineRerunError: if the pipeline ran already.
            MessageTypeError: in the place of an item that cannot be an agent's input at
                all (its index and type named): after the results of the items before it
                (the ones in flight awaited), and no item after it starts.
            Exception: the error of the items iterable, after the results before it; with
                ``fail_fast=True``, the first failed item's error; with a runner, the
                error of getting it ready (with ``durable=``: e.g. the database of the
                runs cannot be reached), before any item runs.
        """
        results: list[weakref.ref[AsyncGenerator[ItemResult[T, ReplyT], None]]] = []
        generator = self._results(results)
        results.append(weakref.ref(generator))  # (weakly: collected at a `break`, closed)
        return generator

    def _start_reader(
        self,
        run: _Run[T, ReplyT],
        context: contextvars.Context,
        items: Iterable[T] | AsyncIterable[T] | Observable[T],
    ) -> asyncio.Future[None]:
        """Make ``run`` this pipeline's, then start its reader of ``items`` in ``context``."""
        self._run = run  # (before its reader: eager, the reader's first step may stop it)
        reader = context.run(asyncio.ensure_future, run.read(items))
        run.reader = reader
        if run.halted:  # stopped inside that first step, before the reader was known
            reader.cancel()
        reader.add_done_callback(run.wake)
        return reader

    async def _results(
        self, itself: list[weakref.ref[AsyncGenerator[ItemResult[T, ReplyT], None]]]
    ) -> AsyncGenerator[ItemResult[T, ReplyT], None]:
        """The generator of :meth:`__aiter__` (``itself``: a weak reference to it)."""
        MiniAgents.get_current()  # not one failed result per item: the error, at once
        self._claim()
        if self._stopped:  # (stopped before its iteration began: nothing runs)
            return
        # the context the run's tasks start in: in batch mode, its calls go to batches
        context = contextvars.copy_context()
        settings = self._settings
        items, self._items = self._items, ()  # the run's alone: let go of when it ends
        batched, bar = await self._aopen(context, items)
        run: _Run[T, ReplyT] = _Run(self, settings)
        observed = None
        if isinstance(items, Observable):  # subscribed to now, not when the reader starts
            observed = observed_items(items, settings.overflow)
            items = observed.as_observable()
        reader = self._start_reader(run, context, items)
        del items
        # the context's exit waits until the run has stopped (or cancels it, after an error)
        held = start_task(_held(run, reader, itself[0]), "pipeline")
        forget = at_exit(run.alarm.set)
        ending: RunEnding = "stopped"
        try:
            while True:
                if run.halted:  # stop(): the results not handed out are dropped
                    return
                if (error := run.failure) is not None:  # fail_fast
                    raise error
                ready = run.next_ready()
                if ready is not None:
                    result = ready.result()
                    bar.advance(failed=not result.ok)
                    yield result
                    continue
                if reader.done() and not run.running:
                    # the items' own error, or one of reading them (e.g. the source's clean-up)
                    read_error = run.read_error
                    if read_error is None:
                        read_error = reader.exception()
                    if read_error is not None:
                        mark_received(read_error)  # (raised here: not lost)
                        raise read_error
                    ending = "completed"
                    return
                run.changed.clear()  # (nothing runs between the checks above and the wait)
                await run.changed.wait()
        except asyncio.CancelledError:
            ending = "interrupted"
            raise
        finally:
            bar.close()
            run.stopped = True
            reader.cancel()  # it closes the source
            for task in run.running.values():
                task.cancel()
            try:  # (the run is over, even if its closer is cancelled here: the context's
                # exit waits for it)
                await _ended(reader, *run.running.values())
                if observed is not None:
                    observed.cancel()  # (read to its end, or a hot source: unsubscribed from)
                if not reader.cancelled() and (error := reader.exception()) is not None:
                    # the source's clean-up failed as the run stopped early: nobody to raise
                    report_lost_error(error, "The items of a pipeline, closed as it stopped,")
                if batched is not None:
                    await batched.aclose(ending)
            finally:
                self._run = None
                forget()
                run.over.set()
                run.alarm.set()
            if held is not asyncio.current_task() and itself[0]() is not None:
                # it ends at once: once the run has stopped, nothing of it is left. (Closed
                # by it, it ends right after; closed after its collection, by the loop's
                # task, which ends with this step, it waits for that task's end.)
                await asyncio.wait((held,))

    async def _aopen(
        self, context: contextvars.Context, items: Iterable[T] | AsyncIterable[T] | Observable[T]
    ) -> tuple[BatchedRun | None, ProgressBar]:
        """Open the run of the batch mode, get the item runner ready, make the progress bar.

        All in ``context``, the one the run's tasks start in: the durable runs that a
        durable runner recovers run there, in batch mode too. If one of them fails, the
        batch mode's run is ended and ``items`` (taken, never read) are closed, so that a
        generator's clean-up runs, before the error is raised.
        """
        batched = None
        runner = self._runner
        settings = self._settings
        try:
            if self._batch is not None:
                journal = None if runner is None else runner.journal
                batched = self._batched = self._batch.start(self._name, journal)
                await batched.aopen()
                context.run(batched.activate)
            if runner is not None:  # e.g. DBOS launched: not part of any try's timeout
                await context.run(asyncio.ensure_future, runner.aready())
            total = settings.total
            if total is None:
                total = known_total(items)
            bar = context.run(progress_bar, settings.progress, total, settings.description)
        except BaseException as error:
            try:
                if batched is not None:
                    cancelled = isinstance(error, asyncio.CancelledError)
                    await batched.aclose("interrupted" if cancelled else "stopped")
            finally:
                await _close_unread(items)
            raise
        return batched, bar

    def __iter__(self) -> Iterator[ItemResult[T, ReplyT]]:
        """Run the pipeline on a thread of its own, giving each result (blocking between).

        Raises:
            LoopAlreadyRunningError: inside an active ``MiniAgents`` context, in async code
                (its event loop would stop until the run ended: ``async for`` is the way).
            PipelineRerunError: if the pipeline ran already.
            Exception: as ``async for`` raises.
        """
        refuse_blocking_a_context("pipeline")
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
                    async with contextlib.aclosing(self.__aiter__()) as results:
                        async for result in results:
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
            with contextlib.suppress(RuntimeError):  # the run has ended and closed its loop
                loop.call_soon_threadsafe(task.cancel)
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    handoff.get(timeout=0.05)
            thread.join()


def refuse_blocking_a_context(made_by: str) -> None:
    """Refuse a plain ``for`` where a ``MiniAgents`` context is active in a running loop.

    The one check of every pipeline's plain ``for`` (``pipeline``'s, ``ray_pipeline``'s):
    its run would block that loop until it ended, so the context's agents would stop while
    it ran (for ``pipeline``, whose run is on a thread of its own, items that are their
    replies, ``pipeline(agent, [other.inquire(...)])``, would never come, so the run would
    never end). Outside of async code (or of every context, as in a notebook's cell) nothing
    waits for the blocked loop, and plain ``for`` is taken.

    Args:
        made_by: The function that made the pipeline (``"pipeline"``, ``"ray_pipeline"``),
            named in the error.

    Raises:
        LoopAlreadyRunningError: naming ``async for``.
    """
    try:
        asyncio.get_running_loop()
        MiniAgents.get_current()
    except RuntimeError:  # (no loop runs here, or no context is active: NoActiveContextError)
        return
    raise LoopAlreadyRunningError(
        f"A plain for over {made_by}(...) cannot run inside an active MiniAgents context in "
        "async code: it would block the context's event loop until the pipeline ended, so "
        "the context's agents (and all else the loop runs) would stop until then. Write "
        f"async for result in {made_by}(...) instead (plain for is for code outside of "
        "async functions)."
    )


class _Run(Generic[T, ReplyT]):
    """The bookkeeping of one run: the reading of the items, those in flight, their ends.

    The reader reads an item when there is room for one and starts its task; a task that
    ends wakes the run, which hands out what is ready (ordered: the next index; unordered:
    the items in the order they ended), so a result costs the same however many items are
    in flight::

        reader:   i0 i1 i2 i3 -(no room)- i4 ...      (at most max_in_flight not handed out)
        ended:    i2 i0 i3 ...                         (each task's end wakes the run)
        results:  r0 (ordered; unordered: r2) ...      (each frees room for one more item)
    """

    def __init__(self, owner: Pipeline[T, ReplyT], settings: PipelineSettings) -> None:
        self.owner = owner
        self.settings = settings
        self.running: dict[int, asyncio.Task[ItemResult[T, ReplyT]]] = {}
        self.ended: deque[int] = deque()  # unordered: the items that ended, in that order
        self.handed = 0  # ordered: the index of the next result to hand out
        self.room = asyncio.Semaphore(settings.max_in_flight)
        self.limit = asyncio.Semaphore(settings.max_concurrency)
        self.changed = asyncio.Event()
        self.failure: BaseException | None = None
        self.read_error: BaseException | None = None
        self.stopped = False  # the run has ended: no more items start
        self.halted = False  # stopped by Pipeline.stop(): the generator ends at its next step
        self.reader: asyncio.Future[None] | None = None  # the task reading the items
        self.chains: dict[int, list[MessageSequencePromise[Message]]] = {}  # the tries' replies
        self.tries: set[InteractionScope] = set()  # the interactions of each try running
        self.over = asyncio.Event()  # its generator's clean-up is done
        self.alarm = asyncio.Event()  # over, or its context's exit has begun

    async def read(self, items: Iterable[T] | AsyncIterable[T] | Observable[T]) -> None:
        """Read the items as room frees up, starting each one's task; close the source."""
        source = _aiter_items(items, self.settings.overflow)
        del items
        index = 0
        try:
            while True:
                await self.room.acquire()
                if self.halted:  # (by an item's agent in this task's first step, eager)
                    return
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    return
                except Exception as error:
                    self.read_error = error
                    return
                if self.stopped:  # (a source that went on when the reader was cancelled)
                    return
                if type(item) is not str and (
                    refused := item_input_error(item, index, self.settings.caller)
                ):
                    # the caller's mistake, not an agent's failure: it takes the item's
                    # place, after the results of the items before it (none after it starts)
                    self.read_error = refused
                    return
                task = asyncio.ensure_future(self.owner._one(self.limit, index, item))
                self.running[index] = task
                task.add_done_callback(functools.partial(self._ended, index))
                index += 1
        finally:
            await source.aclose()

    def halt(self) -> None:
        """Stop the run at once: cancel the reader and the items in flight, wake the run."""
        self.stopped = self.halted = True
        if self.reader is not None:
            self.reader.cancel()  # (before its next step: it reads nothing more)
        for task in self.running.values():
            task.cancel()  # (one not started yet never starts its interaction)
        for chain in self.chains.values():  # (inquired already: each agent whose code has
            for replies in chain:  # not run yet never runs it, its input given up)
                replies.cancel()
        for tried in list(self.tries):  # (the same for what any runner's try started: a
            tried.cancel()  # durable run, an eval's case, the chain's lazy agents started)
        self.changed.set()

    def wake(self, _: object = None) -> None:
        """Have the run look again at what it can hand out."""
        self.changed.set()

    def _ended(self, index: int, task: asyncio.Task[ItemResult[T, ReplyT]]) -> None:
        if not self.settings.ordered:
            self.ended.append(index)
        if self.settings.fail_fast and self.failure is None and not task.cancelled():
            error = task.exception()
            self.failure = error if error is not None else task.result().error
        self.changed.set()

    def next_ready(self) -> asyncio.Task[ItemResult[T, ReplyT]] | None:
        """The ended task whose result goes out next (its room freed), or ``None``."""
        if self.settings.ordered:
            task = self.running.get(self.handed)
            if task is None or not task.done():
                return None
            del self.running[self.handed]
            self.handed += 1
        elif self.ended:
            task = self.running.pop(self.ended.popleft())
        else:
            return None
        self.room.release()
        return task


async def _held(
    run: _Run[T, ReplyT],
    reader: asyncio.Future[None],
    generator: weakref.ref[AsyncGenerator[ItemResult[T, ReplyT], None]],
) -> None:
    """Hold a run in its ``MiniAgents`` context (a task of it) until the run has stopped.

    The context's exit waits for it, as for every task of the context: until the run's
    generator has been closed and its clean-up is done. As the exit begins, a generator
    that nobody reads any more is closed: one collected (left with ``break``: its closing
    is on its way) is waited for, one still held but resting at a ``yield`` is closed
    here; one being read (by another task) is waited for. Cancelled (the context exits
    after an error), it cancels the run's tasks and waits for them.
    """
    try:
        await run.alarm.wait()  # the run is over, or its context's exit begins
        if run.over.is_set():
            return
        results = generator()
        if _resting(results):
            await results.aclose()  # held, not read: closed as its collection would close it
        await run.over.wait()
    except asyncio.CancelledError:
        run.stopped = True
        tasks: list[asyncio.Future[Any]] = [reader, *run.running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results = generator()
        if _resting(results):
            await results.aclose()
        elif results is None:  # collected: its closing is on its way (a step at most)
            await run.over.wait()
        raise


async def _ended(*tasks: asyncio.Future[Any]) -> None:
    """Wait until ``tasks`` (cancelled) have ended; cancelled meanwhile, still, then raise."""
    ended = asyncio.gather(*tasks, return_exceptions=True)
    try:
        await asyncio.shield(ended)
    except asyncio.CancelledError:
        await asyncio.wait((ended,))  # (their clean-up is the run's: it finishes first)
        raise


def _resting(results: object) -> TypeGuard[types.AsyncGeneratorType[Any, Any]]:
    """Whether ``results`` is an async generator that has started and rests at a ``yield``."""
    return (
        isinstance(results, types.AsyncGeneratorType)
        and not results.ag_running
        and results.ag_frame is not None
    )


def item_input_error(item: object, index: int, caller: str) -> MessageTypeError | None:
    """The error for an item that cannot be an agent's input at all, else ``None``.

    An item is a ``MessageType`` (or ``None``, no input): one of another type (an ``int``,
    ``bytes``), or a list or tuple holding one, would only fail as the agent's input. What
    an iterable that is not a list or a tuple holds is not looked at here (reading it would
    use it up): the agent's input checks it, and the item fails on its own. Both pipelines
    check their items with it (``pipeline`` and ``ray_pipeline``), and end the run with its
    error in the item's place, after the results of the items before it: the caller's
    mistake, not an agent's failure.

    Args:
        item: The item, as read from the items.
        index: Its index among the items (named in the message).
        caller: The pipeline's function, as the message names it (``"pipeline"``).
    """
    found = _not_an_input(item)
    if found is None:
        return None
    where = "" if found is item else f", holding {a_class(type(found))} ({found!r:.40})"
    return MessageTypeError(
        f"{caller}() got item {index}, {a_class(type(item))} ({item!r:.40}){where}, "
        "which cannot be an agent's input: each item is one interaction's input, a MessageType "
        "(str, dict, Message, a pydantic model, MessagePromise, MessageSequencePromise, or an "
        "(async) iterable or Observable of these). Turn each item into one first, e.g. "
        "(str(number) for number in range(1000)) for numbers."
    )


def _not_an_input(item: object) -> object | None:
    """``item``, or a value in it (a list, a tuple) that is no ``MessageType``; else ``None``."""
    if isinstance(item, (list, tuple)):
        for part in item:
            if type(part) is not str and (found := _not_an_input(part)) is not None:
                return found
        return None
    if item is None or isinstance(item, _INPUTS):
        return None
    if isinstance(item, (bytes, bytearray, memoryview)) or not isinstance(item, _ITERABLES):
        return item
    return None


_INPUTS = (str, Mapping, BaseModel, StreamedPromise, BaseException, Observable)
"""What is an agent's input as it is (a ``Message`` is a pydantic model)."""

_ITERABLES = (Iterable, AsyncIterable)
"""What is an agent's input if what it holds is (looked at by the input itself)."""


async def _cancelled(task: asyncio.Future[MessageTuple[ReplyT]]) -> None:
    """Cancel ``task`` (a try) and wait until it has ended.

    A cancellation of the caller meanwhile (the run stopping while a timed-out try cleans
    up) does not cut the wait short, and is raised after it (not swallowed with the try's
    own ``CancelledError``: the item would have gone on to its retries). An error the try
    ends with instead is raised.
    """
    task.cancel()
    try:
        await asyncio.wait((task,))
    except asyncio.CancelledError:
        while not task.done():  # (the try was cancelled already: it ends soon)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((task,))
        raise
    if not task.cancelled():
        task.result()


async def _close_unread(items: Iterable[T] | AsyncIterable[T] | Observable[T]) -> None:
    """Close the items of a run whose set-up failed, as a run stopped early closes them.

    An iterator or async iterator of its own (e.g. a generator, a file) is closed, so that
    its clean-up runs; an iterable that makes a new iterator for each reader, and an
    observable nobody subscribed to, have nothing to close.
    """
    if isinstance(items, AsyncIterator):
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
    elif isinstance(items, Iterator):
        close = getattr(items, "close", None)
        if close is not None:
            close()


async def _aiter_items(
    items: Iterable[T] | AsyncIterable[T] | Observable[T], overflow: Overflow
) -> AsyncGenerator[T, None]:
    """The items one by one; closed early (the run stopped), it closes what it reads."""
    if isinstance(items, Observable):
        stream: StreamedPromise[T, None] = StreamedPromise(
            items, resolver=_no_whole, overflow=overflow
        )
        shown = core_of(stream)  # its own record, or the one of the stream it is a view of
        # On demand: a pulled source makes each item when the run has room for it, not a
        # high-water mark ahead (those would be read and not yet handed out: in flight).
        iterator = aiter(stream)
        read = 0
        ended = False
        try:
            while True:
                read_on_demand(iterator, read + 1)
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    ended = True
                    return
                read += 1
                yield item
        finally:
            await iterator.aclose()
            # a view (of observed_items' stream: a hot source's record, or a stream the
            # library keeps, e.g. an agent's replies): let go of, and the stream it shows
            # given up on, as in the branch below, if nobody else reads it
            stream.cancel()
            if not ended and core_of(stream) is not shown:
                shown.check_abandoned()
    elif isinstance(items, AsyncIterable):
        async_iterator = aiter(items)
        ended = False
        try:
            async for item in async_iterator:
                yield item
            ended = True
        finally:
            aclose = getattr(async_iterator, "aclose", None)
            if aclose is not None:  # e.g. an async generator: its clean-up runs now
                await aclose()
            if not ended and isinstance(items, StreamedPromise):
                # given up on, as an agent cancelled gives up its input: an agent's replies
                # that nobody else reads stop (their agent is cancelled)
                core_of(items).check_abandoned()
    else:
        sync_iterator = iter(items)
        try:
            for item in sync_iterator:
                yield item
        finally:
            close = getattr(sync_iterator, "close", None)
            if close is not None:  # e.g. a generator: its clean-up runs now
                close()


def observed_items(source: Observable[T], overflow: Overflow) -> StreamedPromise[T, None]:
    """A stream of the items of ``source``, for a run to read (``pipeline``, ``map_agent``).

    A hot observable is subscribed to now, so that what it emits before the run reads it
    is kept (within ``overflow``'s policy); the observable of a stream the library keeps
    (an agent's replies) is a view of it, pulled only as the run reads it. The caller
    cancels the stream when the run has ended (a view is only let go of).
    """
    items: StreamedPromise[T, None] = StreamedPromise(source, resolver=_no_whole, overflow=overflow)
    if not isinstance(source, ReplayObservable):
        items.start()
    return items


async def _no_whole(pieces: tuple[object, ...]) -> None:
    return None


def checked_batch(batch: PipelineBatching | None, caller: str) -> PipelineBatching | None:
    """``batch``, if it is a batch mode (something with a ``start``) or ``None``.

    Raises:
        PipelineArgumentError: if it is not, naming ``caller`` and what to give.
    """
    given: object = batch  # (typed so; code mypy does not check may pass anything)
    if given is not None and not callable(getattr(given, "start", None)):
        raise PipelineArgumentError(
            f"{caller}() needs batch to be a batch mode, e.g. "
            f"miniagents.ext.llm.batch.BatchMode(), or None; got {given!r}."
        )
    return batch


def agent_chain(
    agents: MiniAgent[..., Message] | Sequence[MiniAgent[..., Message]], caller: str
) -> list[MiniAgent[..., Message]]:
    """The agents of a run as a chain (one agent, or a list of them), checked.

    Raises:
        PipelineArgumentError: for no agents, or anything in ``agents`` that is not an agent
            (a plain function is named with the decorator it lacks).
    """
    given: object = agents  # (typed so; code mypy does not check may pass anything)
    if isinstance(given, MiniAgent):
        chain = [given]
    else:
        chain = list(given) if isinstance(given, Iterable) and not isinstance(given, str) else []
    if not chain or not all(isinstance(agent, MiniAgent) for agent in chain):
        raise PipelineArgumentError(_not_agents(caller, agents, [*chain] or [given]))
    return chain


def _not_agents(caller: str, agents: object, candidates: list[object]) -> str:
    """Why ``agents`` (its ``candidates`` for a chain) are not a chain of agents, and the fix.

    A function or a class of agents among them is told as that first (the mistake made).
    """
    stray = next((one for one in candidates if not isinstance(one, MiniAgent)), None)
    if inspect.isfunction(stray):
        name = stray.__name__
        return (
            f"{caller}() needs an agent, but {name} is a function, not an agent: decorate it "
            f"with @miniagent (an `async def {name}(ctx: InteractionContext) -> None` that "
            "reads its item from ctx.message_promises and replies with ctx.reply)."
        )
    if isinstance(stray, type) and issubclass(stray, MiniAgent):
        return (
            f"{caller}() needs an agent, but {stray.__name__} is a class of agents, not an "
            "agent: pass an agent object, e.g. offline_agent.fork(...) or an agent made "
            "with @miniagent."
        )
    return (
        f"{caller}() needs at least one agent (an agent, or a list of agents for a chain) "
        f"to run over the items; got {agents!r}."
    )


def _agents_in(items: object) -> bool:
    """Whether ``items`` are an agent or a list or tuple of agents (given in their place)."""
    if isinstance(items, list | tuple):
        return bool(items) and isinstance(items[0], MiniAgent)
    return isinstance(items, MiniAgent)


def _limits(max_in_flight: int | None, max_concurrency: int | None, owner: str) -> tuple[int, int]:
    """``max_in_flight`` and ``max_concurrency``, checked, each with its default.

    Raises:
        PipelineArgumentError: for a limit below 1, or a ``max_concurrency`` above the
            ``max_in_flight`` given.
    """
    error = PipelineArgumentError
    fixes = {  # (was: no fix said)
        "max_concurrency": "Pass e.g. max_concurrency=8, or leave it out (None) for as many "
        "items at once as are in flight.",
        "max_in_flight": "Pass e.g. max_in_flight=64, or leave it out (None) for "
        f"{DEFAULT_MAX_IN_FLIGHT}, or max_concurrency if that is more.",
    }
    if max_in_flight is None:  # room for every item that may run at once, and 64 at least
        if max_concurrency is None:
            max_in_flight = DEFAULT_MAX_IN_FLIGHT
        else:
            fix = fixes["max_concurrency"]
            check_count(max_concurrency, "max_concurrency", owner=owner, fix=fix, error=error)
            max_in_flight = max(DEFAULT_MAX_IN_FLIGHT, max_concurrency)
    concurrency = max_in_flight if max_concurrency is None else max_concurrency
    for name, value in (("max_in_flight", max_in_flight), ("max_concurrency", concurrency)):
        check_count(value, name, owner=owner, fix=fixes[name], error=error)
    if concurrency > max_in_flight:  # (both given: was silently bounded by max_in_flight)
        raise refused_argument(
            concurrency,
            "max_concurrency",
            f"at most max_in_flight ({max_in_flight})",
            owner=owner,
            fix=f"Every item that runs is in flight, so at most {max_in_flight} would run at "
            f"once: raise max_in_flight to at least {concurrency} (or leave it out: it "
            f"follows max_concurrency), or lower max_concurrency to {max_in_flight}.",
            error=error,
        )
    return max_in_flight, concurrency


def pipeline_settings(
    agents: MiniAgent[..., Message] | Sequence[MiniAgent[..., Message]],
    *,
    caller: str,
    max_in_flight: int | None,
    max_concurrency: int | None,
    ordered: bool,
    retries: int,
    retry_on: tuple[type[BaseException], ...],
    backoff: float,
    timeout: float | None,
    fail_fast: bool,
    overflow: Overflow,
    max_backoff: float = DEFAULT_MAX_BACKOFF,
    jitter: bool | random.Random = True,
    progress: bool | None = False,
    description: str | None = None,
    total: int | None = None,
) -> tuple[list[MiniAgent[..., Message]], PipelineSettings]:
    """The chain and the settings of a run, checked (``pipeline`` and ``map_agent`` share it).

    Raises:
        PipelineArgumentError: for no agents, a limit below 1, a ``max_concurrency`` above
            the ``max_in_flight`` given, negative retries or backoff,
            a ``max_backoff`` that is not a finite number of seconds >= 0, a timeout that is
            not positive, a ``retry_on`` that is not a tuple of exception classes (a
            ``ValueError``), an ``ordered``, ``fail_fast`` or ``progress`` that is not a
            bool, a ``jitter`` that is neither a bool nor a ``random.Random``,
            an unknown ``overflow``, a ``total`` that is not a whole number >= 0, or a
            ``description`` that is not a ``str``.
    """
    chain = agent_chain(agents, caller)
    owner, error = f"{caller}()", PipelineArgumentError
    max_in_flight, concurrency = _limits(max_in_flight, max_concurrency, owner)
    fix = "Pass e.g. retries=2 (each item tried up to 3 times), or leave it out for 0."
    check_count(retries, "retries", least=0, owner=owner, fix=fix, error=error)
    fix = "Pass True or False, or leave it out for the default."
    for name, flag in (("ordered", ordered), ("fail_fast", fail_fast)):
        check_flag(flag, name, owner=owner, fix=fix, error=error)
    fix = "It is the first wait between two tries: pass e.g. backoff=0.5, or 0 for none."
    check_seconds(backoff, "backoff", zero=True, forever=True, owner=owner, fix=fix, error=error)
    fix = f"It is the longest wait between two tries: e.g. {DEFAULT_MAX_BACKOFF:g}, the default."
    check_seconds(max_backoff, "max_backoff", zero=True, owner=owner, fix=fix, error=error)
    if timeout is not None:
        fix = "Or pass None for no timeout."
        check_seconds(timeout, "timeout", forever=True, owner=owner, fix=fix, error=error)
    retry_on_given: object = retry_on  # (typed so; code mypy does not check may pass anything)
    if not isinstance(retry_on_given, (tuple, list)) or not all(
        isinstance(kind, type) and issubclass(kind, BaseException) for kind in retry_on_given
    ):
        raise PipelineArgumentError(
            f"{caller}() needs retry_on to be a tuple of exception classes, e.g. "
            f"retry_on=(ConnectionError, TimeoutError), or () for none; got {retry_on!r}."
        )
    if not isinstance(jitter, (bool, random.Random)):
        raise PipelineArgumentError(
            f"{caller}() needs jitter to be True (random waits), False (none) or a "
            f"random.Random (e.g. random.Random(7), for waits a test can repeat); got {jitter!r}."
        )
    check_progress_options(progress, total, description, owner=owner, error=error)
    try:
        checked_overflow(overflow)
    except StreamLimitError as error:
        raise PipelineArgumentError(f"{caller}() got a bad overflow: {error}") from error
    settings = PipelineSettings(
        max_in_flight=max_in_flight,
        max_concurrency=concurrency,
        ordered=ordered,
        retries=retries,
        retry_on=tuple(retry_on),
        backoff=backoff,
        timeout=timeout,
        fail_fast=fail_fast,
        progress=progress,
        description=description if description is not None else chain[-1].alias,
        total=total,
        overflow=overflow,
        max_backoff=max_backoff,
        caller=caller,
        jitter=_JITTER if jitter is True else jitter or None,
    )
    return chain, settings


def pipeline(
    agents: MiniAgent[..., ReplyT] | Sequence[MiniAgent[..., ReplyT]],
    items: Iterable[T] | AsyncIterable[T] | Observable[T],
    /,
    *,
    max_in_flight: int | None = None,
    max_concurrency: int | None = None,
    ordered: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
    backoff: float = 0.5,
    max_backoff: float = DEFAULT_MAX_BACKOFF,
    jitter: bool | random.Random = True,
    timeout: float | None = None,
    fail_fast: bool = False,
    progress: bool | None = None,
    description: str | None = None,
    total: int | None = None,
    overflow: Overflow = "buffer",
    durable: bool | str = False,
    batch: PipelineBatching | None = None,
) -> Pipeline[T, ReplyT]:
    """Run an agent, or a chain of agents, over every item, concurrently, in this process.

    Example:
        >>> # async for result in pipeline(summarizer, documents, max_concurrency=16): ...

    Args:
        agents: The agent, or the agents of a chain (each gets the replies of the one
            before; the first gets the item).
        items: The items: an iterable or an async iterable of ``MessageType`` values, read
            lazily, or an observable of them (pushed: what it emits beyond the high-water
            mark follows ``overflow``). Each item is one interaction's input (what
            ``agent.inquire`` takes); an item that cannot be one (an ``int``, ``bytes``, a
            list holding one) ends the run with a ``MessageTypeError`` naming it, in its
            place: after the results of every item before it, and none after it starts.
        max_in_flight: At most this many items are read and not yet handed to you
            (default: 64, or ``max_concurrency`` if that is more, so that as many items as
            it allows can run at once; given, it may not be below ``max_concurrency``:
            every item that runs is in flight).
        max_concurrency: At most this many items run at once (default: ``max_in_flight``).
        ordered: Give the results in the input's order (``True``) or as they complete.
        retries: How many more times an item that failed with one of ``retry_on`` is tried.
        retry_on: The errors worth retrying (e.g. ``LLMRateLimitError``, ``LLMServerError``;
            a ``PipelineTimeoutError`` is a ``TimeoutError``).
        backoff: The ceiling of the wait before the first retry, in seconds; it doubles
            with each retry, up to ``max_backoff``.
        max_backoff: The longest wait before a retry, in seconds (120 by default): the
            doubling stops there, so that many retries wait this long each at most, not
            longer and longer.
        jitter: Full jitter: each wait is drawn at random between 0 and its ceiling (the
            doubling ``backoff``), so that items that failed together (on one rate limit)
            spread their retries out instead of trying again in lock-step. ``True`` draws
            from the process's own random source; a ``random.Random`` (e.g.
            ``random.Random(7)``) draws from it, for waits a test can repeat; ``False``
            waits each ceiling whole, as before.
        timeout: The longest one try of an item may take, in seconds (a
            :class:`~miniagents.pipeline.errors.PipelineTimeoutError` after it); ``None``
            for no limit. It counts a wait for an agent's own ``max_concurrency`` slot
            too: with such an agent, give the pipeline the same ``max_concurrency``.
        fail_fast: Stop the run at the first failed item, raising its error and cancelling
            the items in flight (instead of giving a result holding it). The first to fail
            in time, not in order: the results not handed out by then are dropped, even
            those of items that finished (with ``ordered=True``, held back behind an earlier
            item still running).
        progress: Show a progress bar (tqdm, on stderr): ``None`` shows it on a terminal.
        description: The text before the progress bar (default: the last agent's alias).
        total: The number of items, for the progress bar (default: ``len(items)`` if it
            has one).
        overflow: What to do with the items of an observable that outruns the pipeline.
        durable: Run each item as a durable run (``miniagents.ext.dbos``), named by the
            pipeline's id and the item's position (and content): run again after a crash,
            the pipeline gives the finished items' recorded replies without calling
            anything, recovers the items that were running, and runs the rest. ``True``
            takes the agents' aliases joined by ``>`` as the id (``"EXTRACT>SUMMARIZE"``);
            a string is the id itself (to tell two pipelines of the same agents apart).
        batch: Batch mode (``miniagents.ext.llm.batch.BatchMode(...)``): each call of a
            model the items make is queued into its provider's batch API (half the price
            at OpenAI and Anthropic) and gets its reply when the batch returns it; an
            agent with several calls has each in a later batch. Raise ``max_concurrency``
            with it: a batch holds at most the calls of the items running. With
            ``durable=``, the batches are kept in the database of durable runs.

    Raises:
        PipelineArgumentError: for no agents, a limit below 1, a ``max_concurrency`` above
            the ``max_in_flight`` given, negative retries or backoff,
            a ``max_backoff`` that is not a finite number of seconds >= 0, a timeout that
            is not positive (a ``ValueError``), an ``ordered``, ``fail_fast`` or
            ``progress`` that is not a bool, a ``jitter`` that is neither a bool nor a
            ``random.Random``, an unknown ``overflow``, a ``durable`` that is neither a
            bool nor a non-empty string, or ``items`` that are not an iterable, or are a
            ``str`` (whose characters would each be an item: pass ``[text]``).
        DurablePipelineUnavailableError: for ``durable=`` without ``miniagents.ext.dbos``
            imported (``pip install "miniagents[dbos]"``).
    """
    if not isinstance(agents, MiniAgent) and _agents_in(items):
        raise PipelineArgumentError(
            "pipeline() takes the agents first, then the items, but got the items "
            f"({reprlib.repr(agents)}) first and the agents second: swap them, "
            "pipeline(agents, items)."
        )
    chain, settings = pipeline_settings(
        agents,
        caller="pipeline",
        max_in_flight=max_in_flight,
        max_concurrency=max_concurrency,
        ordered=ordered,
        retries=retries,
        retry_on=retry_on,
        backoff=backoff,
        max_backoff=max_backoff,
        jitter=jitter,
        timeout=timeout,
        fail_fast=fail_fast,
        progress=progress,
        description=description,
        total=total,
        overflow=overflow,
    )
    runner = durable_items(durable, chain, caller="pipeline")
    name = durable if isinstance(durable, str) else None
    return Pipeline(chain, items, settings, runner, batch, name)


def _shown(text: str) -> str:
    """``text`` as Python writes it, cut short past 40 characters."""
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}..."
