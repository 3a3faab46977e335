"""The batches the fake LLM server was given, and how it runs them: ``FakeLLMServer.batches``.

The providers' batch APIs (OpenAI's files and batches, ``_openai_batch_wire``; Anthropic's
Message Batches, ``_anthropic_batch_wire``; Gemini's Batch API, ``_gemini_batch_wire``)
keep their batches here. A batch runs each of
its requests as the endpoint would run it alone, not streamed: each takes the next item of
the server's script (a ``reply`` or a ``fail``, ``for_model`` honoured), in the order of
the batch's lines, so a test scripts a batch's replies exactly as it scripts live calls::

    created:   batch_fake00000001  [r-1, r-2, r-3]        (the script: A, fail(500), C)
    results:   r-1 succeeded A | r-2 errored 500 | r-3 succeeded C

By default a batch runs as soon as it is created and has ended by the client's first look
at it. A test holds batches to see them in progress (:meth:`FakeBatches.hold`, then
:meth:`FakeBatches.release`), makes the next one expire part-way
(:meth:`FakeBatches.expire_next`) or fail as a whole (:meth:`FakeBatches.fail_next`); a
client cancels one through the API (a batch still held ends cancelled, its requests
unrun). A request the endpoint would refuse (a 400 alone) is that request's error. A test
may also refuse the next creations (:meth:`FakeBatches.refuse_next_create`), fail the next
looks at a batch (:meth:`FakeBatches.fail_looks`), or leave a creation unanswered
(:meth:`FakeBatches.stall_next_create`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from miniagents.testing._record import (
    HANG_GUARD,
    ProbedWait,
    RecordedRequest,
    check_wait,
)
from miniagents.testing._respond import render
from miniagents.testing._script import Failure, Reply
from miniagents.testing._wire import Wire
from miniagents.testing.errors import FakeLLMServerError, FakeLLMServerTimeout

__all__ = [
    "BatchProvider",
    "BatchRequest",
    "FakeBatch",
    "FakeBatches",
    "RequestResult",
    "Unanswered",
]

EXPIRY_SECONDS = 24 * 3600
"""How long after its creation a batch expires (OpenAI's and Anthropic's: 24 hours)."""

ResultKind = Literal["succeeded", "errored", "expired", "canceled"]

BatchProvider = Literal["openai", "anthropic", "gemini"]
"""The providers whose batch APIs the fake speaks."""


class Unanswered(Exception):
    """A batch was made, and the request that made it is not to be answered (raised inside
    a handler thread only: the wire format waits for the client to go)."""


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch: its ``custom_id``, and the body the endpoint is sent.

    Attributes:
        custom_id: The client's id of the request (unique in its batch).
        body: The request's JSON body (Chat Completions', the Responses API's or Anthropic
            Messages' ``params``).
    """

    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class RequestResult:
    """How one request of a batch ended.

    Attributes:
        kind: ``succeeded`` (``status`` 200), ``errored`` (an HTTP error, in ``status``
            and ``body``), ``expired`` (not run before the batch expired) or ``canceled``
            (not run: the batch was cancelled).
        status: The HTTP status the endpoint answered with (``None``: not run).
        body: The endpoint's JSON body (a reply, or an error body; ``None``: not run).
    """

    kind: ResultKind
    status: int | None = None
    body: dict[str, Any] | None = None


