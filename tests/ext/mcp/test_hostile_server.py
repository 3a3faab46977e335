"""What a session reads of a hostile MCP server over HTTP (127.0.0.1, under uvicorn).

The server speaks just enough of streamable HTTP for the SDK's client (the handshake,
``tools/list``, ``tools/call``), each answer JSON or, asked, one SSE event, and answers
what the test says: a result of megabytes, a listing of a hundred thousand tools. The
session reads at most ``max_message_bytes`` of one message and says so, naming the limit.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from miniagents import MiniAgents
from miniagents.ext.mcp import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_TOOLS,
    MCPSession,
    MCPSessionError,
)
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage, ToolSet
from tests.ext.a2a.rpc import serving

SAFETY = 30.0
"""Seconds before a test that would hang fails instead (never reached when the code works)."""


@dataclass
class Hostile:
    """What the server answers: its tools' results, how many more tools it lists, SSE or JSON."""

    tools: int = 0  # (listed beside the tools of ``results``)
    results: dict[str, str] = field(default_factory=dict)
    sse: bool = False
    page: int | None = None  # (how many tools a page of its listing has; None: one page)
    compressed: frozenset[str] = frozenset()  # (the methods answered gzipped all the same)
    failing: frozenset[str] = frozenset()  # (the methods answered with HTTP 500)
    asked: set[str] = field(default_factory=set)  # (each Accept-Encoding the client sent)

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        method = message["method"]
        result: dict[str, Any]
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"},
            }
        elif method == "tools/list":
            schema = {"type": "object", "properties": {}}
            names = [*self.results, *(f"t{n}" for n in range(self.tools))]
            start = int((message.get("params") or {}).get("cursor") or 0)
            end = len(names) if self.page is None else start + self.page
            result = {"tools": [{"name": name, "inputSchema": schema} for name in names[start:end]]}
            if end < len(names):
                result["nextCursor"] = str(end)
        elif method == "tools/call":
            text = self.results[message["params"]["name"]]
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            result = {}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    def app(self, _: str) -> Starlette:
        async def endpoint(request: Request) -> Response:
            if request.method != "POST":
                return Response(status_code=405)
            self.asked.add(request.headers.get("accept-encoding", ""))
            message = json.loads(await request.body())
            if "id" not in message:  # a notification
                return Response(status_code=202)
            answer = self.answer(message)
            if self.sse:
                body = f"event: message\ndata: {json.dumps(answer)}\n\n"
                media_type = "text/event-stream"
            else:
                body, media_type = json.dumps(answer), "application/json"
            if message["method"] not in self.compressed:
                return Response(body, media_type=media_type)
            headers = {"Content-Encoding": "gzip"}
            status = 500 if message["method"] in self.failing else 200
            sent = gzip.compress(body.encode())
            return Response(sent, status_code=status, media_type=media_type, headers=headers)

        return Starlette(routes=[Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"])])


@asynccontextmanager
async def hostile(server: Hostile) -> AsyncIterator[str]:
    async with serving(server.app) as url:
        yield f"{url}mcp"


async def results(tools: ToolSet, *calls: ToolCallMessage) -> list[ToolResultMessage]:
    messages = await asyncio.wait_for(tools.run_all(calls), SAFETY)
    assert all(isinstance(message, ToolResultMessage) for message in messages)
    return list(messages)


def test_the_default_bounds_are_the_packages() -> None:
    assert DEFAULT_MAX_MESSAGE_BYTES == 16_000_000
    assert DEFAULT_MAX_TOOLS == 10_000


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
async def test_a_result_over_max_message_bytes_is_an_error_result_naming_it(sse: bool) -> None:
    # (was: a JSON answer was read whole, however large; an SSE one failed past the SDK's
    # own 1 MiB, in words that said the stream failed and named no setting)
    server = Hostile(results={"big": "x" * 3_000_000, "small": "fine"}, sse=sse)
    async with hostile(server) as url:
        session = MCPSession.http(url, max_message_bytes=1_000_000)
        async with session, MiniAgents():
            tools = ToolSet(session.tools)
            big, small = await results(
                tools,
                ToolCallMessage(tool_name="big", arguments={}, call_id="c1"),
                ToolCallMessage(tool_name="small", arguments={}, call_id="c2"),
            )
    assert big.is_error
    assert "over 1,000,000 bytes in one message" in str(big)
    assert "(max_message_bytes)" in str(big)
    assert "the result of its tool big" in str(big)
    assert not small.is_error  # (the session goes on)
    assert str(small) == "fine"


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
async def test_a_result_sent_gzipped_is_refused_unread_naming_why(sse: bool) -> None:
    # (was: the bound counted the bytes received, so 3 MB gzipped to a few KB passed a
    # bound of 1 MB and was uncompressed whole; an SSE one failed in the SDK's words)
    server = Hostile(
        results={"big": "x" * 3_000_000}, sse=sse, compressed=frozenset({"tools/call"})
    )
    async with hostile(server) as url:
        session = MCPSession.http(url, max_message_bytes=1_000_000)
        async with session, MiniAgents():
            [big] = await results(
                ToolSet(session.tools),
                ToolCallMessage(tool_name="big", arguments={}, call_id="c1"),
            )
    assert big.is_error
    assert "sent the result of its tool big compressed (Content-Encoding: gzip)" in str(big)
    assert "(Accept-Encoding: identity)" in str(big)
    assert server.asked == {"identity"}  # (every request asked for answers uncompressed)


async def test_a_failure_sent_gzipped_is_told_by_its_status() -> None:
    server = Hostile(
        results={"broken": "x"},
        compressed=frozenset({"tools/call"}),
        failing=frozenset({"tools/call"}),
    )
    async with hostile(server) as url:
        session = MCPSession.http(url)
        async with session, MiniAgents():
            [broken] = await results(
                ToolSet(session.tools),
                ToolCallMessage(tool_name="broken", arguments={}, call_id="c1"),
            )
    assert broken.is_error
    assert "failed the call of its tool broken. The server answered HTTP 500" in str(broken)


async def test_a_listing_sent_gzipped_fails_the_opening_naming_why() -> None:
    server = Hostile(tools=100_000, compressed=frozenset({"tools/list"}))
    async with hostile(server) as url:
        session = MCPSession.http(url, max_message_bytes=1_000_000)
        with pytest.raises(MCPSessionError) as raised:
            await asyncio.wait_for(session.__aenter__(), SAFETY)
    assert "an answer to its handshake or listing compressed (Content-Encoding: gzip)" in str(
        raised.value
    )


async def test_a_session_asks_for_answers_uncompressed_whatever_its_headers() -> None:
    server = Hostile(tools=1)
    async with (
        hostile(server) as url,
        MCPSession.http(url, headers={"accept-encoding": "gzip"}) as session,
    ):
        assert len(session.tools) == 1
    assert server.asked == {"identity"}


async def test_a_result_under_max_message_bytes_is_read_whole() -> None:
    server = Hostile(results={"big": "x" * 3_000_000}, sse=True)
    async with hostile(server) as url:
        session = MCPSession.http(url, max_message_bytes=4_000_000, max_result_chars=4_000_000)
        async with session, MiniAgents():
            [big] = await results(
                ToolSet(session.tools),
                ToolCallMessage(tool_name="big", arguments={}, call_id="c1"),
            )
    assert not big.is_error
    assert len(str(big)) == 3_000_000


async def test_a_listing_over_max_message_bytes_fails_the_opening_naming_it() -> None:
    async with hostile(Hostile(tools=100_000)) as url:
        session = MCPSession.http(url, max_message_bytes=1_000_000)
        with pytest.raises(MCPSessionError) as raised:
            await asyncio.wait_for(session.__aenter__(), SAFETY)
    assert "an answer to its handshake or listing over 1,000,000 bytes" in str(raised.value)
    assert "MCPSession.http(url, max_message_bytes=...)" in str(raised.value)


@pytest.mark.parametrize(
    ("tools", "page", "max_tools"),
    [(100_000, None, DEFAULT_MAX_TOOLS), (100, 10, 25)],
    ids=["one-page-of-100000", "pages-of-10"],
)
async def test_a_listing_of_more_than_max_tools_fails_the_opening_naming_it(
    tools: int, page: int | None, max_tools: int
) -> None:
    # (was: every tool listed was taken, on up to 1,000 pages of any size, however many)
    async with hostile(Hostile(tools=tools, page=page)) as url:
        session = MCPSession.http(url, max_tools=max_tools)
        with pytest.raises(MCPSessionError) as raised:
            await asyncio.wait_for(session.__aenter__(), SAFETY)
    assert f"listed more than {max_tools:,} tools, the most this MCP session takes (max_tools)" in (
        str(raised.value)
    )


async def test_a_listing_of_max_tools_is_taken_whole() -> None:
    async with hostile(Hostile(tools=25, page=10)) as url:
        session = MCPSession.http(url, max_tools=25)
        async with session:
            assert len(session.tools) == 25


@pytest.mark.parametrize("name", ["max_message_bytes", "max_tools"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "1"])
def test_a_bound_that_is_not_a_positive_int_is_refused(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=name):
        MCPSession.http("http://127.0.0.1:1/mcp", **{name: value})
