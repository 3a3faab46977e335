"""One run of batch mode: the route its calls take, its queues, its batches, its journal.

A call of a model made in the run (by any agent of an item, at any depth) is routed here
(:mod:`miniagents.ext.llm.routing`). If its provider has a batch API, the provider is asked
for a reply that does not stream, through a copy of its client whose transport hands the
request to the run; the request waits in its queue (one per client, endpoint and, for
OpenAI, model) until the queue is flushed into a batch, and the call waits for the batch's
result, sending signs of life (empty texts) so that its stall watch knows it waits on
purpose::

    call A:   queued ....... | submitted in batch_1 ..... polled ... | ended: A's reply
    call B:     queued ..... |                                        | ended: B's reply
    flush:    max_requests, max_bytes, max_wait after the oldest, or every item running waits

A queue is flushed when it holds ``max_requests`` requests or ``max_bytes`` bytes (within
the provider's limits), when its oldest request has waited ``max_wait`` seconds, or when
every try of an item that runs has waited ``idle_wait`` seconds for a call of the run
(nothing more would come before a batch returns). Each batch is noted in the journal
before and after its creation (its requests by their hashes); a call made again after a
restart finds its request there (the first of the same hash not given yet) and waits for
that batch's result rather than paying again.

A request that did not run (expired, cancelled) or got a 408, 409, 429 or 5xx is tried
again, as the mode says: in the next batch (``retry="batch"``), live (``"live"``), or not
(``"none"``), ``retries`` times; after that, or for another HTTP error, it fails as the
call would live (an ``LLMError``; ``LLMBatchError`` for a request that never ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import importlib
import json
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from miniagents.ext.llm.batch.api import (
    BatchAPI,
    BatchLimits,
    BatchRequest,
    RequestOutcome,
    batch_api_for,
)
from miniagents.ext.llm.batch.journal import HeldJournal, RunHold
from miniagents.ext.llm.errors import LLMBatchError, LLMConfigurationError
from miniagents.ext.llm.pricing import (
    cost_usd,
    price_provider_of,
    priced_model,
    reported_usage,
)
from miniagents.ext.llm.provider import (
    Finish,
    LLMCall,
    LLMEvent,
    LLMOptions,
    LLMProvider,
    aclose_events,
)
from miniagents.ext.llm.routing import Proceed, add_llm_route
from miniagents.ext.llm.settings import llm_settings
from miniagents.pipeline.batching import RunEnding, RunJournal
from miniagents.pipeline.progress import ProgressReading, add_progress_meter
from miniagents.promising.errors import MiniAgentsError
from miniagents.promising.lowlevel import logger, spawn
from miniagents.promising.sentinels import DEFAULT

__all__ = ["BatchProgress", "BatchRun", "Counters", "Settings"]

RetryMode = Literal["batch", "live", "none"]

_MAX_POLL_ERRORS = 5
"""Looks at a batch that fail in a row before its calls fail (an ``LLMBatchError``)."""


@dataclass(frozen=True)
class BatchProgress:
    """What a batch mode did so far (a snapshot), over all its runs.

    Attributes:
        requests: Calls queued into batches (a retry in a later batch counts again).
        answered: Calls whose batch returned their reply.
        failed: Calls whose request failed in its batch (an HTTP error, or not run), each
            try counted.
        retried: Tries again after a failure (in a later batch, or live).
        batches_submitted: Batches created.
        batches_running: Batches created and not ended yet.
        batches_done: Batches ended (their results read).
        batches_cancelled: Batches a run stopped early left unread (it asks the provider to
            cancel those it created): nobody waits for them any more.
        saved_usd: What the calls answered saved, in US dollars: their live price less
            their batch price (for the models with both prices known).
    """

    requests: int = 0
    answered: int = 0
    failed: int = 0
    retried: int = 0
    batches_submitted: int = 0
    batches_running: int = 0
    batches_done: int = 0
    saved_usd: float = 0.0
    batches_cancelled: int = 0

    def text(self) -> str:
        """The figures as a progress bar shows them (the cancelled batches, if any)."""
        cancelled = f", {self.batches_cancelled} cancelled" if self.batches_cancelled else ""
        return (
            f"batches {self.batches_submitted} submitted, {self.batches_running} running, "
            f"{self.batches_done} done{cancelled}, saved ${self.saved_usd:.4f}"
        )


class Settings(Protocol):
    """What a run reads of its ``BatchMode``."""

    max_wait: float
    """Seconds a queue's oldest request waits, at most, before the queue is flushed."""
    idle_wait: float
    """Seconds every running item waits for a call before the queues are flushed."""
    poll_interval: float
    """Seconds between two looks at a batch."""
    retry: RetryMode
    """How a request that failed in its batch is tried again."""
    retries: int
    """How many times one call is tried again."""
    counters: Counters
    """The mode's running figures."""

    def limits_of(self, api: BatchAPI) -> BatchLimits:
        """The limits of one batch of ``api``."""
        ...