@dataclass(eq=False)
class FakeBatch:
    """A batch the fake server was given.

    Attributes:
        id: Its id (``batch_fake...``, ``msgbatch_fake...``, ``batches/fake...``).
        provider: ``"openai"``, ``"anthropic"`` or ``"gemini"``.
        endpoint: The endpoint its requests go to (``/v1/chat/completions``,
            ``/v1/responses``, ``/v1/messages``, ``models/{model}:generateContent``).
        requests: Its requests, in order.
        metadata: The metadata it was created with (OpenAI's; Gemini's
            ``displayName``).
        model: The model of its requests, when the batch names it rather than each
            request's body (Gemini's).
        created_at: When it was created (seconds since the epoch).
        ending: How it ended: ``completed``, ``expired``, ``cancelled`` or ``failed``
            (``None``: not ended yet).
        results: Each request's result, by ``custom_id`` (once run).
        failure: Why it failed as a whole (``ending == "failed"``).
        input_file_id: The file its requests came in (OpenAI's).
        output_file_id: The file of its succeeded requests' results (OpenAI's).
        error_file_id: The file of its other requests' results (OpenAI's).
        cancel_asked: Whether a client asked to cancel it.
        looks: How many times a client looked at it (retrieved it).
        unanswered: Whether its creation was never answered (``stall_next_create``).
    """

    id: str
    provider: BatchProvider
    endpoint: str
    requests: tuple[BatchRequest, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    created_at: float = field(default_factory=time.time)
    ending: Literal["completed", "expired", "cancelled", "failed"] | None = None
    results: dict[str, RequestResult] = field(default_factory=dict)
    failure: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    cancel_asked: bool = False
    looks: int = 0
    unanswered: bool = False
    ended_at: float | None = None
    _wire: Wire | None = field(default=None, repr=False)
    _expire_after: int | None = field(default=None, repr=False)

    @property
    def custom_ids(self) -> tuple[str, ...]:
        """The ``custom_id`` of each request, in order."""
        return tuple(request.custom_id for request in self.requests)

    @property
    def ended(self) -> bool:
        """Whether the batch has ended (its results are ready)."""
        return self.ending is not None

    def counts(self) -> dict[ResultKind, int]:
        """How many requests ended each way so far."""
        counted: dict[ResultKind, int] = {"succeeded": 0, "errored": 0, "expired": 0, "canceled": 0}
        for result in self.results.values():
            counted[result.kind] += 1
        return counted


class FakeBatches:
    """The batches of a fake server, and the test's say over how they run.

    A test reads :attr:`created` (what the clients submitted: no request submitted twice)
    and holds, releases, expires or fails batches.
    """

    def __init__(
        self,
        take: Callable[[str | None], Reply | Failure],
        serial: Callable[[], int],
    ) -> None:
        self._take = take
        self._serial = serial
        self._lock = threading.Condition()
        self._batches: dict[str, FakeBatch] = {}
        self._held = False
        self._expire_next: int | None = None
        self._fail_next: str | None = None
        self._stall_next = False
        self._refusals: list[tuple[int, str | None]] = []
        self._look_failures: list[int] = []
        self.files: dict[str, tuple[str, str, bytes, int]] = {}
        """The files uploaded (OpenAI's Files API): id to (filename, purpose, content, created)."""

    # -- the test's side ---------------------------------------------------------------------

    @property
    def created(self) -> list[FakeBatch]:
        """A snapshot of the batches created so far, in order."""
        with self._lock:
            return list(self._batches.values())

    def get(self, batch_id: str) -> FakeBatch:
        """The batch ``batch_id``.

        Raises:
            FakeLLMServerError: if the server has no such batch.
        """
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise FakeLLMServerError(f"The fake server has no batch {batch_id!r}.")
        return batch

    def hold(self) -> None:
        """Keep the batches created from now on in progress, unrun, until :meth:`release`."""
        with self._lock:
            self._held = True

    def release(self) -> None:
        """Run the batches held, and those created from now on as they come."""
        with self._lock:
            self._held = False
            for batch in self._batches.values():
                if batch.ending is None and not batch.results:
                    self._run(batch)
            self._lock.notify_all()

    def expire_next(self, after: int = 0) -> None:
        """Make the next batch created run only its first ``after`` requests, then expire.

        Its other requests end ``expired`` (OpenAI: the error ``batch_expired``).
        """
        with self._lock:
            self._expire_next = after

    def fail_next(self, message: str = "The input file is not valid.") -> None:
        """Make the next batch created fail as a whole (OpenAI's ``failed``), none of it run.

        An Anthropic batch that fails so ends with every request ``errored``; a Gemini
        one ends ``BATCH_STATE_FAILED``, with no result.
        """
        with self._lock:
            self._fail_next = message

    def stall_next_create(self) -> None:
        """Make the next batch, but never answer the request that creates it.

        The client waits for the answer until it gives up (or is killed): as a crash right
        after the provider made the batch, before the client could note its id.
        """
        with self._lock:
            self._stall_next = True

    def refuse_next_create(
        self, status: int = 500, message: str | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests that create a batch with an HTTP error, and make
        no batch (OpenAI: the batch's creation, its file's upload goes through)."""
        with self._lock:
            self._refusals.extend([(status, message)] * times)

    def fail_looks(self, times: int, status: int = 404) -> None:
        """Answer the next ``times`` looks at a batch (retrieves) with an HTTP error."""
        with self._lock:
            self._look_failures.extend([status] * times)

    def take_refusal(self) -> tuple[int, str | None] | None:
        """The HTTP error of a creation refused (``refuse_next_create``), if one is due."""
        with self._lock:
            return self._refusals.pop(0) if self._refusals else None

    def take_look_failure(self) -> int | None:
        """The HTTP status of a look that fails (``fail_looks``), if one is due."""
        with self._lock:
            return self._look_failures.pop(0) if self._look_failures else None

    def wait_created(self, count: int, timeout: float = HANG_GUARD) -> list[FakeBatch]:
        """Wait until at least ``count`` batches were created; return them all.

        Raises:
            FakeLLMServerError: ``count`` is no whole number of at least 0, or ``timeout``
                no positive, finite number of seconds.
            FakeLLMServerTimeout: Fewer batches were created within ``timeout`` seconds.
        """
        return self._created_wait(count, timeout, "wait_created").blocking()

    async def wait_created_async(self, count: int, timeout: float = HANG_GUARD) -> list[FakeBatch]:
        """``wait_created`` that lets the event loop run while it waits (in a thread)."""
        return await self._created_wait(count, timeout, "wait_created_async").awaited()

    def _created_wait(
        self, count: int, timeout: float, waiter: str
    ) -> ProbedWait[list[FakeBatch], list[FakeBatch]]:
        """The wait of ``wait_created`` (its arguments checked)."""
        check_wait("count", count, timeout, f"FakeBatches.{waiter}()")

        def probe() -> list[FakeBatch] | None:  # (under the lock)
            return list(self._batches.values()) if len(self._batches) >= count else None

        def outcome(found: list[FakeBatch] | None) -> list[FakeBatch]:
            if found is None:
                with self._lock:
                    created = len(self._batches)
                raise FakeLLMServerTimeout(
                    f"The fake server was given {created} batches within {timeout:g} s, and "
                    f"the test expected {count}."
                )
            return found

        return ProbedWait(self._lock, probe, timeout, outcome)

    # -- the wire formats' side --------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A new id with ``prefix`` (``batch_fake``, ``file-fake``, ...), unique per server."""
        return f"{prefix}{self._serial():08d}"

    def create(
        self,
        provider: BatchProvider,
        endpoint: str,
        requests: list[BatchRequest],
        wire: Wire,
        *,
        metadata: dict[str, str] | None = None,
        input_file_id: str | None = None,
        invalid: str | None = None,
        model: str | None = None,
    ) -> FakeBatch:
        """Take a new batch; it runs now unless held (or ``invalid``: it fails, unrun)."""
        prefix = _PREFIXES[provider]
        batch = FakeBatch(
            id=self.new_id(prefix),
            provider=provider,
            endpoint=endpoint,
            requests=tuple(requests),
            metadata=dict(metadata or {}),
            model=model,
            input_file_id=input_file_id,
            _wire=wire,
        )
        with self._lock:
            batch._expire_after, self._expire_next = self._expire_next, None
            batch.unanswered, self._stall_next = self._stall_next, False
            failure, self._fail_next = invalid or self._fail_next, None
            self._batches[batch.id] = batch
            if failure is not None:
                self._end(batch, "failed", failure=failure)
            elif not self._held:
                self._run(batch)
            self._lock.notify_all()
        return batch

    def look(self, batch_id: str) -> FakeBatch | None:
        """The batch ``batch_id`` as a client retrieves it (counted), or ``None``."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None:
                batch.looks += 1
                if batch.cancel_asked and batch.ending is None:
                    self._cancel(batch)
            return batch

    def listed(self, provider: BatchProvider) -> list[FakeBatch]:
        """The provider's batches, the latest first (as the APIs list them)."""
        with self._lock:
            return [batch for batch in self._batches.values() if batch.provider == provider][::-1]

    def cancel(self, batch_id: str) -> FakeBatch | None:
        """Ask to cancel the batch (it ends cancelled at the next look, unless it ended)."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None and batch.ending is None:
                batch.cancel_asked = True
            return batch

    def delete(self, batch_id: str) -> FakeBatch | None:
        """Forget an ended batch (Anthropic's delete)."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None and batch.ending is not None:
                del self._batches[batch_id]
            return batch

    # -- running -----------------------------------------------------------------------------

    def _run(self, batch: FakeBatch) -> None:
        """Run the batch's requests (under the lock), each as its endpoint would alone."""
        assert batch._wire is not None
        expire_after = batch._expire_after
        for number, request in enumerate(batch.requests):
            if expire_after is not None and number >= expire_after:
                batch.results[request.custom_id] = RequestResult("expired")
                continue
            batch.results[request.custom_id] = self._result(batch._wire, request, batch.model)
        self._end(batch, "completed" if expire_after is None else "expired")

    def _result(self, wire: Wire, request: BatchRequest, batch_model: str | None) -> RequestResult:
        body = request.body
        request_id = f"req_fake{self._serial():08d}"
        problem = wire.validate(body)
        if problem is None and body.get("stream") is True:
            problem = "A request of a batch cannot stream its reply: leave stream out."
        if problem is not None:
            return RequestResult("errored", 400, wire.error_body(400, problem, request_id))
        model = body.get("model", batch_model)
        item = self._take(model if isinstance(model, str) else None)
        if isinstance(item, Failure):
            payload = item.body
            if not isinstance(payload, dict):
                payload = wire.error_body(item.status, item.message, request_id)
            return RequestResult("errored", item.status, payload)
        record = RecordedRequest(
            index=-1,
            method="POST",
            path="",
            headers={},
            raw_body=b"",
            body=body,
            provider=wire.provider,
            model=model if isinstance(model, str) else None,
            streamed=False,
        )
        record.script = item
        return RequestResult("succeeded", 200, wire.body(render(wire, record, item, self._serial)))

    def _cancel(self, batch: FakeBatch) -> None:
        for request in batch.requests:
            batch.results.setdefault(request.custom_id, RequestResult("canceled"))
        self._end(batch, "cancelled")

    def _end(
        self,
        batch: FakeBatch,
        ending: Literal["completed", "expired", "cancelled", "failed"],
        *,
        failure: str | None = None,
    ) -> None:
        batch.ending = ending
        batch.failure = failure
        batch.ended_at = time.time()
        if failure is not None and batch.provider == "anthropic":
            wire = batch._wire
            assert wire is not None
            for request in batch.requests:
                body = wire.error_body(400, failure, f"req_fake{self._serial():08d}")
                batch.results[request.custom_id] = RequestResult("errored", 400, body)


_PREFIXES: dict[BatchProvider, str] = {
    "openai": "batch_fake",
    "anthropic": "msgbatch_fake",
    "gemini": "batches/fake",
}
"""The start of the ids of each provider's batches."""
