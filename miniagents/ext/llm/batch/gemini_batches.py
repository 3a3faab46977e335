"""Gemini's Batch API for batch mode: the calls of ``gemini_agent`` on the Gemini Developer API.

A batch holds one model's requests, inline: it is created with
``POST /v1beta/models/{model}:batchGenerateContent``, each request the body that
``generateContent`` would be sent live, with its id in its ``metadata`` (``key``); the
batch's ``display_name`` is the run's tag, so that a batch whose creation's answer was lost
is found again among the latest. It is looked at (``GET /v1beta/batches/{id}``) until its
state is ``SUCCEEDED``, ``FAILED``, ``CANCELLED`` or ``EXPIRED`` (the SDK says
``JOB_STATE_*``); its results are inline too (``dest.inlined_responses``): a response, or
an error (a ``google.rpc.Status``, whose gRPC code gives the HTTP status the request would
have got alone). A batch that expired (after 48 hours) or was cancelled has no result for
the requests it did not run: they end ``expired`` or ``cancelled``, and are tried again as
the mode says. A batch that failed ran none of its requests::

    call (generateContent, captured):  {"contents", "systemInstruction", "generationConfig", ...}
    batch:   models/gemini-2.5-flash  [{"request": <that body>, "metadata": {"key": "mb-..."}}]
    result:  {"response": <a GenerateContentResponse>, "metadata": {"key": "mb-..."}}
             -> the provider parses it as the live reply

The SDK takes inline requests in its own terms (``InlinedRequest``: ``contents`` and a
``GenerateContentConfig``), and sends them exactly as ``generateContent`` sent the body: the
request's ``generationConfig`` and the fields the SDK lifts out of the config
(``systemInstruction``, ``tools``, ...) go back into one config.

Vertex AI's batch prediction reads its requests from Cloud Storage or BigQuery only, never
inline: a call whose client is on Vertex AI fails in batch mode with an
``LLMConfigurationError`` that says to use the Developer API or to run the agent outside
batch mode (rather than be made live at twice the price).

Limits: 20 MB of inline requests per batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from typing import Any

from miniagents.ext.llm.batch._sdk import LATEST, SDKBatchAPI, afirst_among_latest
from miniagents.ext.llm.batch.api import (
    BatchLimits,
    BatchRequest,
    BatchState,
    OutcomeReason,
    RequestOutcome,
)
from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.sdk_calls import import_sdk

__all__ = ["GeminiBatchAPI"]

_ENDPOINT = re.compile(r"/[^/]+/((?:models|tunedModels)/[^/:]+):generateContent")
"""A ``generateContent`` request's path on the Developer API, the model's name in it."""

_LIFTED = (
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "labels",
    "serviceTier",
    "store",
)
"""The fields of a ``GenerateContentConfig`` that the SDK sends beside ``generationConfig``."""

_ENDED = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }
)

_UNRUN: Mapping[str, OutcomeReason] = {
    "JOB_STATE_EXPIRED": "expired",
    "JOB_STATE_CANCELLED": "cancelled",
}
"""How a request without a result ended, by its batch's state."""

_STATUSES: Mapping[int, tuple[int, str]] = {
    1: (499, "CANCELLED"),
    2: (500, "UNKNOWN"),
    3: (400, "INVALID_ARGUMENT"),
    4: (504, "DEADLINE_EXCEEDED"),
    5: (404, "NOT_FOUND"),
    6: (409, "ALREADY_EXISTS"),
    7: (403, "PERMISSION_DENIED"),
    8: (429, "RESOURCE_EXHAUSTED"),
    9: (400, "FAILED_PRECONDITION"),
    10: (409, "ABORTED"),
    11: (400, "OUT_OF_RANGE"),
    12: (501, "UNIMPLEMENTED"),
    13: (500, "INTERNAL"),
    14: (503, "UNAVAILABLE"),
    15: (500, "DATA_LOSS"),
    16: (401, "UNAUTHENTICATED"),
}
"""The HTTP status (and the status's name) of each gRPC code of an errored request."""

_CAPTURED_BASE_URL = "http://gemini-batch.invalid"
"""The base URL of the capturing client (its requests never leave the process)."""


