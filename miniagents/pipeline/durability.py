"""Durable pipelines: where ``pipeline(..., durable=...)`` finds the layer that records runs.

A durable pipeline runs each item as a durable run, named by the pipeline's id and the
item's position, so that a pipeline killed at item 60,000 and run again gives the
finished items' recorded replies (no call made) and runs the rest::

    run 1:   item 0 (recorded) | item 1 (recorded) | item 2 ...  (kill -9)
    run 2:   item 0 (replayed) | item 1 (replayed) | item 2 (recovered) | item 3 ...

This layer records nothing itself: a layer above (``miniagents.ext.dbos``, at its import)
registers a :data:`DurableItemsFactory` with :func:`set_durable_items`, and
:func:`durable_items` asks it for the runner of one pipeline (:class:`DurableItems`, the
:class:`~miniagents.pipeline.item_runner.ItemRunner` whose tries are durable runs). Without
one, :class:`~miniagents.pipeline.errors.DurablePipelineUnavailableError` says what to
install and import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

from miniagents.messages import Message
from miniagents.miniagents import MiniAgent
from miniagents.miniagents.lowlevel import Hook
from miniagents.pipeline.errors import DurablePipelineUnavailableError, PipelineArgumentError
from miniagents.pipeline.item_runner import ItemRunner, ItemTry

__all__ = [
    "DurableItemRunner",
    "DurableItems",
    "DurableItemsFactory",
    "durable_items",
    "durable_pipeline_id",
    "set_durable_items",
]

DurableItemRunner: TypeAlias = ItemTry
"""Runs one try of one item as a durable run: ``(index, attempt, item)`` to its replies."""


class DurableItems(ItemRunner):
    """How a durable pipeline runs its items: an item runner whose tries are durable runs.

    What the layer that records runs supplies (its :data:`DurableItemsFactory` makes one
    per pipeline); built as any :class:`~miniagents.pipeline.item_runner.ItemRunner`.

    Attributes:
        run: Runs one try of one item as a durable run.
        aready: Gets the recording ready (e.g. launches its engine, which may take
            seconds): the pipeline awaits it once, before any item's try and its timer
            start, so that ``timeout=`` limits the tries alone, in the context its items
            run in (the runs it recovers run there too).
        journal: Where a batch mode keeps its batches (``pipeline(..., batch=...)``),
            beside the runs; ``None``: the batch mode's own journal.
    """


DurableItemsFactory: TypeAlias = Callable[[str, Sequence[MiniAgent[..., Message]]], DurableItems]
"""Makes how a durable pipeline runs its items from its id and its chain of agents."""

_factory: Hook[DurableItemsFactory] = Hook("the durable items of pipelines")


def set_durable_items(factory: DurableItemsFactory) -> Callable[[], None]:
    """Make ``factory`` the one that durable pipelines made from now on use.

    Args:
        factory: Called by ``pipeline(..., durable=...)`` with the pipeline's id and its
            chain; it may raise (e.g. a configuration error) to refuse the pipeline.

    Returns:
        A function that removes the factory again (if it is still the one set).
    """
    _factory.set(factory)

    def remove() -> None:
        if _factory.current == factory:
            _factory.set(None)

    return remove


def durable_pipeline_id(chain: Sequence[MiniAgent[..., Message]]) -> str:
    """The id ``durable=True`` gives a pipeline: its agents' aliases, joined by ``>``.

    Example:
        >>> # pipeline([extract, summarize], items, durable=True): id "EXTRACT>SUMMARIZE"
    """
    return ">".join(agent.alias for agent in chain)


def durable_items(
    durable: bool | str, chain: Sequence[MiniAgent[..., Message]], *, caller: str
) -> DurableItems | None:
    """How a pipeline's items run as durable runs, or ``None`` for ``durable=False``.

    Raises:
        DurablePipelineUnavailableError: if ``durable`` asks for one and no layer that
            records runs is imported.
        PipelineArgumentError: if ``durable`` is neither a bool nor a non-empty string.
    """
    if durable is False:
        return None
    if durable is True:
        pipeline_id = durable_pipeline_id(chain)
    elif isinstance(durable, str) and durable.strip():
        pipeline_id = durable
    else:
        raise PipelineArgumentError(
            f"{caller}() needs durable to be True, False or a pipeline id (a non-empty "
            f"string); got {durable!r}."
        )
    factory = _factory.current
    if factory is None:
        raise DurablePipelineUnavailableError(
            f"{caller}(..., durable=...) records each item's run with DBOS, which is not "
            'loaded: install it (pip install "miniagents[dbos]") and import '
            "miniagents.ext.dbos before making the pipeline."
        )
    return factory(pipeline_id, chain)