@dataclass
class Counters:
    """The running figures of a batch mode (:class:`BatchProgress` is their snapshot)."""

    requests: int = 0
    answered: int = 0
    failed: int = 0
    retried: int = 0
    batches_submitted: int = 0
    batches_done: int = 0
    batches_cancelled: int = 0
    saved_usd: float = 0.0

    def snapshot(self) -> BatchProgress:
        """The figures now."""
        running = self.batches_submitted - self.batches_done - self.batches_cancelled
        return BatchProgress(**dataclasses.asdict(self), batches_running=running)


_TICKET: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar(
    "miniagents_batch_ticket", default=None
)
"""The call whose request the capturing transport is sent, in the task that sends it."""

_TRY: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "miniagents_batch_try", default=None
)
"""The try of an item the current task works for (its calls count for the idle flush)."""

_RUN: contextvars.ContextVar[BatchRun | None] = contextvars.ContextVar(
    "miniagents_batch_run", default=None
)
"""The batch run of the current context (the progress bars' meter reads it)."""

Settled = tuple["str | None", RequestOutcome, "BaseException | None"]
"""A request's batch (``None``: none made), its outcome, and the error that kept it from a
batch (its batch could not be created: the SDK's error), if any."""


@dataclass(eq=False)
class _Queued:
    """A request waiting in a queue, then in its batch, for its outcome."""

    key: str
    request: BatchRequest
    future: asyncio.Future[Settled]
    try_token: object | None


@dataclass(eq=False)
class _Queue:
    """The requests that may share a batch (one client, endpoint, and queue key)."""

    api: BatchAPI
    client: Any
    endpoint: str
    waiting: list[_Queued] = dataclasses.field(default_factory=list)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _Batch:
    """A batch created and not ended: the requests waiting for it, by custom id."""

    batch_id: str
    api: BatchAPI
    client: Any
    waiting: dict[str, asyncio.Future[Settled]] = dataclasses.field(default_factory=dict)
    errors: int = 0
    ours: bool = True  # created by this run (not only re-attached to)


