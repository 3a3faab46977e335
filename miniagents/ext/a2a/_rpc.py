"""JSON-RPC 2.0 as A2A speaks it over HTTP: answers, errors with their details, notifications.

- An answer is ``{"jsonrpc": "2.0", "id": ..., "result": ...}`` (:func:`result`); a stream
  frames each event so (:func:`framer`).
- An error is ``{"jsonrpc": "2.0", "id": ..., "error": {"code", "message", "data"}}``
  (:func:`error_response`), its ``data`` the array of typed details A2A asks for (spec
  §9.5): a ``google.rpc.ErrorInfo`` first, its ``reason`` the A2A error's name
  (``TASK_NOT_FOUND``; the a2a-sdk's table, so that its clients map it back), its
  ``domain`` ``a2a-protocol.org``, its ``metadata`` a map of strings that says more (the
  task's id, the method); then, for params that break a rule, a ``google.rpc.BadRequest``
  whose ``fieldViolations`` say which field and why.
- A POST the app's door refuses for its media type (not ``application/json``: HTTP 415,
  before its body is read) is answered as a JSON-RPC error too
  (``ContentTypeNotSupportedError``, -32005, its id ``null``), by
  :class:`JSONRPCRefusals`, so that a JSON-RPC client reads why.
- A request without an ``id`` member is a *notification*: JSON-RPC 2.0 says the server
  answers nothing (:data:`NOTIFIED`, an HTTP 204 of no body). ``"id": null`` is no
  notification: it is answered (with ``null``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from a2a.utils.errors import A2A_ERROR_REASONS, JSON_RPC_ERROR_CODE_MAP
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miniagents.ext.a2a._wire import Code, _RPCError
from miniagents.ext.web.lowlevel import json_text

__all__ = [
    "ERROR_INFO",
    "NOTIFIED",
    "JSONRPCRefusals",
    "RPCId",
    "error_answer",
    "error_response",
    "framer",
    "reason_of",
    "result",
]

RPCId = str | int | None
"""A request's id (a notification's is none: see :data:`NOTIFIED`)."""

ERROR_INFO: Final = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_REQUEST: Final = "type.googleapis.com/google.rpc.BadRequest"
_DOMAIN: Final = "a2a-protocol.org"

_REASONS: Final[Mapping[int, str]] = {
    **{
        code: A2A_ERROR_REASONS[kind]
        for kind, code in JSON_RPC_ERROR_CODE_MAP.items()
        if kind in A2A_ERROR_REASONS
    },
    Code.PARSE_ERROR: "JSON_PARSE",
    Code.SERVER_BUSY: "RESOURCE_EXHAUSTED",
}
"""Each error code's reason (the a2a-sdk's, which its clients map back to their errors)."""


def reason_of(code: int) -> str:
    """The ``ErrorInfo.reason`` of the JSON-RPC error ``code``."""
    return _REASONS.get(code, "UNKNOWN")


def error_answer(error: _RPCError, rpc_id: RPCId) -> JSONResponse:
    """``error`` as the answer to the request ``rpc_id``."""
    return error_response(
        rpc_id,
        error.code,
        error.message,
        metadata=error.metadata,
        violations=error.violations,
    )


def error_response(
    rpc_id: RPCId,
    code: int,
    message: str,
    *,
    metadata: Mapping[str, str] | None = None,
    violations: Sequence[tuple[str, str]] = (),
    status: int = 200,
) -> JSONResponse:
    """The JSON-RPC error ``code`` answering the request ``rpc_id`` (see the module docstring)."""
    details: list[dict[str, object]] = [
        {
            "@type": ERROR_INFO,
            "reason": reason_of(code),
            "domain": _DOMAIN,
            "metadata": dict(metadata or {}),
        }
    ]
    if violations:
        details.append(
            {
                "@type": _BAD_REQUEST,
                "fieldViolations": [
                    {"field": field, "description": description}
                    for field, description in violations
                ],
            }
        )
    error = {"code": code, "message": message, "data": details}
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "error": error}, status_code=status)


def result(rpc_id: RPCId, value: object) -> Response:
    """The JSON-RPC answer ``value`` to the request ``rpc_id``."""
    body = json_text({"jsonrpc": "2.0", "id": rpc_id, "result": value}, compact=True)
    return Response(body, media_type="application/json")


def framer(rpc_id: RPCId) -> Callable[[str], str]:
    """Wraps an event's JSON (a result) in the JSON-RPC answer to the request ``rpc_id``."""
    head = f'{{"jsonrpc":"2.0","id":{json.dumps(rpc_id)},"result":'
    return lambda data: f"{head}{data}}}"


NOTIFIED: Final = 204
"""The HTTP status of the answer to a notification: none (no content)."""


class JSONRPCRefusals:
    """ASGI middleware: the door's 415 of a POST, as the JSON-RPC error a client reads.

    It keeps the refusal's status and headers (the door's security headers among them), and
    replaces its body with ``ContentTypeNotSupportedError`` (-32005, id ``null``: the body
    was not read). It goes outside the door (``app.add_middleware``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start: Message | None = None

        async def send_as_rpc(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 415:
                start = message  # (sent with the new body, once the old one has gone by)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            if message.get("more_body", False):
                return
            refused = error_response(
                None,
                Code.CONTENT_TYPE_NOT_SUPPORTED,
                "The request body is not declared as JSON; send the JSON-RPC request with "
                "Content-Type: application/json.",
                metadata={"expected": "application/json"},
            )
            headers = [
                (name, value)
                for name, value in start.get("headers", [])
                if name.lower() not in (b"content-length", b"content-type")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(refused.body)).encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": refused.body})

        await self.app(scope, receive, send_as_rpc)
