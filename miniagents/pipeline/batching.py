"""Batch mode: what ``pipeline(..., batch=...)`` and ``map_agent(..., batch=...)`` are given.

In batch mode the items run as usual, but a layer above (``miniagents.ext.llm.batch``'s
``BatchMode``) queues each call of a model they make into a provider's batch API, and
hands the call its reply when the batch returns it. This layer knows nothing of models:
it opens the mode's run when the pipeline starts, makes every task of the run (the reader,
the items, the durable runs it recovers, the progress bar's meters) in a context where the
run is active, tells it when each try of an item starts and ends (a run may flush its
queue when every item running waits for a queued call), and closes it with how the
pipeline ended::

    pipeline:  start(name, journal) -> aopen() | activate() in the run's context
               item(): try 1 of item 0 ... | item(): try 1 of item 1 ... | aclose(ending)

A run keeps what it needs to find its batches again after a crash in a
:class:`RunJournal`: a file by default, the database of durable runs for a durable
pipeline (``DurableItems.journal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Literal, Protocol, TypeAlias

__all__ = ["BatchedRun", "PipelineBatching", "RunEnding", "RunJournal"]

RunEnding: TypeAlias = Literal["completed", "stopped", "interrupted"]
"""How a run ended: every item handed out (``completed``); the reader left early or the
run failed (``stopped``: what it started is not wanted any more); or it was cancelled
(``interrupted``: e.g. Ctrl+C, and a restart may pick it up again)."""


class RunJournal(Protocol):
    """Records a run keeps across a crash of its process (in order), until it is cleared."""

    async def aload(self) -> list[dict[str, object]]:
        """The records appended since the journal was last cleared, in order."""
        ...

    async def aappend(self, record: Mapping[str, object]) -> None:
        """Add a record (JSON values), durably: it is kept once this returns."""
        ...

    async def aclear(self) -> None:
        """Drop every record (the run they were for has ended)."""
        ...


class BatchedRun(Protocol):
    """One run of a pipeline in batch mode (made by :meth:`PipelineBatching.start`)."""

    async def aopen(self) -> None:
        """Get ready before any item runs (read the journal of an earlier run)."""
        ...

    def activate(self) -> None:
        """Make the calls of the current context go to the run (called in its context)."""
        ...

    def item(self) -> AbstractContextManager[object]:
        """Around each try of an item, in the item's task."""
        ...

    async def aclose(self, ending: RunEnding) -> None:
        """End the run: nothing more runs in it (see :data:`RunEnding`)."""
        ...


class PipelineBatching(Protocol):
    """What ``pipeline(..., batch=...)`` takes: ``miniagents.ext.llm.batch.BatchMode``."""

    def start(self, name: str, journal: RunJournal | None) -> BatchedRun:
        """A run for the pipeline ``name``.

        Args:
            name: The pipeline's name: its durable id, else its agents' aliases joined by
                ``>`` (what a journal of its own is named after).
            journal: The journal the pipeline keeps its runs in (a durable pipeline's
                database), or ``None``: the mode's own, if any.
        """
        ...
