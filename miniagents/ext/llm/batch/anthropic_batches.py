"""Anthropic's Message Batches for batch mode: the calls of ``anthropic_agent``.

A batch is created with its requests (``{"custom_id", "params"}``, ``params`` the body of
``POST /v1/messages``), of any models, and ends within 24 hours
(``processing_status="ended"``); its results stream as JSONL: ``succeeded`` (the message),
``errored`` (an error response: its type gives the HTTP status the request would have got
alone), ``canceled`` or ``expired``. The API keeps no name on a batch, so a batch whose
creation's answer was lost cannot be found again (:meth:`AnthropicBatchAPI.afind` says
``None``): a crash in that instant submits its requests again after the restart.

Limits: 100,000 requests and 256 MB per batch.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from typing import Any

from miniagents.ext.llm.batch._sdk import SDKBatchAPI, aresult_lines
from miniagents.ext.llm.batch.api import (
    BatchLimits,
    BatchRequest,
    BatchState,
    OutcomeReason,
    RequestOutcome,
)

__all__ = ["AnthropicBatchAPI"]

_STATUSES: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status of each error type (an errored result says the type, not the status)."""


class AnthropicBatchAPI(SDKBatchAPI):
    """Anthropic's Message Batches, for the calls of ``AnthropicProvider`` (see ``BatchAPI``)."""

    name = "anthropic"
    limits = BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)

    def provider_class(self) -> type[Any]:
        """``anthropic_agent``'s provider class."""
        from miniagents.ext.llm.anthropic import AnthropicProvider

        return AnthropicProvider

    def endpoint(self, path: str) -> str | None:
        """``/v1/messages`` for a request to the Messages API."""
        return "/v1/messages" if path.endswith("/messages") else None

    def queue_key(self, endpoint: str, body: Mapping[str, Any]) -> Hashable:
        """The endpoint: a batch may hold the requests of many models."""
        return endpoint

    def encode(self, custom_id: str, endpoint: str, body: Mapping[str, Any]) -> bytes:
        """A request of the batch, as JSON."""
        request = {"custom_id": custom_id, "params": body}
        return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()

    async def asubmit(
        self, client: Any, endpoint: str, requests: Sequence[BatchRequest], tag: str
    ) -> str:
        """Create the batch (the API keeps no tag)."""
        batch = await client.messages.batches.create(
            requests=[
                {"custom_id": request.custom_id, "params": request.body} for request in requests
            ]
        )
        return str(batch.id)

    async def afind(self, client: Any, tag: str) -> str | None:
        """``None``: the API keeps no tag to find a batch by."""
        return None

    async def aretrieve(self, client: Any, batch_id: str) -> BatchState:
        """The batch now: ended once its ``processing_status`` is ``ended``."""
        batch = await client.messages.batches.retrieve(batch_id)
        status = str(batch.processing_status)
        return BatchState(batch_id, status == "ended", status, batch)

    async def aresults(self, client: Any, state: BatchState) -> AsyncIterator[RequestOutcome]:
        """The results, as they stream (a line each, read as JSON here).

        A line that is not a JSON object with a ``custom_id`` is logged (naming the batch
        and the line) and skipped: the lines after it still give their requests' outcomes,
        and its own request ends without a result (``failed``); a line whose ``result`` is
        not one of the API's ends its request ``failed``, saying so.
        """
        results = client.messages.batches.with_streaming_response.results(state.batch_id)
        async with results as response:
            where = f"the results of the batch {state.batch_id}"
            async for item, place in aresult_lines(response.iter_lines(), where):
                yield _outcome(item["custom_id"], item.get("result"), place)

    async def acancel(self, client: Any, batch_id: str) -> None:
        """Cancel the batch (``canceling``, then ``ended``)."""
        await client.messages.batches.cancel(batch_id)


def _outcome(custom_id: str, result: object, where: str) -> RequestOutcome:
    """The outcome of a result of the batch (``where`` it is, for a bad one)."""
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded" and isinstance(result, dict) and isinstance(result.get("message"), dict):
        return RequestOutcome(custom_id, "succeeded", 200, result["message"])
    if kind == "errored" and isinstance(result, dict) and isinstance(result.get("error"), dict):
        error = result["error"]
        inner = error.get("error")
        status = _STATUSES.get(str(inner.get("type")) if isinstance(inner, dict) else "", 500)
        return RequestOutcome(custom_id, "errored", status, error)
    if kind in ("canceled", "expired"):
        reason: OutcomeReason = "expired" if kind == "expired" else "cancelled"
        return RequestOutcome(custom_id, reason)  # (its reason says it all)
    return RequestOutcome(
        custom_id, "failed", message=f"{where} has no result of the API's ({result!r:.200})"
    )
