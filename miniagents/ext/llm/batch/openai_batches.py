"""OpenAI's Batch API for batch mode: the calls of ``openai_agent``, both of its APIs.

A batch is a JSONL file uploaded with ``purpose="batch"`` (a line per request:
``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``), then a batch
made of it for one endpoint (Chat Completions, or the Responses API: ``/v1/responses``),
within 24 hours, holding one model's requests; it carries the run's tag in its
``metadata``, so that a batch whose creation's answer was lost is found again. Its results
are two files: the output file (a line per request that got a 200) and the error file
(the others: their HTTP error, or ``batch_expired`` / ``batch_cancelled``), read line by
line. A batch that ``failed`` (its input refused) ran none of its requests.

Limits: 50,000 requests and 200 MB per batch.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from typing import Any

from miniagents.ext.llm.batch._sdk import (
    LATEST,
    SDKBatchAPI,
    afirst_among_latest,
    aresult_lines,
)
from miniagents.ext.llm.batch.api import (
    BatchLimits,
    BatchRequest,
    BatchState,
    OutcomeReason,
    RequestOutcome,
)

__all__ = ["OpenAIBatchAPI"]

_ENDPOINTS = {"/chat/completions": "/v1/chat/completions", "/responses": "/v1/responses"}
"""The endpoints of ``openai_agent``'s APIs, by the end of a request's path."""

_TAG = "miniagents_tag"
"""The metadata key of the run's tag on a batch."""

_UNRUN: dict[str, OutcomeReason] = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


class OpenAIBatchAPI(SDKBatchAPI):
    """OpenAI's files and batches, for the calls of ``OpenAIProvider`` (see ``BatchAPI``)."""

    name = "openai"
    limits = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)

    def provider_class(self) -> type[Any]:
        """``openai_agent``'s provider class."""
        from miniagents.ext.llm.openai import OpenAIProvider

        return OpenAIProvider

    def endpoint(self, path: str) -> str | None:
        """``/v1/chat/completions`` or ``/v1/responses``, by the end of ``path``."""
        return next((end for tail, end in _ENDPOINTS.items() if path.endswith(tail)), None)

    def queue_key(self, endpoint: str, body: Mapping[str, Any]) -> Hashable:
        """The endpoint and the model: a batch holds the requests of one model."""
        return (endpoint, str(body.get("model")))

    def encode(self, custom_id: str, endpoint: str, body: Mapping[str, Any]) -> bytes:
        """A line of the input file."""
        line = {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    async def asubmit(
        self, client: Any, endpoint: str, requests: Sequence[BatchRequest], tag: str
    ) -> str:
        """Upload the input file, then create the batch (tagged)."""
        content = b"".join(request.line for request in requests)
        uploaded = await client.files.create(file=(f"{tag}.jsonl", content), purpose="batch")
        batch = await client.batches.create(
            input_file_id=uploaded.id,
            endpoint=endpoint,
            completion_window="24h",
            metadata={_TAG: tag},
        )
        return str(batch.id)

    async def afind(self, client: Any, tag: str) -> str | None:
        """The batch tagged ``tag`` among the latest 100 (its metadata says)."""
        page = await client.batches.list(limit=LATEST)
        batch = await afirst_among_latest(
            page, lambda batch: (batch.metadata or {}).get(_TAG) == tag
        )
        return None if batch is None else str(batch.id)

    async def aretrieve(self, client: Any, batch_id: str) -> BatchState:
        """The batch now: ended once ``completed``, ``expired``, ``cancelled`` or ``failed``."""
        batch = await client.batches.retrieve(batch_id)
        ended = batch.status in ("completed", "expired", "cancelled", "failed")
        failure = None
        if batch.status == "failed":
            errors = getattr(getattr(batch, "errors", None), "data", None) or ()
            failure = "; ".join(str(error.message) for error in errors) or "the batch failed"
        return BatchState(batch_id, ended, str(batch.status), batch, failure)

    async def aresults(self, client: Any, state: BatchState) -> AsyncIterator[RequestOutcome]:
        """The lines of the output file, then the error file's.

        A line that is not a JSON object with a ``custom_id`` is logged (naming the batch,
        the file and the line) and skipped: the lines after it still give their requests'
        outcomes, and its own request ends without a result (``failed``).
        """
        batch = state.handle
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            async with client.files.with_streaming_response.content(file_id) as response:
                where = f"the file {file_id} of the batch {state.batch_id}"
                async for line, place in aresult_lines(response.iter_lines(), where):
                    yield _outcome(line, place)

    async def acancel(self, client: Any, batch_id: str) -> None:
        """Cancel the batch (``cancelling``, then ``cancelled``)."""
        await client.batches.cancel(batch_id)


def _outcome(line: Mapping[str, Any], where: str) -> RequestOutcome:
    """The outcome of a line of an output or error file (``where`` it is, for a bad one)."""
    custom_id = str(line.get("custom_id"))
    response = line.get("response")
    if isinstance(response, Mapping) and response.get("status_code") is not None:
        status = response["status_code"]
        if isinstance(status, bool) or not isinstance(status, int):
            return RequestOutcome(
                custom_id, "failed", message=f"{where} has a status_code that is not a number"
            )
        body = response.get("body")
        return RequestOutcome(
            custom_id,
            "succeeded" if status == 200 else "errored",
            status,
            body if isinstance(body, Mapping) else {},
        )
    error = line.get("error")
    if not isinstance(error, Mapping):
        return RequestOutcome(
            custom_id, "failed", message=f"{where} has neither a response nor an error"
        )
    code = str(error.get("code"))
    return RequestOutcome(
        custom_id, _UNRUN.get(code, "failed"), message=str(error.get("message") or code)
    )
