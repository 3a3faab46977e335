"""Anthropic's Message Batches API, as the fake LLM server speaks it.

::

    POST   /v1/messages/batches               {"requests": [{"custom_id", "params"}, ...]}
    GET    /v1/messages/batches/{id}          the batch: processing_status, request_counts,
                                              results_url once ended
    GET    /v1/messages/batches/{id}/results  JSONL: {"custom_id", "result": {"type": ...}}
    POST   /v1/messages/batches/{id}/cancel
    DELETE /v1/messages/batches/{id}          an ended batch
    GET    /v1/messages/batches               the batches, the latest first (limit, after_id)

A request whose ``custom_id`` repeats, or does not match ``^[a-zA-Z0-9_-]{1,64}$``, makes
the whole create a 400, as the API does. Each request runs as ``_batches`` runs it; a
result is ``succeeded`` (its ``message``), ``errored`` (an ``error`` response: the type
and message the endpoint would have answered alone), ``canceled`` or ``expired``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from miniagents.testing._anthropic_wire import AnthropicWire
from miniagents.testing._batch_wire import Answer, BatchWire, iso_time, page
from miniagents.testing._batches import (
    EXPIRY_SECONDS,
    BatchRequest,
    FakeBatch,
    Unanswered,
)
from miniagents.testing._wire import dumps

__all__ = ["AnthropicBatchAPI"]

_BATCH = re.compile(r"/v1/messages/batches/([^/]+)(/results|/cancel)?")
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


class AnthropicBatchAPI(BatchWire):
    """Answers the Message Batches requests of a fake server."""

    provider = "anthropic"
    binary_type = "application/binary"
    request_id_header = "request-id"

    paths = ("/v1/messages/batches",)
    patterns = (_BATCH,)
    _wire = AnthropicWire()

    def route(
        self, method: str, route: str, query: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Answer:
        """The answer to one request of the API."""
        base = f"http://{headers.get('host', '127.0.0.1')}"
        return self._answer(method, route, query, raw_body, base)

    def _answer(self, method: str, route: str, query: str, raw_body: bytes, base: str) -> Answer:
        if route == "/v1/messages/batches":
            if method == "POST":
                return self._create(raw_body, base)
            if method == "GET":
                return 200, self._list(query, base)
        found = _BATCH.fullmatch(route)
        if found is not None:
            batch_id, action = found[1], found[2]
            if action is None and method == "GET":
                return self._look(batch_id, lambda batch: _batch_object(batch, base))
            if action is None and method == "DELETE":
                return self._delete(batch_id, {"id": batch_id, "type": "message_batch_deleted"})
            if action == "/cancel" and method == "POST":
                return self._cancelled(batch_id, lambda batch: _batch_object(batch, base))
            if action == "/results" and method == "GET":
                return self._results(batch_id)
        return 404, self._error(404, f"Unknown request {method} {route}.")

    def _create(self, raw_body: bytes, base: str) -> Answer:
        body, refused = self._creation(raw_body, "The body is not JSON.")
        if refused is not None:
            return refused
        given = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(given, list) or not given:
            return 400, self._error(400, "requests: a batch needs at least one request.")
        requests: list[BatchRequest] = []
        seen: set[str] = set()
        for number, request in enumerate(given):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            params = request.get("params") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
                return 400, self._error(
                    400, f"requests.{number}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$."
                )
            if custom_id in seen:
                return 400, self._error(
                    400, f"requests.{number}.custom_id: {custom_id!r} is used twice."
                )
            if not isinstance(params, dict):
                return 400, self._error(400, f"requests.{number}.params: must be an object.")
            seen.add(custom_id)
            requests.append(BatchRequest(custom_id, params))
        batch = self._batches.create("anthropic", "/v1/messages", requests, self._wire)
        if batch.unanswered:
            raise Unanswered
        return 200, _batch_object(batch, base, fresh=True)

    def _list(self, query: str, base: str) -> dict[str, Any]:
        listed, more = page(self._batches, "anthropic", query, "after_id")
        return {
            "data": [_batch_object(batch, base) for batch in listed],
            "has_more": more,
            "first_id": listed[0].id if listed else None,
            "last_id": listed[-1].id if listed else None,
        }

    def _results(self, batch_id: str) -> Answer:
        batch = self._known(batch_id)
        if batch is None:
            return self._missing(batch_id)
        if not batch.ended:
            return 400, self._error(400, "The batch has not ended: its results are not ready.")
        lines = []
        for request in batch.requests:
            result = batch.results.get(request.custom_id)
            if result is None or result.kind == "expired":
                outcome: dict[str, Any] = {"type": "expired"}
            elif result.kind == "canceled":
                outcome = {"type": "canceled"}
            elif result.kind == "succeeded":
                outcome = {"type": "succeeded", "message": result.body}
            else:
                outcome = {"type": "errored", "error": result.body}
            lines.append(dumps({"custom_id": request.custom_id, "result": outcome}))
        return 200, b"\n".join(lines) + b"\n"

    def _missing(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        return 404, self._error(404, f"No message batch {batch_id!r}.")


def _batch_object(batch: FakeBatch, base: str, *, fresh: bool = False) -> dict[str, Any]:
    """The batch as the API shows it (``fresh``: as created, before any look)."""
    ended = batch.ended and not fresh
    counts = batch.counts()
    processing = 0 if ended else len(batch.requests)
    if batch.ending is None:
        status = "canceling" if batch.cancel_asked else "in_progress"
    else:
        status = "ended" if ended else "in_progress"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": processing,
            "succeeded": counts["succeeded"] if ended else 0,
            "errored": counts["errored"] if ended else 0,
            "canceled": counts["canceled"] if ended else 0,
            "expired": (counts["expired"] if ended else 0),
        },
        "ended_at": iso_time(batch.ended_at or batch.created_at) if ended else None,
        "created_at": iso_time(batch.created_at),
        "expires_at": iso_time(batch.created_at + EXPIRY_SECONDS),
        "archived_at": None,
        "cancel_initiated_at": iso_time(batch.created_at) if batch.cancel_asked else None,
        "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if ended else None,
    }