class _Ticket:
    """One call's request, as the run settles it (tried again as the mode says)."""

    def __init__(self, run: BatchRun, api: BatchAPI, client: Any) -> None:
        self.run = run
        self.api = api
        self.client = client
        self.retries_left = run.mode.retries
        self.batch_id: str | None = None
        self.failure: RequestOutcome | None = None
        self.error: BaseException | None = None

    async def asettle(self, path: str, body: Mapping[str, Any]) -> tuple[int, Mapping[str, Any]]:
        """The HTTP status and JSON body of the request, once its batch returns it.

        Raises:
            LLMBatchError: for a request that did not run (or no batch could be made), or
                one to try live (the caller does).
            LLMConfigurationError: for a request the API has no batch endpoint for.
        """
        try:
            return await self._settle(path, body)
        except Exception as error:
            self.error = error
            raise

    async def _settle(self, path: str, body: Mapping[str, Any]) -> tuple[int, Mapping[str, Any]]:
        run, retry = self.run, self.run.mode.retry
        endpoint = self.api.endpoint(path)
        if endpoint is None:
            raise LLMConfigurationError(
                f"Batch mode cannot queue a request to {path!r}: the {self.api.name} batch "
                "API has no endpoint for it. Run this agent outside of batch mode."
            )
        digest = _digest(endpoint, body)
        while True:
            batch_id, outcome, error = await run.aoutcome(self, digest, endpoint, body)
            if error is not None:  # no batch could be made: its error, as the call's
                self.failure = outcome
                raise error
            if outcome.reason == "succeeded" and outcome.body is not None:
                self.batch_id = batch_id
                run.counters.answered += 1
                return 200, outcome.body
            run.counters.failed += 1
            retryable = outcome.retryable and self.retries_left > 0
            if retryable and retry == "batch":
                self.retries_left -= 1
                run.counters.retried += 1
                continue
            self.failure = outcome
            live = retryable and retry == "live"
            if outcome.status is not None and outcome.body is not None and not live:
                return outcome.status, outcome.body  # the SDK raises it as it would live
            raise LLMBatchError(_not_run(outcome, batch_id), batch_id, outcome.reason)


def _not_run(outcome: RequestOutcome, batch_id: str | None) -> str:
    said = f" ({outcome.message})" if outcome.message else ""
    if batch_id is None:
        return (
            f"A call queued in batch mode got no reply: its request could not go in a "
            f"batch{said}. Make the request smaller, or run the agent outside of batch mode."
        )
    return (
        f"A call queued in batch mode got no reply: its request, in the batch {batch_id}, "
        f"{_WHY.get(outcome.reason, 'did not run')}{said}. Give the batch mode more "
        "retries (BatchMode(retries=...)), retry live (BatchMode(retry='live')), or run "
        "the item again."
    )


_WHY = {
    "expired": "expired before the provider ran it (a batch has 24 hours, Gemini's 48)",
    "cancelled": "was cancelled before it ran",
    "failed": "failed with its batch",
    "errored": "was answered with an error",
}


