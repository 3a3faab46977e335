"""``BatchMode``: run a pipeline's calls of models through the providers' batch APIs.

::

    async for result in pipeline(classify, documents, max_concurrency=5_000,
                                 batch=BatchMode(max_wait=60)):
        ...

Each item runs its agents as usual; each call of a model they make waits in a queue, goes
to the provider in a batch (OpenAI's Batch API, Anthropic's Message Batches, Gemini's
Batch API: half the price of a live call), and gets its reply (its text, tool calls,
usage) when the batch returns it. An agent with several calls (a tool loop, a chain) has
each in a later batch: any agent runs in batch mode unchanged. See
:mod:`miniagents.ext.llm.batch._run` for how queues are flushed and failures tried again,
and :mod:`miniagents.ext.llm.batch.journal` for how a restarted process re-attaches to the
batches of the one that died.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.llm.batch._run import BatchProgress, BatchRun, Counters
from miniagents.ext.llm.batch.api import BatchAPI, BatchLimits
from miniagents.ext.llm.batch.journal import FileJournal
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.pipeline.batching import RunJournal
from miniagents.promising.sentinels import DEFAULT, Sentinel

__all__ = ["DEFAULT_JOURNAL_FOLDER", "BatchMode"]

DEFAULT_JOURNAL_FOLDER = Path("miniagents_batches")
"""Where a pipeline's journal goes by default: ``<folder>/<pipeline name>.jsonl``, in the
current folder."""


class BatchMode:
    """Batch mode for ``pipeline(..., batch=...)`` and ``map_agent(..., batch=...)``.

    One ``BatchMode`` may serve many runs; :attr:`progress` adds them up.

    Args:
        max_requests: Flush a queue into a batch once it holds this many requests
            (``None``: the provider's limit: 50,000 at OpenAI, 100,000 at Anthropic).
        max_bytes: Flush a queue once its requests hold this many bytes (``None``: the
            provider's limit: 200 MB at OpenAI, 256 MB at Anthropic).
        max_wait: Flush a queue once its oldest request has waited this many seconds.
        idle_wait: Flush the queues once every item that runs has waited this many seconds
            for a call (nothing more would come before a batch returns), so that the items
            that start as others end join the batch; 0: at the loop's next step.
        poll_interval: Seconds between two looks at each batch that runs.
        retry: What to do with a request that did not run (its batch expired or was
            cancelled) or got a 408, 409, 429 or 5xx: ``"batch"``: queue it again, for a
            later batch; ``"live"``: make the call live; ``"none"``: fail the call (an
            ``LLMBatchError``, or the HTTP error as the call would live).
        retries: How many times one call is tried again so.
        journal: Where the run notes its batches, so that a process started again after
            a crash re-attaches to them: a file path, a ``RunJournal``, or ``None`` for
            none. By default a file named after the pipeline in
            :data:`DEFAULT_JOURNAL_FOLDER`; a durable pipeline's (``durable=``) is kept
            in the database of its durable runs.

    Raises:
        LLMConfigurationError: for a limit below 1, a wait or an interval that is not a
            positive number of seconds (``idle_wait``: at least 0), an unknown ``retry``,
            negative ``retries``, or a ``journal`` that is none of a path, a ``RunJournal``
            and ``None``.
    """

    def __init__(
        self,
        *,
        max_requests: int | None = None,
        max_bytes: int | None = None,
        max_wait: float = 60.0,
        idle_wait: float = 1.0,
        poll_interval: float = 30.0,
        retry: Literal["batch", "live", "none"] = "batch",
        retries: int = 1,
        journal: str | os.PathLike[str] | RunJournal | Literal[Sentinel.DEFAULT] | None = DEFAULT,
    ) -> None:
        owner, error = "BatchMode", LLMConfigurationError
        for name, limit in (("max_requests", max_requests), ("max_bytes", max_bytes)):
            if limit is not None:
                fix = "Or pass None for the provider's limit."
                check_count(limit, name, owner=owner, fix=fix, error=error)
        self.max_wait = check_seconds(
            max_wait, "max_wait", owner=owner, fix="E.g. BatchMode(max_wait=30).", error=error
        )
        self.poll_interval = check_seconds(
            poll_interval,
            "poll_interval",
            owner=owner,
            fix="E.g. BatchMode(poll_interval=30).",
            error=error,
        )
        self.idle_wait = check_seconds(
            idle_wait,
            "idle_wait",
            zero=True,
            owner=owner,
            fix="E.g. BatchMode(idle_wait=1).",
            error=error,
        )
        if retry not in ("batch", "live", "none"):
            raise LLMConfigurationError(
                f"BatchMode's retry must be 'batch', 'live' or 'none', got {retry!r}."
            )
        check_count(retries, "retries", least=0, owner=owner, error=error)
        if not (
            journal is DEFAULT
            or journal is None
            or isinstance(journal, (str, os.PathLike))
            or all(hasattr(journal, name) for name in ("aload", "aappend", "aclear"))
        ):
            raise LLMConfigurationError(
                "BatchMode's journal must be a file path, a RunJournal (aload, aappend, "
                f"aclear) or None for none, got {journal!r:.60}."
            )
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.retry: Literal["batch", "live", "none"] = retry
        self.retries = retries if retry != "none" else 0
        self._journal = journal
        self.counters = Counters()

    def __repr__(self) -> str:
        return (
            f"BatchMode(max_requests={self.max_requests!r}, max_bytes={self.max_bytes!r}, "
            f"max_wait={self.max_wait!r}, idle_wait={self.idle_wait!r}, "
            f"poll_interval={self.poll_interval!r}, "
            f"retry={self.retry!r}, retries={self.retries!r})"
        )

    @property
    def progress(self) -> BatchProgress:
        """What its runs did so far: requests, batches, money saved (a snapshot)."""
        return self.counters.snapshot()

    def limits_of(self, api: BatchAPI) -> BatchLimits:
        """The limits of one batch of ``api``: the mode's, within the provider's."""
        limits = api.limits
        return BatchLimits(
            max_requests=min(self.max_requests or limits.max_requests, limits.max_requests),
            max_bytes=min(self.max_bytes or limits.max_bytes, limits.max_bytes),
        )

    def start(self, name: str, journal: RunJournal | None) -> BatchRun:
        """A run of the pipeline ``name`` (see ``PipelineBatching``).

        Args:
            name: The pipeline's name (its journal file's name, by default).
            journal: The durable pipeline's journal, if any: used unless the mode was
                given one of its own.
        """
        chosen = self._journal
        if chosen is DEFAULT:
            if journal is None:
                path = DEFAULT_JOURNAL_FOLDER / _file_name(name)
                return BatchRun(self, name, FileJournal(path, remove_folder=True))
            chosen = journal
        if isinstance(chosen, (str, os.PathLike)):
            chosen = FileJournal(chosen)
        return BatchRun(self, name, chosen)


def _file_name(name: str) -> str:
    """A file name for the pipeline ``name``: its safe characters, and a hash of it."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:60] or "pipeline"
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}.jsonl"
