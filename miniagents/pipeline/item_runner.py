"""Item runners: how a local pipeline runs one try of an item, if not by inquiring its chain.

By default a :class:`~miniagents.pipeline.local.Pipeline` runs a try of an item by
inquiring its chain of agents (the first gets the item, each next one the replies of the
one before) and awaiting the last agent's replies. Given an :class:`ItemRunner`, it asks
the runner instead; everything around the try stays the pipeline's (the item's task, its
slot of ``max_concurrency``, the timeout, the retries, the order of the results)::

    pipeline:  read item -> [slot, timeout] runner.run(index, attempt, item) -> result
    retries:   runner.run(index, 2, item), runner.run(index, 3, item), ...
    once:      await runner.aready()      (before the first try; outside every timeout)

Two runners ship with the library: the durable layer's
(:class:`~miniagents.pipeline.durability.DurableItems`, each try a durable run, for
``pipeline(..., durable=...)``) and the evals' (``miniagents.evals``: each try a case run
and scored in the item's own task).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from miniagents.messages import Message, MessageTuple
from miniagents.messages.sequence import MessageType
from miniagents.pipeline.batching import RunJournal

__all__ = ["ItemRunner", "ItemTry"]

ItemTry: TypeAlias = Callable[[int, int, MessageType], Awaitable[MessageTuple[Message]]]
"""Runs one try of one item: ``(index, attempt, item)`` to its replies, complete.

``index`` is the item's position in the input (from 0), ``attempt`` the try's number (1
for the first, 2 for the first retry, ...).
"""


async def _ready_at_once() -> None:
    """Nothing to get ready (the default ``aready`` of a runner)."""


@dataclass(frozen=True)
class ItemRunner:
    """How a pipeline runs each try of its items (instead of inquiring its chain).

    Attributes:
        run: Runs one try of one item, in the item's own task, within the pipeline's
            ``timeout`` (cancelled when the try is given up) and slot of
            ``max_concurrency``; a failure of it is retried as a failure of the chain
            would be (``retries``, ``retry_on``), with the next attempt number.
        aready: Gets the runner ready (e.g. launches an engine, which may take seconds):
            the pipeline awaits it once, before any item's try and its timer start, in the
            context its items run in; its error ends the run before any item runs. By
            default there is nothing to get ready.
        journal: Where a batch mode keeps its batches (``pipeline(..., batch=...)``),
            beside what the runner records; ``None``: the batch mode's own journal.

    Example:
        >>> # async def run(index, attempt, item): return await summarize.inquire(item)
        >>> # Pipeline([summarize], items, settings, ItemRunner(run))
    """

    run: ItemTry
    aready: Callable[[], Awaitable[None]] = _ready_at_once
    journal: RunJournal | None = None