def _digest(endpoint: str, body: Mapping[str, Any]) -> str:
    """A request's hash: the same request made again has the same (in any process)."""
    text = json.dumps(
        {"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class BatchRun:
    """One run of a ``BatchMode`` (a ``BatchedRun``, and the route of its calls)."""

    rank = 10
    """Its place among the routes of a call: after a call cache (rank 0), so that a
    recorded reply is replayed rather than queued."""

    def __init__(self, mode: Settings, name: str, journal: RunJournal | None) -> None:
        self.mode = mode
        self.name = name
        self.journal = journal
        self.counters = mode.counters
        self._queues: dict[tuple[int, Hashable], _Queue] = {}
        self._batches: dict[str, _Batch] = {}
        self._captures: dict[int, tuple[Any, Any]] = {}  # client id: (client, its copy)
        # the journal's requests, by their hash: (tag, custom id) in the order noted
        self._claims: dict[str, deque[tuple[str, str]]] = {}
        self._tags: dict[str, str | None] = {}  # journal: tag -> batch id (None: none made)
        self._finding: dict[str, asyncio.Future[str | None]] = {}
        self._tries = 0  # tries of items running
        self._idle_timer: asyncio.TimerHandle | None = None
        self._waiting: Counter[object] = Counter()  # calls waiting, by try
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        self._writing = asyncio.Lock()
        self._closed = False
        self._hold: RunHold | None = None  # a held journal's, while the run holds it

    # -- the pipeline's side (BatchedRun) ----------------------------------------------------

    async def aopen(self) -> None:
        """Read the journal of an earlier run of the pipeline (its batches, to re-attach).

        A journal that a run holds (a file's, a durable pipeline's: ``HeldJournal``) is held
        first, for this run alone (see ``FileJournal.ahold``).

        Raises:
            LLMConfigurationError: for a file journal that another run holds (a durable
                pipeline's: a ``DurableConfigurationError``).
        """
        if self.journal is None:
            return
        if isinstance(self.journal, HeldJournal):
            self._hold = await self.journal.ahold(self.name)
        for record in await self.journal.aload():
            kind, tag = record.get("kind"), str(record.get("tag"))
            if kind == "submitting":
                requests = record.get("requests")
                for key, custom_id in requests if isinstance(requests, list) else ():
                    self._claims.setdefault(str(key), deque()).append((tag, str(custom_id)))
                self._tags.setdefault(tag, _UNKNOWN)
            elif kind == "submitted":
                self._tags[tag] = str(record.get("batch"))
            elif kind == "abandoned":
                self._tags[tag] = None

    def activate(self) -> None:
        """Route the calls of the current context here (and show the run on its bars)."""
        add_llm_route(self)
        _RUN.set(self)

    @contextlib.contextmanager
    def item(self) -> Iterator[object]:
        """Around a try of an item: its calls count for the idle flush."""
        token_value = object()
        token = _TRY.set(token_value)
        self._tries += 1
        try:
            yield token_value
        finally:
            self._tries -= 1
            _TRY.reset(token)
            self._flush_if_idle()

    async def aclose(self, ending: RunEnding) -> None:
        """End the run: stop its tasks; clear its journal unless it was interrupted.

        A run stopped early (its reader left, or it failed) cancels the batches it created
        that are still running; an interrupted one (cancelled: e.g. Ctrl+C) leaves them
        and its journal, for a restart to re-attach to.
        """
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        for queue in self._queues.values():
            if queue.timer is not None:
                queue.timer.cancel()
        tasks = list(self._tasks)  # (the poller among them)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            if ending != "interrupted":
                await self._acancel_batches()
                journal = self.journal  # (a journal another run holds is not ours)
                if journal is not None and (
                    self._hold is not None or not isinstance(journal, HeldJournal)
                ):
                    await journal.aclear()
        finally:
            for _, capture in self._captures.values():
                with contextlib.suppress(Exception):
                    await capture.close()
            self._captures.clear()
            if self._hold is not None:
                await self._hold.arelease()

    async def _acancel_batches(self) -> None:
        """Cancel the batches the run created that have not ended: nobody reads them."""
        for batch in list(self._batches.values()):
            if batch.ours:
                try:
                    await batch.api.acancel(batch.client, batch.batch_id)
                except Exception as error:  # (e.g. it ended meanwhile: nothing to cancel)
                    logger.info("Batch mode did not cancel the batch %s: %s", batch.batch_id, error)
            self.counters.batches_cancelled += 1  # (left unread: not running for the run)
        self._batches.clear()

    # -- the calls' side (LLMCallRoute) ------------------------------------------------------

    def llm_call(
        self, provider: LLMProvider[Any, Any], call: LLMCall, options: LLMOptions, proceed: Proceed
    ) -> AsyncIterator[LLMEvent]:
        """A call's events: its reply from a batch, or live if its provider has no batch API."""
        api = batch_api_for(provider)
        if api is None or self._closed:
            if api is None:
                self._warn_live(provider)
            return proceed(call, options)
        return self._batched(api, provider, call, options, proceed)

    def _warn_live(self, provider: object) -> None:
        kind = type(provider).__name__
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(
                "Batch mode makes the calls of %s live: no batch API is registered for it "
                "(miniagents.ext.llm.batch.register_batch_api). This is logged once per run.",
                kind,
            )

    async def _batched(
        self,
        api: BatchAPI,
        provider: LLMProvider[Any, Any],
        call: LLMCall,
        options: LLMOptions,
        proceed: Proceed,
    ) -> AsyncIterator[LLMEvent]:
        client = api.client(options)
        ticket = _Ticket(self, api, client)
        events = proceed(
            dataclasses.replace(call, stream=False),
            api.options_with(options, self._capture(api, client)),
        )
        context = contextvars.copy_context()
        context.run(_TICKET.set, ticket)
        step = asyncio.get_running_loop().create_task(_first(events), context=context)
        beat = _heartbeat(options)
        price_provider = price_provider_of(provider)
        try:
            while True:  # the request waits in its queue, then its batch
                done, _ = await asyncio.wait((step,), timeout=beat)
                if done:
                    break
                yield ""  # a sign of life: the call waits for its batch on purpose
            event = step.result()
            while event is not _END:
                if isinstance(event, Finish):
                    event = dataclasses.replace(event, batch_id=ticket.batch_id)
                    self._saved(event, call.model, price_provider)
                yield event
                event = await _first(events)
        except Exception as error:
            failure, caught = ticket.failure, ticket.error
            live = self.mode.retry == "live" and ticket.retries_left > 0
            if live and failure is not None and failure.retryable and caught is not None:
                self.counters.retried += 1
                made = proceed(call, options)  # live, as the agent asked
                try:
                    async for event in made:
                        yield event
                finally:
                    await aclose_events(made)  # (its request ended now if this stopped early)
                return
            if caught is None or caught is error:
                raise
            # what the transport raised (the SDK wraps it): itself, or the SDK's own error
            translated = (
                caught if isinstance(caught, MiniAgentsError) else provider.translate(caught)
            )
            raise translated from error
        finally:
            if not step.done():
                step.cancel()
                with contextlib.suppress(BaseException):
                    await step
            await aclose_events(events)

    def _saved(self, finish: Finish, model: str, price_provider: str | None) -> None:
        """Count what a reply of a batch saved: its live price less its batch price.

        Priced as a finished call is (``pricing.finish_usage``): as the model that answered
        if the price table knows it, else the one asked for (``priced_model``), and only
        the counts that are counts (``reported_usage``: a negative one is unknown).
        """
        usage = reported_usage(finish)
        priced = priced_model(finish, model, price_provider)
        live = cost_usd(priced, usage, price_provider)
        batch = cost_usd(priced, usage, price_provider, batch=True)
        if live is not None and batch is not None:
            self.counters.saved_usd += live - batch

    def _capture(self, api: BatchAPI, client: Any) -> Any:
        """The copy of ``client`` whose requests come to this run (one per client)."""
        kept = self._captures.get(id(client))
        if kept is None or kept[0] is not client:
            http = _http_module(client)
            transport = _transport_class(http)()
            http_client = http.AsyncClient(transport=transport, trust_env=False)
            kept = self._captures[id(client)] = (client, api.capturing(client, http_client))
        return kept[1]

    # -- settling a request ------------------------------------------------------------------

    async def aoutcome(
        self, ticket: _Ticket, digest: str, endpoint: str, body: Mapping[str, Any]
    ) -> Settled:
        """The outcome of one try of a request: from a batch of the journal, else a new one.

        A request made again after a restart takes the first request of the same hash the
        journal has not given yet (identical requests are alike: which takes which does
        not matter), so each is paid for once.
        """
        try_token = _TRY.get()
        if try_token is not None:
            self._waiting[try_token] += 1
        try:
            claims = self._claims.get(digest)
            claimed = claims.popleft() if claims else None
            if claims is not None and not claims:
                del self._claims[digest]
            if claimed is not None:
                tag, custom_id = claimed
                batch_id = await self._atag(tag, ticket)
                if batch_id is not None:  # paid for already: its result, not a new request
                    return await self._attached(batch_id, custom_id, ticket)
            return await self._queued(ticket, digest, endpoint, body, try_token)
        finally:
            if try_token is not None:
                self._waiting[try_token] -= 1
                if not self._waiting[try_token]:
                    del self._waiting[try_token]

    async def _atag(self, tag: str, ticket: _Ticket) -> str | None:
        """The batch the journal's ``tag`` was created as (``None``: none was)."""
        known: str | None = self._tags.get(tag, _UNKNOWN)
        if known is not _UNKNOWN:
            return known
        finding = self._finding.get(tag)
        if finding is None:  # created before a crash, its id not noted: ask the provider
            finding = self._finding[tag] = asyncio.get_running_loop().create_future()
            finding.add_done_callback(_retrieved)
            spawn(
                self._afind(tag, ticket.api, ticket.client, finding),
                "finding a batch of the journal",
                self._tasks,
            )
        return await asyncio.shield(finding)

    async def _afind(
        self, tag: str, api: BatchAPI, client: Any, finding: asyncio.Future[str | None]
    ) -> None:
        """Ask the provider which batch ``tag`` was created as, and tell ``finding``.

        A task of the run's own, not of the call that asked first: that call may be given
        up meanwhile, and the other calls that wait for the same answer get it all the same
        (else they waited for ever, sending signs of life, so no stall watch ended them).
        """
        try:
            try:
                found = await api.afind(client, tag)
            except Exception:
                found = None
            self._tags[tag] = found
            if found is not None:
                await self._note({"kind": "submitted", "tag": tag, "batch": found})
        except asyncio.CancelledError:  # (the run closes)
            finding.cancel()
            raise
        except Exception as error:  # (the journal's: each call waiting raises it)
            finding.set_exception(error)
        else:
            finding.set_result(found)

    async def _attached(self, batch_id: str, custom_id: str, ticket: _Ticket) -> Settled:
        batch = self._batches.get(batch_id)
        if batch is None:
            batch = self._batches[batch_id] = _Batch(
                batch_id, ticket.api, ticket.client, ours=False
            )
            self.counters.batches_submitted += 1
        future: asyncio.Future[Settled] = asyncio.get_running_loop().create_future()
        batch.waiting[custom_id] = future
        self._poll()
        try:
            return await future
        finally:
            if batch.waiting.get(custom_id) is future:
                del batch.waiting[custom_id]

    async def _queued(
        self,
        ticket: _Ticket,
        key: str,
        endpoint: str,
        body: Mapping[str, Any],
        try_token: object | None,
    ) -> Settled:
        api = ticket.api
        custom_id = f"mb-{uuid.uuid4().hex}"
        line = api.encode(custom_id, endpoint, body)
        limits = self.mode.limits_of(api)
        if len(line) > limits.max_bytes:
            outcome = RequestOutcome(
                custom_id,
                "failed",
                message=f"the request has {len(line):,} bytes, more than a batch takes "
                f"({limits.max_bytes:,})",
            )
            return None, outcome, None
        queued = _Queued(
            key,
            BatchRequest(custom_id, body, line),
            asyncio.get_running_loop().create_future(),
            try_token,
        )
        queue_key = (id(ticket.client), (endpoint, api.queue_key(endpoint, body)))
        queue = self._queues.get(queue_key)
        if queue is None:
            queue = self._queues[queue_key] = _Queue(api, ticket.client, endpoint)
        if queue.waiting and queue.size + len(line) > limits.max_bytes:
            self._flush(queue)
        queue.waiting.append(queued)
        queue.size += len(line)
        self.counters.requests += 1
        if len(queue.waiting) >= limits.max_requests or queue.size >= limits.max_bytes:
            self._flush(queue)
        elif queue.timer is None:
            loop = asyncio.get_running_loop()
            queue.timer = loop.call_later(self.mode.max_wait, self._flush, queue)
        self._flush_if_idle()
        try:
            return await queued.future
        except asyncio.CancelledError:
            if queued in queue.waiting:  # not submitted yet: it leaves the queue
                queue.waiting.remove(queued)
                queue.size -= len(line)
            raise

    def _idle(self) -> bool:
        """Whether each try running waits for a call of the run (and a queue holds one)."""
        return (
            not self._closed
            and bool(self._tries)
            and len(self._waiting) >= self._tries
            and any(queue.waiting for queue in self._queues.values())
        )

    def _flush_if_idle(self) -> None:
        """Flush every queue once each try running has waited ``idle_wait`` for a call.

        The wait lets a burst of items that start as others end (their results handed
        out) join the batch, rather than go one by one.
        """
        if self._idle_timer is None and self._idle():
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self.mode.idle_wait, self._idle_due)

    def _idle_due(self) -> None:
        self._idle_timer = None
        if self._idle():
            for queue in self._queues.values():
                if queue.waiting:
                    self._flush(queue)

    def _flush(self, queue: _Queue) -> None:
        """Submit the queue's requests as a batch (in a task of its own)."""
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        taken, queue.waiting, queue.size = queue.waiting, [], 0
        if taken and not self._closed:
            spawn(self._asubmit(queue, taken), "a batch's submission", self._tasks)

    async def _asubmit(self, queue: _Queue, taken: list[_Queued]) -> None:
        live = [queued for queued in taken if not queued.future.done()]
        if not live:
            return
        tag = uuid.uuid4().hex
        api, client = queue.api, queue.client
        try:
            await self._note(
                {
                    "kind": "submitting",
                    "tag": tag,
                    "api": api.name,
                    "at": time.time(),
                    "requests": [[queued.key, queued.request.custom_id] for queued in live],
                }
            )
            try:
                batch_id = await api.asubmit(
                    client, queue.endpoint, [queued.request for queued in live], tag
                )
            except Exception:
                found = None
                with contextlib.suppress(Exception):
                    found = await api.afind(client, tag)
                if found is None:
                    await self._note({"kind": "abandoned", "tag": tag})
                    raise
                batch_id = found
        except Exception as error:
            for queued in live:
                _settle(
                    queued.future,
                    None,
                    RequestOutcome(
                        queued.request.custom_id,
                        "failed",
                        message=f"{type(error).__name__}: {error}",
                    ),
                    error,
                )
            return
        batch = self._batches[batch_id] = _Batch(batch_id, api, client)
        for queued in live:
            if not queued.future.done():
                batch.waiting[queued.request.custom_id] = queued.future
        self.counters.batches_submitted += 1
        self._poll()
        try:
            await self._note({"kind": "submitted", "tag": tag, "batch": batch_id})
        except Exception as error:  # (the batch is made, and paid for: its calls wait on)
            logger.warning(
                "Batch mode could not note the batch %s in its journal (%s: %s); its calls "
                "wait for it all the same. A restart finds it by the tag %s noted before "
                "(check the journal's file or store).",
                batch_id,
                type(error).__name__,
                error,
                tag,
            )

    async def _note(self, record: Mapping[str, object]) -> None:
        if self.journal is not None:
            async with self._writing:
                await self.journal.aappend(record)

    # -- polling -----------------------------------------------------------------------------

    def _poll(self) -> None:
        """Have the poller look at the batches (started if it is not running)."""
        if (self._poller is None or self._poller.done()) and not self._closed:
            # the run's own (its close stops it), not the MiniAgents block's: the block's
            # exit waits for what its streams started, and never for a poller
            self._poller = spawn(self._apoll(), "the batches' poller", self._tasks)

    async def _apoll(self) -> None:
        """Look at the batches someone waits for, every ``poll_interval`` seconds.

        A batch nobody waits for any more (its calls given up) is not looked at; the run
        cancels it when it ends (unless interrupted: a restart may want it).
        """
        while any(_pending(batch) for batch in self._batches.values()):
            await asyncio.sleep(self.mode.poll_interval)
            for batch in [each for each in self._batches.values() if _pending(each)]:
                await self._alook(batch)

    async def _alook(self, batch: _Batch) -> None:
        try:
            state = await batch.api.aretrieve(batch.client, batch.batch_id)
            if not state.ended:
                batch.errors = 0
                return
            if state.failure is None:
                async for outcome in batch.api.aresults(batch.client, state):
                    future = batch.waiting.pop(outcome.custom_id, None)
                    if future is not None:
                        _settle(future, batch.batch_id, outcome)
            reason = "failed" if state.failure is not None else state.unrun
            message = state.failure or (
                "the batch ended without a result for the request" if reason == "failed" else ""
            )
            for custom_id, future in batch.waiting.items():
                _settle(future, batch.batch_id, RequestOutcome(custom_id, reason, message=message))
        except Exception as error:
            batch.errors += 1
            logger.warning(
                "Batch mode could not look at the batch %s (%s: %s); it tries again in %g s.",
                batch.batch_id,
                type(error).__name__,
                error,
                self.mode.poll_interval,
            )
            if batch.errors < _MAX_POLL_ERRORS:
                return
            for custom_id, future in batch.waiting.items():
                outcome = RequestOutcome(
                    custom_id, "failed", message=f"its batch could not be read: {error}"
                )
                _settle(future, batch.batch_id, outcome)
        batch.waiting.clear()
        self._batches.pop(batch.batch_id, None)
        self.counters.batches_done += 1

    # -- progress ----------------------------------------------------------------------------

    def reading(self) -> str:
        """The run's figures, for a progress bar."""
        return self.counters.snapshot().text()


_UNKNOWN: Any = object()
"""A journal's tag whose batch is not known yet (its creation's answer was not noted)."""

_END: Any = object()


async def _first(events: AsyncIterator[LLMEvent]) -> Any:
    """The next event, or ``_END``."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return _END


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Take a finding's error as seen (each call waiting raises it; all may be given up)."""
    if not future.cancelled():
        future.exception()


def _pending(batch: _Batch) -> bool:
    return any(not future.done() for future in batch.waiting.values())


def _settle(
    future: asyncio.Future[Settled],
    batch_id: str | None,
    outcome: RequestOutcome,
    error: BaseException | None = None,
) -> None:
    if not future.done():
        future.set_result((batch_id, outcome, error))


def _heartbeat(options: LLMOptions) -> float | None:
    """Seconds between two signs of life of a waiting call: half its stall timeout."""
    given = options.stall_timeout
    timeout: object = llm_settings().llm_stall_timeout if given is DEFAULT else given
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        return None
    return float(timeout) / 2


def _http_module(client: Any) -> Any:
    """The HTTP library the SDK's client sends with (``httpx2``, or ``httpx`` for an older
    SDK): the capturing transport must be one of its."""
    sent_with = type(getattr(client, "_client", None)).__module__.partition(".")[0]
    for name in (sent_with, "httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "AsyncBaseTransport") and hasattr(module, "AsyncClient"):
            return module
    raise LLMConfigurationError(
        "Batch mode found no HTTP library of the provider's SDK (httpx2 or httpx) to queue "
        'its requests with: reinstall the SDK (pip install "miniagents[openai]").'
    )


@functools.cache
def _transport_class(http: Any) -> Any:
    """The class of the transports of capturing clients, for the HTTP library ``http``:
    each hands its request to the ticket of the call that sends it, and answers with the
    request's outcome (never retried by the SDK: ``x-should-retry: false``)."""

    class CapturingTransport(http.AsyncBaseTransport):  # type: ignore[misc]
        async def handle_async_request(self, request: Any) -> Any:
            ticket = _TICKET.get()
            if ticket is None:
                raise LLMBatchError(
                    "A request reached batch mode's client outside of a call it queues: "
                    "the client of a batched call is not for other use."
                )
            body = json.loads(request.content or b"{}")
            status, payload = await ticket.asettle(request.url.path, body)
            return http.Response(
                status, headers={"x-should-retry": "false"}, json=payload, request=request
            )

    return CapturingTransport


def _meter() -> ProgressReading | None:
    """A progress bar's reading of the batch run of its context, if any."""
    run = _RUN.get()
    return None if run is None else run.reading


add_progress_meter(_meter)
