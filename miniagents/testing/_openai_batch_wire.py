"""OpenAI's Files and Batch APIs, as the fake LLM server speaks them.

::

    POST   /v1/files                  multipart: purpose=batch, file=<.jsonl>  -> a file object
    GET    /v1/files/{id}             the file object
    GET    /v1/files/{id}/content     its bytes (an input file, or a batch's output/error file)
    DELETE /v1/files/{id}
    POST   /v1/batches                {input_file_id, endpoint, completion_window, metadata}
    GET    /v1/batches/{id}           the batch (status, request_counts, output/error files)
    POST   /v1/batches/{id}/cancel
    GET    /v1/batches                the batches, the latest first (limit, after)

An input line is ``{"custom_id", "method": "POST", "url": <endpoint>, "body"}``; an input
file whose lines do not parse, repeat a ``custom_id``, name another endpoint or mix models
makes a batch that fails (``failed``, its ``errors`` naming the line). The requests run as
``_batches`` runs them; the output file holds a line per succeeded request
(``{"id", "custom_id", "response": {"status_code": 200, "request_id", "body"}, "error":
null}``), the error file one per other request (an HTTP error's status and body, or
``"error": {"code": "batch_expired" | "batch_cancelled", "message"}``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from miniagents.testing._batch_wire import Answer, BatchWire, page
from miniagents.testing._batches import (
    EXPIRY_SECONDS,
    BatchRequest,
    FakeBatch,
    FakeBatches,
    Unanswered,
)
from miniagents.testing._openai_wire import OpenAIWire
from miniagents.testing._responses_wire import ResponsesWire
from miniagents.testing._wire import Wire, dumps

__all__ = ["OpenAIBatchAPI"]

_ENDPOINTS: dict[str, Wire] = {
    "/v1/chat/completions": OpenAIWire(),
    "/v1/responses": ResponsesWire(),
}
"""The endpoints a batch may go to (of those the fake speaks), with their wire formats."""

_FILE = re.compile(r"/v1/files/([^/]+)(/content)?")
_BATCH = re.compile(r"/v1/batches/([^/]+)(/cancel)?")


class OpenAIBatchAPI(BatchWire):
    """Answers the Files and Batch API requests of a fake server."""

    provider = "openai"
    binary_type = "application/octet-stream"
    request_id_header = "x-request-id"

    paths = ("/v1/files", "/v1/batches")
    patterns = (_FILE, _BATCH)
    _wire = OpenAIWire()

    def __init__(self, batches: FakeBatches) -> None:
        super().__init__(batches)
        self._writing = threading.Lock()

    def route(
        self, method: str, route: str, query: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Answer:
        """The answer to one request of the APIs."""
        if route == "/v1/files" and method == "POST":
            return self._upload(headers, raw_body)
        if route == "/v1/batches" and method == "POST":
            return self._create(raw_body)
        if route == "/v1/batches" and method == "GET":
            return 200, self._list(query)
        found = _FILE.fullmatch(route)
        if found is not None:
            return self._file(method, found[1], content=bool(found[2]))
        found = _BATCH.fullmatch(route)
        if found is not None:
            if found[2] and method == "POST":
                return self._cancel(found[1])
            if not found[2] and method == "GET":
                return self._look(found[1], self._shown)
        return 404, _error(f"Unknown request {method} {route}.", "not_found")

    # -- files -------------------------------------------------------------------------------

    def _upload(self, headers: Mapping[str, str], raw_body: bytes) -> Answer:
        fields = _multipart(headers.get("content-type", ""), raw_body)
        purpose = fields.get("purpose")
        given = fields.get("file")
        if purpose is None or given is None:
            return 400, _error("A file upload needs a purpose and a file.", "invalid_request")
        filename, content = given
        file_id = self._batches.new_id("file-fake")
        self._batches.files[file_id] = (filename, purpose[1].decode(), content, int(time.time()))
        return 200, self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        filename, purpose, content, created = self._batches.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": created,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def _file(self, method: str, file_id: str, *, content: bool) -> Answer:
        if file_id not in self._batches.files:
            return _missing("file", file_id)
        if content and method == "GET":
            return 200, self._batches.files[file_id][2]
        if method == "GET":
            return 200, self._file_object(file_id)
        if method == "DELETE":
            del self._batches.files[file_id]
            return 200, {"id": file_id, "object": "file", "deleted": True}
        return 404, _error(f"Unknown request {method} on a file.", "not_found")

    # -- batches -----------------------------------------------------------------------------

    def _create(self, raw_body: bytes) -> Answer:
        body, refused = self._creation(raw_body, "The body is not JSON.")
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return 400, _error("The body must be an object.", "invalid_request")
        endpoint = body.get("endpoint")
        file_id = body.get("input_file_id")
        if endpoint not in _ENDPOINTS:
            return 400, _error(f"Invalid endpoint {endpoint!r}.", "invalid_request")
        if body.get("completion_window") != "24h":
            return 400, _error("completion_window must be '24h'.", "invalid_request")
        if file_id not in self._batches.files:
            return 400, _error(f"No such file: {file_id!r}.", "invalid_request")
        metadata = body.get("metadata") or {}
        requests, invalid = _input_lines(self._batches.files[file_id][2], endpoint)
        batch = self._batches.create(
            "openai",
            endpoint,
            requests,
            _ENDPOINTS[endpoint],
            metadata={str(key): str(value) for key, value in metadata.items()},
            input_file_id=file_id,
            invalid=invalid,
        )
        self._write_results(batch)
        if batch.unanswered:
            raise Unanswered
        return 200, _batch_object(batch, fresh=True)

    def _cancel(self, batch_id: str) -> Answer:
        batch = self._known(batch_id)
        if batch is None:
            return _missing("batch", batch_id)
        if batch.ended:
            return 400, _error(
                f"Cannot cancel a batch with status {_status(batch)!r}.", "invalid_request"
            )
        self._batches.cancel(batch_id)
        return 200, _batch_object(batch, cancelling=True)

    def _shown(self, batch: FakeBatch) -> dict[str, Any]:
        """The batch looked at, its result files written once it has ended."""
        self._write_results(batch)
        return _batch_object(batch)

    def _missing(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """The 404 for a batch id not known, as the API words it."""
        return _missing("batch", batch_id)

    def _list(self, query: str) -> dict[str, Any]:
        listed, more = page(self._batches, "openai", query, "after")
        return {
            "object": "list",
            "data": [_batch_object(batch) for batch in listed],
            "first_id": listed[0].id if listed else None,
            "last_id": listed[-1].id if listed else None,
            "has_more": more,
        }

    def _write_results(self, batch: FakeBatch) -> None:
        """Write the output and error files of an ended batch (once)."""
        with self._writing:
            if batch.ended and batch.output_file_id is None and batch.ending != "failed":
                self._write_files(batch)

    def _write_files(self, batch: FakeBatch) -> None:
        output: list[bytes] = []
        errors: list[bytes] = []
        for request in batch.requests:
            result = batch.results.get(request.custom_id)
            line: dict[str, Any] = {
                "id": self._batches.new_id("batch_req_fake"),
                "custom_id": request.custom_id,
                "response": None,
                "error": None,
            }
            if result is None or result.status is None:
                kind = (
                    "batch_cancelled" if result and result.kind == "canceled" else "batch_expired"
                )
                line["error"] = {"code": kind, "message": _UNRUN[kind]}
                errors.append(dumps(line))
                continue
            line["response"] = {
                "status_code": result.status,
                "request_id": self._batches.new_id("req_fake"),
                "body": result.body,
            }
            (output if result.kind == "succeeded" else errors).append(dumps(line))
        for lines, name in ((output, "output_file_id"), (errors, "error_file_id")):
            if lines:
                file_id = self._batches.new_id("file-fake")
                content = b"\n".join(lines) + b"\n"
                self._batches.files[file_id] = (
                    f"{batch.id}_{name}.jsonl",
                    "batch_output",
                    content,
                    int(time.time()),
                )
                setattr(batch, name, file_id)
        if batch.output_file_id is None:
            batch.output_file_id = ""  # written: none (nothing succeeded)


_UNRUN = {
    "batch_expired": "This request could not be executed before the completion window expired.",
    "batch_cancelled": "This request was not executed because the batch was cancelled.",
}


def _status(batch: FakeBatch) -> str:
    if batch.ending is None:
        return "cancelling" if batch.cancel_asked else "in_progress"
    return batch.ending


def _batch_object(
    batch: FakeBatch, *, cancelling: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """The batch as the API shows it (``fresh``: as created: validating, before any look)."""
    created = int(batch.created_at)
    status = "cancelling" if cancelling else "validating" if fresh else _status(batch)
    counts = batch.counts()
    failed = counts["errored"] + counts["expired"] + counts["canceled"]
    ended = batch.ended and not (cancelling or fresh)
    ended_at = int(batch.ended_at or batch.created_at)
    errors = None
    if batch.failure is not None:
        errors = {
            "object": "list",
            "data": [{"code": "invalid_input", "message": batch.failure, "line": None}],
        }
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": errors,
        "input_file_id": batch.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": (batch.output_file_id or None) if ended else None,
        "error_file_id": batch.error_file_id if ended else None,
        "created_at": created,
        "in_progress_at": created,
        "expires_at": created + EXPIRY_SECONDS,
        "finalizing_at": ended_at if ended else None,
        "completed_at": ended_at if ended and batch.ending == "completed" else None,
        "failed_at": ended_at if ended and batch.ending == "failed" else None,
        "expired_at": ended_at if ended and batch.ending == "expired" else None,
        "cancelling_at": ended_at if batch.cancel_asked else None,
        "cancelled_at": ended_at if ended and batch.ending == "cancelled" else None,
        "request_counts": {
            "total": len(batch.requests),
            "completed": counts["succeeded"],
            "failed": failed,
        },
        "metadata": batch.metadata or None,
    }


def _input_lines(content: bytes, endpoint: str) -> tuple[list[BatchRequest], str | None]:
    """The requests of an input file, and why it is invalid (``None``: it is valid)."""
    requests: list[BatchRequest] = []
    seen: set[str] = set()
    models: set[object] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            return requests, f"Line {number} is not valid JSON."
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            return requests, f"Line {number} has no body object."
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or custom_id in seen:
            return requests, f"Line {number} has a missing or repeated custom_id."
        if line.get("method") != "POST" or line.get("url") != endpoint:
            return requests, f"Line {number} must be a POST to {endpoint}."
        seen.add(custom_id)
        models.add(line["body"].get("model"))
        requests.append(BatchRequest(custom_id, line["body"]))
    if not requests:
        return requests, "The input file has no requests."
    if len(models) > 1:
        return requests, "The requests of a batch must all be for the same model."
    return requests, None


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """The fields of a ``multipart/form-data`` body: name to (filename, content)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        return {}
    boundary = b"--" + found[1].encode()
    fields: dict[str, tuple[str, bytes]] = {}
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        filename = re.search(rb'filename="([^"]*)"', head)
        if name is None:
            continue
        fields[name[1].decode()] = (
            filename[1].decode() if filename else "",
            content.removesuffix(b"\r\n"),
        )
    return fields


def _error(message: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


def _missing(kind: str, given: str) -> tuple[int, dict[str, Any]]:
    return 404, _error(f"No such {kind}: {given!r}.", "not_found")
