"""``map_agent``: every item of an observable its own interaction, concurrently, as results."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import aclosing

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from typing_extensions import TypeVar

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageType
from miniagents.miniagents import MiniAgent, MiniAgents
from miniagents.miniagents.lowlevel import start_task
from miniagents.pipeline import ItemResult, Pipeline
from miniagents.pipeline.batching import PipelineBatching
from miniagents.pipeline.local import (
    DEFAULT_MAX_BACKOFF,
    checked_batch,
    observed_items,
    pipeline_settings,
)
from miniagents.promising.limits import Overflow

__all__ = ["map_agent"]

T = TypeVar("T", bound=MessageType)
ReplyT = TypeVar("ReplyT", bound=Message, default=Message)


def map_agent(
    agents: MiniAgent[..., ReplyT] | Sequence[MiniAgent[..., ReplyT]],
    /,
    *,
    max_concurrency: int | None = None,
    max_in_flight: int | None = None,
    ordered: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
    backoff: float = 0.5,
    max_backoff: float = DEFAULT_MAX_BACKOFF,
    jitter: bool | random.Random = True,
    timeout: float | None = None,
    fail_fast: bool = False,
    overflow: Overflow = "buffer",
    batch: PipelineBatching | None = None,
) -> Callable[[Observable[T]], Observable[ItemResult[T, ReplyT]]]:
    """Each item of the source is one interaction of the agent (or chain); emit their results.

    The operator twin of :func:`miniagents.pipeline`, with the same arguments and the same
    :class:`~miniagents.pipeline.ItemResult` per item (``result.get()`` gives the replies,
    or raises the item's error): at most ``max_concurrency`` items run at once, and the
    source is read no further than ``max_in_flight`` items ahead of the results emitted. A
    source the library pulls (a stream made from an async iterable, an agent's replies) is
    pulled no further than that, plus its high-water mark; a hot source is not slowed, what
    it emits beyond the high-water mark follows ``overflow``. A failed item is a result
    holding its error (``fail_fast=True``: the error ends the result instead, and the items
    in flight are cancelled). An item that cannot be an agent's input at all (not a
    ``MessageType``) ends the result with a ``MessageTypeError`` in its place: after the
    results of the items before it, and no item after it starts. Disposing of the
    subscription cancels the items in flight.
    Each subscription reads the source anew and needs a running ``MiniAgents`` context
    (without one, it raises ``NoActiveContextError`` and does not subscribe to the source).

    .. marble::
        :alt: map_agent

        --a--b--c-----------|
        [ map_agent(upper, max_concurrency=2) ]    b's interaction is the slowest
        ------ra-------rb(rc|                      (ordered=True: rc waits for rb)

    Example:
        >>> # source.pipe(map_agent(classify, max_concurrency=16), ops.map(ItemResult.get))

        (``ops.map(ItemResult.get)``, not a lambda: in ``pipe``, mypy cannot tell a lambda's
        parameter from the operator before it, and ``lambda r: r.get()`` is an error under
        ``--strict``; the method itself is typed, and the result is an
        ``Observable[MessageTuple[ReplyT]]``.)

    Args:
        agents: The agent, or the agents of a chain (each gets the replies of the one
            before; the first gets the item).
        max_concurrency: At most this many items run at once (default: ``max_in_flight``).
        max_in_flight: At most this many items are read and their results not yet emitted
            (default: 64, or ``max_concurrency`` if that is more; given, it may not be
            below ``max_concurrency``: every item that runs is in flight).
        ordered: Emit the results in the source's order (``True``) or as they complete.
        retries: How many more times an item that failed with one of ``retry_on`` is tried.
        retry_on: The errors worth retrying.
        backoff: The ceiling of the wait before the first retry, in seconds; it doubles
            with each retry, up to ``max_backoff``.
        max_backoff: The longest wait before a retry, in seconds (120 by default).
        jitter: Each wait drawn at random between 0 and its ceiling (``True``, from the
            process's random source; a ``random.Random`` to repeat them), or ``False``:
            the ceiling whole (see :func:`miniagents.pipeline.pipeline`).
        timeout: The longest one try of an item may take, in seconds (then the item fails
            with a ``PipelineTimeoutError``); ``None`` for no limit. It counts a wait for an
            agent's own ``max_concurrency`` slot too: with such an agent, give the operator
            the same ``max_concurrency``.
        fail_fast: End the result with the first failed item's error: the first to fail
            in time, not in order. The results not emitted by then are dropped, even those
            of items that finished (with ``ordered=True``, held back behind an earlier item
            still running, which is cancelled with the others in flight).
        overflow: What to do with items of a hot source that outruns the agents (see
            :data:`~miniagents.promising.limits.Overflow`).
        batch: Batch mode (``miniagents.ext.llm.batch.BatchMode(...)``): the calls of
            models the items make go through the providers' batch APIs (see
            :func:`miniagents.pipeline.pipeline`); each subscription is a run of its own.

    Raises:
        PipelineArgumentError: for no agents, a limit below 1, a ``max_concurrency`` above
            the ``max_in_flight`` given, negative retries or backoff, a ``max_backoff``
            that is not a finite number of seconds >= 0, a timeout that is not positive (a
            ``ValueError``), a ``jitter`` that is neither a bool nor a ``random.Random``,
            an unknown ``overflow``, or a ``batch`` that is not a batch mode.
    """
    chain, settings = pipeline_settings(
        agents,
        caller="map_agent",
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
        overflow=overflow,
    )
    checked_batch(batch, "map_agent")  # when the operator is made, as the others

    def operator(source: Observable[T]) -> Observable[ItemResult[T, ReplyT]]:
        def subscribe(
            observer: abc.ObserverBase[ItemResult[T, ReplyT]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            # the context first: a subscription refused for want of one leaves the source
            # alone (subscribed to, a hot source would stay so, its items kept for nobody)
            MiniAgents.get_current()
            # subscribed to at once, as by any operator: what a hot source emits before the
            # run's task starts is kept for it, not lost
            items = observed_items(source, overflow)
            run: Pipeline[T, ReplyT] = Pipeline(chain, items.as_observable(), settings, batch=batch)
            started = False

            async def emit() -> None:
                nonlocal started
                started = True
                try:
                    async with aclosing(run.__aiter__()) as results:
                        async for result in results:
                            observer.on_next(result)
                except Exception as error:
                    observer.on_error(error)
                else:
                    observer.on_completed()
                finally:
                    items.cancel()  # (read to its end, or a hot source: unsubscribed from)

            task = start_task(emit(), "map_agent")

            def dispose() -> None:
                # at once: the task's cancellation lands only at its next step, and until
                # then the run would read on and start the items it has read
                run.stop()
                task.cancel()  # the results close: the items' interactions waited for
                if not started:  # (the task never runs: nothing else lets go of the source)
                    items.cancel()

            return Disposable(dispose)

        return Observable(subscribe)

    return operator