class GeminiBatchAPI(SDKBatchAPI):
    """Gemini's Batch API, for the calls of ``GeminiProvider`` (see ``BatchAPI``)."""

    name = "gemini"
    limits = BatchLimits(max_requests=100_000, max_bytes=20 * 1024 * 1024)

    def provider_class(self) -> type[Any]:
        """``gemini_agent``'s provider class."""
        from miniagents.ext.llm.gemini import GeminiProvider

        return GeminiProvider

    def client(self, options: Any) -> Any:
        """The async client the call would use live (``async_client``'s, else the context's).

        Raises:
            LLMConfigurationError: for a client on Vertex AI (it takes no inline batch).
        """
        from miniagents.ext.llm.gemini import on_vertex_ai

        client = super().client(options)
        if on_vertex_ai(client):
            raise LLMConfigurationError(
                "Batch mode cannot queue the calls of a Gemini agent on Vertex AI: its batch "
                "prediction reads requests from Cloud Storage or BigQuery, not inline. Give "
                "the agent a client of the Gemini Developer API (GEMINI_API_KEY) for batch "
                "mode, or run it outside of batch mode."
            )
        return client

    def capturing(self, client: Any, http_client: Any) -> Any:
        """A client of the Developer API that sends through ``http_client`` (never retrying).

        Only its requests' paths and bodies matter (batch mode takes them), so it needs
        nothing of ``client``: no key, no base URL. Its HTTP client holds no connection.
        """
        genai = import_sdk("google.genai", "Gemini")
        options = genai.types.HttpOptions(
            base_url=_CAPTURED_BASE_URL, httpx_async_client=http_client
        )
        return genai.Client(vertexai=False, api_key="batch-mode", http_options=options).aio

    def endpoint(self, path: str) -> str | None:
        """The model (``models/{model}``) of a ``generateContent`` request: a batch's."""
        found = _ENDPOINT.fullmatch(path)
        return None if found is None else found[1]

    def queue_key(self, endpoint: str, body: Mapping[str, Any]) -> Hashable:
        """The model (the endpoint): a batch holds the requests of one model."""
        return endpoint

    def encode(self, custom_id: str, endpoint: str, body: Mapping[str, Any]) -> bytes:
        """The request as the SDK's ``InlinedRequest``, as JSON.

        Raises:
            LLMConfigurationError: for a body the SDK's inline request cannot hold.
        """
        line: str = _inlined(custom_id, body).model_dump_json(exclude_none=True)
        return line.encode()

    async def asubmit(
        self, client: Any, endpoint: str, requests: Sequence[BatchRequest], tag: str
    ) -> str:
        """Create the batch of the model ``endpoint``, named ``tag``; its name (``batches/...``)."""
        types = import_sdk("google.genai", "Gemini").types
        inlined = [types.InlinedRequest.model_validate_json(request.line) for request in requests]
        job = await client.batches.create(model=endpoint, src=inlined, config={"display_name": tag})
        return str(job.name)

    async def afind(self, client: Any, tag: str) -> str | None:
        """The batch named ``tag`` among the latest 100."""
        pager = await client.batches.list(config={"page_size": LATEST})
        job = await afirst_among_latest(pager, lambda job: job.display_name == tag)
        return None if job is None else str(job.name)

    async def aretrieve(self, client: Any, batch_id: str) -> BatchState:
        """The batch now: ended once its state is succeeded, failed, cancelled or expired."""
        job = await client.batches.get(name=batch_id)
        state = _state(job.state)
        failure = None
        if state == "JOB_STATE_FAILED":
            error = job.error
            said = error.message if error is not None else None
            failure = said or "Gemini failed the batch as a whole"
        return BatchState(
            batch_id, state in _ENDED, state, job, failure, _UNRUN.get(state, "failed")
        )

    async def aresults(self, client: Any, state: BatchState) -> AsyncIterator[RequestOutcome]:
        """The inline responses of the batch (those of the requests it ran)."""
        dest = state.handle.dest
        for inlined in (dest.inlined_responses if dest is not None else None) or ():
            custom_id = (inlined.metadata or {}).get("key")
            if custom_id is None:  # not a request of batch mode's
                continue
            error = inlined.error
            if error is None and inlined.response is not None:
                body = inlined.response.model_dump(mode="json", by_alias=True, exclude_none=True)
                yield RequestOutcome(custom_id, "succeeded", 200, body)
                continue
            code = error.code if error is not None else None
            status, status_name = _http_status(code)
            message = (error.message if error is not None else None) or status_name
            body = {"error": {"code": status, "message": message, "status": status_name}}
            yield RequestOutcome(custom_id, "errored", status, body)

    async def acancel(self, client: Any, batch_id: str) -> None:
        """Cancel the batch (it ends ``CANCELLED``)."""
        await client.batches.cancel(name=batch_id)


def _inlined(custom_id: str, body: Mapping[str, Any]) -> Any:
    """The SDK's ``InlinedRequest`` that sends ``body`` (a ``generateContent`` body) in a batch.

    Raises:
        LLMConfigurationError: for a body it cannot hold.
    """
    types = import_sdk("google.genai", "Gemini").types
    unknown = sorted(set(body) - {"contents", "generationConfig", *_LIFTED})
    if unknown:
        raise _unfit(f"the fields {', '.join(unknown)} have no place in it")
    config = dict(body.get("generationConfig") or {})
    config.update({name: body[name] for name in _LIFTED if name in body})
    request = {"contents": body.get("contents"), "config": config, "metadata": {"key": custom_id}}
    try:
        return types.InlinedRequest.model_validate_json(json.dumps(request))
    except ValueError as error:  # (pydantic's ValidationError is one)
        raise _unfit(str(error)) from error


def _unfit(why: str) -> LLMConfigurationError:
    return LLMConfigurationError(
        "Batch mode cannot put this Gemini request in a batch: the SDK's inline request "
        f"cannot hold it ({why}). Run this agent outside of batch mode."
    )


def _state(state: object) -> str:
    """The name of a batch's state (``JOB_STATE_...``)."""
    return str(getattr(state, "value", state))


def _http_status(code: int | None) -> tuple[int, str]:
    """The HTTP status of an errored request's code (gRPC's; an HTTP status as it is)."""
    if code is not None and code >= 100:
        name = next((name for status, name in _STATUSES.values() if status == code), "UNKNOWN")
        return code, name
    return _STATUSES.get(code if code is not None else 2, (500, "UNKNOWN"))
