"""The provider interface of batch mode: how a provider's batch API is driven.

Batch mode never builds a request itself: the agent's own provider does, as for a live
call that does not stream, through a copy of its SDK client whose HTTP transport hands the
request (its path and JSON body) to batch mode instead of sending it. The reply the batch
returns goes back to the SDK as the HTTP response, so the provider parses it, and
translates its errors, exactly as a live reply's::

    provider.reply(call, stream=False) -> SDK -> transport: (path, body) -> queued
    ... batch created, polled, ended ...
    results: (custom_id, 200, body)    -> transport: HTTP 200 body -> SDK -> provider's events

A :class:`BatchAPI` is what a provider's batch API adds to that: which provider it serves,
the client its calls use, the batch endpoint of a request, the limits of one batch, and
the calls of the API itself (create, look, results, cancel). OpenAI's
(:mod:`~miniagents.ext.llm.batch.openai_batches`: files and batches, for Chat Completions
and the Responses API), Anthropic's (:mod:`~miniagents.ext.llm.batch.anthropic_batches`:
Message Batches) and Gemini's (:mod:`~miniagents.ext.llm.batch.gemini_batches`: inline
batches of the Developer API) are registered with the package; another provider's is a
class of these methods, given to :func:`register_batch_api`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

__all__ = [
    "BatchAPI",
    "BatchLimits",
    "BatchRequest",
    "BatchState",
    "OutcomeReason",
    "RequestOutcome",
    "batch_api_for",
    "register_batch_api",
]

OutcomeReason: TypeAlias = Literal["succeeded", "errored", "expired", "cancelled", "failed"]
"""How a request of a batch ended: it ran (``succeeded``: its reply; ``errored``: an HTTP
error), or it did not (``expired`` before it ran, ``cancelled``, ``failed``: its batch
failed as a whole or could not be created)."""


@dataclass(frozen=True)
class BatchLimits:
    """The most one batch of a provider may hold.

    Attributes:
        max_requests: Requests in one batch.
        max_bytes: Bytes of its requests, encoded (:meth:`BatchAPI.encode`).
    """

    max_requests: int
    max_bytes: int


@dataclass(frozen=True)
class BatchRequest:
    """One request queued for a batch.

    Attributes:
        custom_id: Its id in the batch (unique in the batch; the journal keeps it).
        body: The JSON body the endpoint would be sent live.
        line: The request as the batch holds it (:meth:`BatchAPI.encode`).
    """

    custom_id: str
    body: Mapping[str, Any]
    line: bytes


@dataclass(frozen=True)
class BatchState:
    """A batch as the provider shows it.

    Attributes:
        batch_id: The provider's id of the batch.
        ended: Whether it has ended (its results can be read).
        status: The provider's word for its state (``in_progress``, ``completed``,
            ``ended``, ...).
        handle: The SDK's object of the batch, for :meth:`BatchAPI.aresults`.
        failure: Why it failed as a whole, none of its requests run (``None``: it did
            not): its results are not read, each request fails with this.
        unrun: How a request that an ended batch has no result for ended: ``failed``
            (the default), or ``expired`` / ``cancelled`` for an API whose results leave
            out the requests that a batch which expired or was cancelled never ran
            (Gemini's), so that they are tried again as such.
    """

    batch_id: str
    ended: bool
    status: str
    handle: Any = None
    failure: str | None = None
    unrun: OutcomeReason = "failed"


@dataclass(frozen=True)
class RequestOutcome:
    """How one request of a batch ended.

    Attributes:
        custom_id: The request's id in the batch.
        reason: How it ended (see :data:`OutcomeReason`).
        status: The HTTP status the endpoint answered it with (``None``: it did not run).
        body: The endpoint's JSON body: the reply, or the error (``None``: it did not run).
        message: Why it did not run (the provider's words), for the error.
    """

    custom_id: str
    reason: OutcomeReason
    status: int | None = None
    body: Mapping[str, Any] | None = None
    message: str = ""

    @property
    def retryable(self) -> bool:
        """Whether running it again may succeed.

        It did not run (expired, cancelled), or it got a 408, 409, 429 or 5xx (what the
        SDKs retry); a request whose batch failed, or could not be made, is not.
        """
        if self.status is None:
            return self.reason in ("expired", "cancelled")
        return self.status in (408, 409, 429) or self.status >= 500


class BatchAPI(Protocol):
    """A provider's batch API (see the module): what batch mode needs of it."""

    @property
    def name(self) -> str:
        """Its name, for the journal and the logs (e.g. ``"openai"``)."""
        ...

    @property
    def limits(self) -> BatchLimits:
        """The most one of its batches may hold."""
        ...

    def accepts(self, provider: object) -> bool:
        """Whether it runs the calls of ``provider`` (an agent's ``LLMProvider``)."""
        ...

    def client(self, options: Any) -> Any:
        """The SDK client a call with the agent's ``options`` would use live."""
        ...

    def capturing(self, client: Any, http_client: Any) -> Any:
        """A copy of ``client`` that sends through ``http_client``, never retrying.

        ``http_client`` is an HTTP client of the SDK's library whose transport is batch
        mode's: it takes each request instead of sending it.
        """
        ...

    def options_with(self, options: Any, client: Any) -> Any:
        """The agent's ``options`` with ``client`` instead of its own."""
        ...

    def endpoint(self, path: str) -> str | None:
        """The batch endpoint of a request to ``path``, or ``None`` if it has none."""
        ...

    def queue_key(self, endpoint: str, body: Mapping[str, Any]) -> Hashable:
        """What the requests of one batch share (besides the client and endpoint).

        E.g. the model, for an API whose batches hold the requests of one model.
        """
        ...

    def encode(self, custom_id: str, endpoint: str, body: Mapping[str, Any]) -> bytes:
        """The request as a batch holds it (a line of its input), for its size."""
        ...

    async def asubmit(
        self, client: Any, endpoint: str, requests: Sequence[BatchRequest], tag: str
    ) -> str:
        """Create a batch of ``requests``, named ``tag`` if the API keeps names; its id."""
        ...

    async def afind(self, client: Any, tag: str) -> str | None:
        """The batch created as ``tag``, if the API can tell; else ``None``.

        For a creation whose answer was lost (a crash, a broken connection).
        """
        ...

    async def aretrieve(self, client: Any, batch_id: str) -> BatchState:
        """The batch ``batch_id`` now."""
        ...

    def aresults(self, client: Any, state: BatchState) -> AsyncIterator[RequestOutcome]:
        """The outcome of each request of an ended batch (those it has results for)."""
        ...

    async def acancel(self, client: Any, batch_id: str) -> None:
        """Ask the provider to cancel the batch (its requests not run yet are not run)."""
        ...


_APIS: list[BatchAPI] = []


def register_batch_api(api: BatchAPI) -> None:
    """Run the calls of the providers ``api`` accepts through it in batch mode.

    The last registered for a provider wins (a registered API replaces one of the same
    class).
    """
    _APIS[:] = [each for each in _APIS if type(each) is not type(api)]
    _APIS.insert(0, api)


def batch_api_for(provider: object) -> BatchAPI | None:
    """The batch API of ``provider``, or ``None`` (its calls are then made live)."""
    return next((api for api in _APIS if api.accepts(provider)), None)
