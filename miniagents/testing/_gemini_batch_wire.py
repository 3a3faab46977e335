"""Gemini's Batch API (the Developer API's, with inline requests), as the fake LLM server speaks it.

::

    POST   /v1beta/models/{model}:batchGenerateContent
           {"batch": {"displayName", "inputConfig": {"requests": {"requests": [
               {"request": <a generateContent body>, "metadata": {"key": ...}}, ...]}}}}
                                          -> the batch, as an operation (name, metadata)
    GET    /v1beta/batches/{id}           the batch: metadata.state (BATCH_STATE_*), and
                                          metadata.output.inlinedResponses once ended
    POST   /v1beta/batches/{id}:cancel
    DELETE /v1beta/batches/{id}           an ended batch
    GET    /v1beta/batches                the batches, the latest first (pageSize, pageToken)

A batch holds the requests of the model in its path. The fake tells a request's result by
the ``key`` of its ``metadata`` (batch mode gives each one): a request without one, or a
key used twice, makes the create a 400 (the API itself takes both, and answers in order).
Each request runs as ``_batches`` runs it; its inline response is ``{"response": <a
GenerateContentResponse>, "metadata"}``, or ``{"error": {"code", "message"}, "metadata"}``
(a ``google.rpc.Status``: its code the gRPC one of the HTTP status the request would have
got alone). A batch that expired (after 48 hours) or was cancelled has no result for the
requests it did not run; one that failed (``fail_next``) has none at all, and the
operation's ``error`` says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from miniagents.testing._batch_wire import Answer, BatchWire, iso_time, page
from miniagents.testing._batches import BatchRequest, FakeBatch, Unanswered
from miniagents.testing._gemini_wire import GeminiWire

__all__ = ["GRPC_CODES", "GeminiBatchAPI"]

_CREATE = re.compile(r"/v1[a-z0-9]*/models/([^/:]+):batchGenerateContent")
_BATCH = re.compile(r"/v1[a-z0-9]*/batches/([^/:]+)(:cancel)?")

GRPC_CODES: Mapping[int, tuple[int, str]] = {
    400: (3, "INVALID_ARGUMENT"),
    401: (16, "UNAUTHENTICATED"),
    403: (7, "PERMISSION_DENIED"),
    404: (5, "NOT_FOUND"),
    409: (10, "ABORTED"),
    429: (8, "RESOURCE_EXHAUSTED"),
    499: (1, "CANCELLED"),
    500: (13, "INTERNAL"),
    501: (12, "UNIMPLEMENTED"),
    503: (14, "UNAVAILABLE"),
    504: (4, "DEADLINE_EXCEEDED"),
}
"""The gRPC code (and its name) of each HTTP status, as a ``google.rpc.Status`` says it."""

_STATES = {
    "completed": "BATCH_STATE_SUCCEEDED",
    "expired": "BATCH_STATE_EXPIRED",
    "cancelled": "BATCH_STATE_CANCELLED",
    "failed": "BATCH_STATE_FAILED",
}

_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"


class GeminiBatchAPI(BatchWire):
    """Answers the Batch API requests of a fake server (Gemini's)."""

    provider = "gemini"
    binary_type = "application/octet-stream"
    request_id_header = "x-request-id"

    paths = ("/v1beta/batches", "/v1/batches", "/v1alpha/batches")
    patterns = (_CREATE, _BATCH)
    _wire = GeminiWire()

    def claims(self, route: str, headers: Mapping[str, str]) -> bool:
        """A request to one of its paths from Google's client (``x-goog-api-client``).

        OpenAI's Batch API has paths of the same names (``/v1/batches``) on the fake's one
        host: the header tells them apart.
        """
        google = "x-goog-api-client" in headers or "x-goog-api-key" in headers
        return google and self.handles(route)

    def route(
        self, method: str, route: str, query: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Answer:
        """The answer to one request of the API."""
        created = _CREATE.fullmatch(route)
        if created is not None and method == "POST":
            return self._create(created[1], raw_body)
        if route in self.paths and method == "GET":
            return 200, self._list(query)
        found = _BATCH.fullmatch(route)
        if found is not None:
            batch_id, action = f"batches/{found[1]}", found[2]
            if action is None and method == "GET":
                return self._look(batch_id, _operation)
            if action is None and method == "DELETE":
                return self._delete(batch_id, {})
            if action == ":cancel" and method == "POST":
                return self._cancelled(batch_id, lambda batch: {})
        return 404, self._error(404, f"Unknown request {method} {route}.")

    def _create(self, model: str, raw_body: bytes) -> Answer:
        body, refused = self._creation(raw_body, "Invalid JSON payload received.")
        if refused is not None:
            return refused
        batch = body.get("batch") if isinstance(body, dict) else None
        given = _dig(batch, "inputConfig", "requests", "requests")
        if not isinstance(given, list) or not given:
            return 400, self._error(400, "* batch.input_config: a batch needs requests.")
        requests: list[BatchRequest] = []
        for number, inlined in enumerate(given):
            request = inlined.get("request") if isinstance(inlined, dict) else None
            key = _dig(inlined, "metadata", "key")
            if not isinstance(request, dict):
                return 400, self._error(400, f"* requests[{number}].request: not an object.")
            if not isinstance(key, str) or key in {each.custom_id for each in requests}:
                return 400, self._error(
                    400,
                    f"requests[{number}].metadata.key: the fake needs a key of its own for "
                    "each request, to tell its result.",
                )
            requests.append(BatchRequest(key, request))
        name = batch.get("displayName") if isinstance(batch, dict) else None
        made = self._batches.create(
            "gemini",
            f"models/{model}:generateContent",
            requests,
            self._wire,
            metadata={"displayName": name} if isinstance(name, str) else None,
            model=model,
        )
        if made.unanswered:
            raise Unanswered
        return 200, _operation(made, fresh=True)

    def _list(self, query: str) -> dict[str, Any]:
        params = parse_qs(query)
        asked = {"limit": params.get("pageSize", ["50"])[0]}
        if "pageToken" in params:
            asked["after"] = params["pageToken"][0]
        listed, more = page(self._batches, "gemini", urlencode(asked), "after")
        answer: dict[str, Any] = {"operations": [_operation(batch) for batch in listed]}
        if more and listed:
            answer["nextPageToken"] = listed[-1].id
        return answer


def _dig(value: object, *names: str) -> object:
    """``value[names[0]][names[1]]...``, or ``None`` where one is missing."""
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _operation(batch: FakeBatch, *, fresh: bool = False) -> dict[str, Any]:
    """The batch as the API shows it: an operation (``fresh``: as created, before any look)."""
    ended = batch.ended and not fresh
    state = _STATES[batch.ending] if ended and batch.ending else "BATCH_STATE_PENDING"
    counts = batch.counts()
    metadata: dict[str, Any] = {
        "@type": _TYPE,
        "model": f"models/{batch.model}",
        "name": batch.id,
        "displayName": batch.metadata.get("displayName", ""),
        "state": state,
        "createTime": iso_time(batch.created_at),
        "updateTime": iso_time(batch.ended_at or batch.created_at),
        "batchStats": {
            "requestCount": str(len(batch.requests)),
            "successfulRequestCount": str(counts["succeeded"] if ended else 0),
            "failedRequestCount": str(counts["errored"] if ended else 0),
            "pendingRequestCount": str(0 if ended else len(batch.requests)),
        },
    }
    operation: dict[str, Any] = {"name": batch.id, "metadata": metadata, "done": ended}
    if not ended:
        return operation
    metadata["endTime"] = iso_time(batch.ended_at or batch.created_at)
    if batch.ending == "failed":
        operation["error"] = {"code": 3, "message": batch.failure or "The batch failed."}
        return operation
    responses = [
        response
        for request in batch.requests
        if (response := _inline_response(batch, request)) is not None
    ]
    metadata["output"] = {"inlinedResponses": {"inlinedResponses": responses}}
    return operation


def _inline_response(batch: FakeBatch, request: BatchRequest) -> dict[str, Any] | None:
    """The result of a request that ran (``None``: it did not)."""
    result = batch.results.get(request.custom_id)
    metadata = {"key": request.custom_id}
    if result is None or result.kind in ("expired", "canceled"):
        return None
    if result.kind == "succeeded":
        return {"response": result.body, "metadata": metadata}
    status = result.status or 500
    said = _dig(result.body, "error", "message")
    code, name = GRPC_CODES.get(status, (2, "UNKNOWN"))
    message = said if isinstance(said, str) else name
    return {"error": {"code": code, "message": message}, "metadata": metadata}
