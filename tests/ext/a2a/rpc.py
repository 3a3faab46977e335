"""What the A2A tests share: servers on 127.0.0.1, the official SDK's client, JSON-RPC by hand.

- :func:`serving` serves an app made for its URL (an SDK server's card names its URL) under
  uvicorn on a free port of 127.0.0.1;
- :func:`sdk_client` is the official ``a2a-sdk`` client of an A2A app, as its card says;
- :func:`call` and :func:`stream_results` send one JSON-RPC request by hand (``httpx2``), for
  what the official client will not send (bad input) and to read the raw events;
- :func:`user_message` and :func:`decision` are the messages a client sends;
- :func:`error_of` and :func:`violations` read a JSON-RPC error's details, :func:`get_task`
  a task as ``GetTask`` answers it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import uvicorn
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, SendMessageRequest, StreamResponse
from google.protobuf.json_format import ParseDict
from starlette.types import ASGIApp

from tests.ext.web.serving import SSEReader
from tests.fakes.fixtures import WAIT


@asynccontextmanager
async def serving(make: Callable[[str], ASGIApp]) -> AsyncIterator[str]:
    """``make(url)``'s app under uvicorn on a free port of 127.0.0.1; its URL (``.../``).

    The socket listens before the server starts, so a first request waits in its backlog.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = uvicorn.Server(
        uvicorn.Config(make(url), log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def sdk_client(
    url: str, headers: Mapping[str, str] | None = None, *, streaming: bool = True
) -> AsyncIterator[Client]:
    """The official SDK's client of the A2A agent at ``url``, made from its card.

    ``streaming=False``: it sends ``SendMessage`` (the whole task in one answer).
    """
    async with httpx.AsyncClient(timeout=WAIT, headers=dict(headers or {})) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        config = ClientConfig(httpx_client=http, streaming=streaming)
        yield ClientFactory(config).create(card)


async def all_of(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    """Every event of a stream of the SDK's client, to its end."""
    return [event async for event in events]


def user_message(
    text: str = "Hi", *, task_id: str = "", context_id: str = "", data: object = None
) -> SendMessageRequest:
    """A request of one user message: ``text`` (and a data part, if given)."""
    parts = [Part(text=text)]
    if data is not None:
        part = Part(media_type="application/json")
        ParseDict(data, part.data)  # type: ignore[arg-type]  # (a JSON value of any kind)
        parts = [part]
    message = Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=parts,
        task_id=task_id,
        context_id=context_id,
    )
    return SendMessageRequest(message=message)


def decision(task_id: str, *decisions: dict[str, object]) -> SendMessageRequest:
    """A message to ``task_id`` that decides its calls (a data part per decision)."""
    parts = []
    for one in decisions:
        part = Part(media_type="application/json")
        ParseDict(one, part.data)
        parts.append(part)
    message = Message(
        message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=parts, task_id=task_id
    )
    return SendMessageRequest(message=message)


def kind(event: StreamResponse) -> str:
    """What an event is: ``task``, ``status TASK_STATE_...``, ``chunk``, ``first``, ``last``."""
    which = event.WhichOneof("payload")
    if which == "status_update":
        from a2a.types import TaskState

        return f"status {TaskState.Name(event.status_update.status.state)}"
    if which == "artifact_update":
        update = event.artifact_update
        return "last" if update.last_chunk else "chunk" if update.append else "first"
    return str(which)


def rpc(method: str, params: object = None, rpc_id: object = 1) -> dict[str, Any]:
    """A JSON-RPC 2.0 request."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def send_params(text: str = "Hi", **fields: object) -> dict[str, Any]:
    """The params of ``SendMessage``: one user message of ``text``."""
    message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"message": {**message, **fields}}


async def call(
    client: httpx2.AsyncClient,
    body: object,
    *,
    headers: Mapping[str, str] | None = None,
    path: str = "/",
) -> httpx2.Response:
    """POST ``body`` (JSON) to the app."""
    return await client.post(path, json=body, headers=dict(headers or {}))


async def stream_results(
    client: httpx2.AsyncClient, body: object, headers: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """POST a streaming request and read every event's JSON-RPC response to the end."""
    async with client.stream("POST", "/", json=body, headers=dict(headers or {})) as response:
        assert response.headers["content-type"].startswith("text/event-stream"), response
        events = await SSEReader(response).rest()
    return [json.loads(event.data) for event in events]


REASONS = {
    -32700: "JSON_PARSE",
    -32600: "INVALID_REQUEST",
    -32601: "METHOD_NOT_FOUND",
    -32602: "INVALID_PARAMS",
    -32001: "TASK_NOT_FOUND",
    -32002: "TASK_NOT_CANCELABLE",
    -32003: "PUSH_NOTIFICATION_NOT_SUPPORTED",
    -32004: "UNSUPPORTED_OPERATION",
    -32005: "CONTENT_TYPE_NOT_SUPPORTED",
    -32007: "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    -32009: "VERSION_NOT_SUPPORTED",
    -32000: "RESOURCE_EXHAUSTED",
}
"""The ``ErrorInfo.reason`` of each code (A2A's names, as the a2a-sdk's table has them)."""


def error_of(response: httpx2.Response, status: int = 200) -> dict[str, Any]:
    """The JSON-RPC error of ``response``, its details checked (spec §9.5)."""
    assert response.status_code == status, response.text  # (JSON-RPC errors are answers)
    body: dict[str, Any] = response.json()
    assert body["jsonrpc"] == "2.0"
    assert "result" not in body
    error: dict[str, Any] = body["error"]
    info, *more = error["data"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["domain"]) == (REASONS[error["code"]], "a2a-protocol.org")
    assert all(isinstance(value, str) for value in info["metadata"].values())
    assert all(detail["@type"] == "type.googleapis.com/google.rpc.BadRequest" for detail in more)
    return error


def violations(error: dict[str, Any]) -> list[str]:
    """The fields a ``google.rpc.BadRequest`` of ``error`` names."""
    return [
        violation["field"]
        for detail in error["data"][1:]
        for violation in detail["fieldViolations"]
    ]


async def get_task(client: httpx2.AsyncClient, task_id: str) -> dict[str, Any]:
    answer = (await call(client, rpc("GetTask", {"id": task_id}))).json()
    assert "result" in answer, answer
    result: dict[str, Any] = answer["result"]
    return result
