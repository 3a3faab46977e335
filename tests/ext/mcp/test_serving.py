"""MiniAgents tools served as an MCP server, called by an MCP client (in-process and stdio)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gzip
import itertools
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.server.transport_security import TransportSecuritySettings
from starlette.authentication import AuthCredentials, AuthenticationError, BaseUser
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.errors import ArgumentError
from miniagents.ext.errors import MissingExtraError, WebConfigurationError
from miniagents.ext.input_requests import request_input
from miniagents.ext.mcp import (
    DEFAULT_SESSION_IDLE_SECONDS,
    MCPSession,
    MCPSessionError,
    mcp_http_app,
    mcp_server,
    serve_stdio,
)
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage, ToolSet
from miniagents.ext.web import BearerTokenAuth
from miniagents.testing.virtual_time import virtual_time
from tests.ext.mcp.served import divide, poet
from tests.ext.web.serving import served

ROOT = Path(__file__).resolve().parents[3]
SAFETY = 30.0


def call(tool_name: str, call_id: str = "c1", **arguments: object) -> ToolCallMessage:
    return ToolCallMessage(tool_name=tool_name, arguments=arguments, call_id=call_id)


async def check_served_tools(session: MCPSession) -> None:
    poem_tool, divide_tool = session.tools
    assert (poem_tool.name, poem_tool.description) == (
        "POET",
        "Write a one-line poem about a subject.",
    )
    assert poem_tool.parameters == {
        "additionalProperties": False,
        "properties": {"subject": {"description": "What the poem is about.", "type": "string"}},
        "required": ["subject"],
        "type": "object",
    }
    assert divide_tool.name == "divide"
    async with MiniAgents():
        messages = await asyncio.wait_for(
            ToolSet(session).run_all(
                [
                    call("POET", subject="tokens"),
                    call("divide", a=1, b=4),
                    call("divide", a=1, b=0),
                    call("divide", a="one", b=2),
                ]
            ),
            SAFETY,
        )
    results = [message for message in messages if isinstance(message, ToolResultMessage)]
    poem, divided, refused, invalid = results
    assert str(poem) == "Streams flow, tokens glow."
    assert str(divided) == "0.25"
    assert (str(refused), refused.is_error) == ("Cannot divide by zero.", True)
    assert invalid.is_error
    assert str(invalid).startswith("Invalid arguments for the tool divide: 'a'")


async def test_agents_and_functions_served_in_process() -> None:
    async with MCPSession(mcp_server([poet, divide], name="poetry")) as session:
        await check_served_tools(session)


async def test_agents_and_functions_served_over_stdio() -> None:
    served = MCPSession.stdio(sys.executable, ["-m", "tests.ext.mcp.served"], cwd=ROOT)
    async with served as session:
        await check_served_tools(session)


def test_the_package_reaches_the_sdks_types_through_mcp_not_its_own_dependency() -> None:
    """``mcp_types`` is a dependency of ``mcp``, not one our ``mcp`` extra names: what the
    package needs of it (the protocol versions) comes through ``mcp.types``, the SDK's public
    mirror of it (since mcp 2.2, the extra's floor). (serving.py imported ``mcp_types``.)"""
    package = ROOT / "miniagents"
    importing = sorted(
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mcp_types")
        or (
            isinstance(node, ast.Import)
            and any(alias.name.split(".")[0] == "mcp_types" for alias in node.names)
        )
    )
    assert importing == []


def test_serving_checks_the_tools_at_once() -> None:
    from miniagents.ext.tools import ToolNameConflictError

    with pytest.raises(ToolNameConflictError):
        mcp_server([divide, divide])


async def test_without_the_sdk_serve_stdio_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [name for name in sys.modules if name == "mcp" or name.startswith("mcp.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import mcp...` now fails
    with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[mcp\]"'):
        await serve_stdio([divide])


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_the_http_app_asks_for_the_token_and_checks_the_host() -> None:
    """Under uvicorn on 127.0.0.1: no token or a wrong one is a 401, another host a 400;
    with the token, the MCP handshake answers."""
    token = "t" * 32
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}))
    async with served(app) as client:
        nobody = await client.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        wrong = await client.post(
            "/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": "Bearer " + "x" * 32}
        )
        known = {**ACCEPT, "Authorization": f"Bearer {token}"}
        elsewhere = await client.post(
            "/mcp", json=INITIALIZE, headers={**known, "Host": "evil.example"}
        )
        answered = await client.post("/mcp", json=INITIALIZE, headers=known)
    assert (nobody.status_code, nobody.headers["www-authenticate"]) == (401, "Bearer")
    assert wrong.status_code == 401
    assert elsewhere.status_code == 400
    assert answered.status_code == 200
    assert '"serverInfo":{"name":"miniagents"' in answered.text


async def test_our_client_calls_our_http_app_with_its_token_and_is_refused_without() -> None:
    """``MCPSession.http(headers=...)`` sends the bearer token ``mcp_http_app`` asks for
    (under uvicorn on 127.0.0.1); without it, or with a wrong one, opening the session fails
    with an error that names the headers to give, and never shows the token given."""
    token = "t" * 32
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}))
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        known = MCPSession.http(url, headers={"Authorization": f"Bearer {token}"})
        async with known as session, MiniAgents():
            (divided,) = await asyncio.wait_for(
                ToolSet(session).run_all([call("divide", a=1, b=4)]), SAFETY
            )
        with pytest.raises(MCPSessionError) as nobody:
            async with MCPSession.http(url, open_timeout=SAFETY):
                pass
        wrong = "w" * 32
        with pytest.raises(MCPSessionError) as refused:
            async with MCPSession.http(url, headers={"Authorization": f"Bearer {wrong}"}):
                pass
    assert isinstance(divided, ToolResultMessage)
    assert (str(divided), divided.is_error) == ("0.25", False)
    assert (
        "The server answered HTTP 401 (it asks for credentials); give its credentials as "
        "headers, e.g. MCPSession.http(url, headers={'Authorization': 'Bearer <token>'})."
        in str(nobody.value)
    )
    assert "HTTP 401" in str(refused.value)
    assert "the headers given were refused: check them" in str(refused.value)
    assert wrong not in str(refused.value)


async def test_the_http_app_takes_no_body_larger_than_its_settings_max_body_bytes() -> None:
    """Under uvicorn on 127.0.0.1: a request larger than ``WebSettings.max_body_bytes`` is a
    413, as in the other web apps (it was taken up to the SDK's own 4 MiB)."""
    from miniagents.ext.web import WebSettings

    token = "t" * 32
    settings = WebSettings(max_body_bytes=10_000)
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}), settings=settings)
    known = {**ACCEPT, "Authorization": f"Bearer {token}"}
    padded = {**INITIALIZE, "id": 2, "padding": "x" * 20_000}  # (a member JSON-RPC ignores)
    async with served(app) as client:
        large = await client.post("/mcp", json=padded, headers=known)
        small = await client.post("/mcp", json=INITIALIZE, headers=known)
    assert large.status_code == 413
    assert small.status_code == 200


async def test_the_http_app_reads_a_gzipped_body_as_sent_never_uncompressed() -> None:
    """A body of 20 KB gzipped to a few hundred bytes, under ``max_body_bytes`` as sent: no
    part of the app (ours, Starlette, the SDK) uncompresses it, so it is no JSON."""
    from miniagents.ext.web import WebSettings

    token = "t" * 32
    settings = WebSettings(max_body_bytes=10_000)
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}), settings=settings)
    known = {**ACCEPT, "Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
    known["Content-Type"] = "application/json"
    padded = json.dumps({**INITIALIZE, "padding": "x" * 20_000}).encode()
    sent = gzip.compress(padded)
    assert len(sent) < 10_000
    async with served(app) as client:
        answer = await client.post("/mcp", content=sent, headers=known)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32700  # (JSON-RPC's parse error)


def _in_session(session_id: str, token: str) -> dict[str, str]:
    """The headers of a request in an MCP session, with the credentials of ``token``."""
    return {
        **ACCEPT,
        "Authorization": f"Bearer {token}",
        "mcp-session-id": session_id,
        "mcp-protocol-version": "2025-06-18",
    }


async def test_a_session_of_the_http_app_is_its_openers_alone() -> None:
    """Under uvicorn on 127.0.0.1: another caller the app knows, given the session's id,
    can neither call a tool in it nor end it (404, as for a session that does not exist);
    its opener's session goes on. (It could do both, and read what the session sent.)"""
    ada, bob = "a" * 32, "b" * 32
    app = mcp_http_app([divide], authentication=BearerTokenAuth({ada: "ada", bob: "bob"}))
    called = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "divide", "arguments": {"a": 1, "b": 4}},
    }
    async with served(app) as client:
        opened = await client.post(
            "/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {ada}"}
        )
        session_id = opened.headers["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await client.post("/mcp", json=initialized, headers=_in_session(session_id, ada))
        bobs_call = await client.post("/mcp", json=called, headers=_in_session(session_id, bob))
        bobs_end = await client.delete("/mcp", headers=_in_session(session_id, bob))
        adas_call = await client.post("/mcp", json=called, headers=_in_session(session_id, ada))
    assert (bobs_call.status_code, bobs_end.status_code) == (404, 404)
    assert "0.25" not in bobs_call.text
    assert adas_call.status_code == 200
    assert '"text":"0.25"' in adas_call.text


class _Expiring(BearerTokenAuth):
    """Knows its tokens until ``expired`` is set, then refuses them (a token that expired)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__(tokens)
        self.expired = False

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if self.expired:
            raise AuthenticationError("This token has expired.")
        return await super().authenticate(conn)


async def test_a_call_the_server_refuses_after_the_opening_names_the_status_and_headers() -> None:
    """A token that expires while the session is open: the next call's error result says
    that the server answered 401 and names ``headers=``, not the SDK's bare words."""
    token = "t" * 32
    authentication = _Expiring({token: "ada"})
    app = mcp_http_app([divide], authentication=authentication)
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        headers = {"Authorization": f"Bearer {token}"}
        async with MCPSession.http(url, headers=headers) as session, MiniAgents():
            tools = ToolSet(session)
            (divided,) = await asyncio.wait_for(tools.run_all([call("divide", a=1, b=4)]), SAFETY)
            authentication.expired = True
            (refused,) = await asyncio.wait_for(tools.run_all([call("divide", a=1, b=2)]), SAFETY)
    assert isinstance(divided, ToolResultMessage)
    assert (str(divided), divided.is_error) == ("0.25", False)
    assert isinstance(refused, ToolResultMessage)
    assert refused.is_error
    # (was: "Server returned an error response", the SDK's words, naming no status nor fix)
    assert str(refused) == (
        f"The MCP server {url} refused the call of its tool divide. The server answered "
        "HTTP 401 (it asks for credentials); the headers given were refused: check them, or "
        "give its credentials as headers, e.g. MCPSession.http(url, headers={'Authorization': "
        "'Bearer <token>'}). Open a new session with them."
    )
    assert token not in str(refused)


Answered = tuple[int, list[tuple[bytes, bytes]], bytes]
"""An answer sent instead of the app's: its HTTP status, headers and body."""


def _answering_posts(
    app: ASGIApp, answer: Callable[[dict[str, Any], object], Awaitable[Answered | None]]
) -> ASGIApp:
    """``app``, but each POST's JSON-RPC message is first shown to ``answer`` (with the ``b``
    of a call of ``divide`` in it): what it returns is sent instead of ``app``'s answer;
    ``None`` passes the request on to ``app``, whole."""

    async def answering(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        sent = json.loads(body)
        answered = await answer(sent, _divided_by(sent))
        if answered is not None:
            status, headers, said = answered
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": said})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return answering


def _divided_by(sent: dict[str, Any]) -> object:
    """The ``b`` of the call of ``divide`` that the JSON-RPC message ``sent`` makes, if any."""
    return sent.get("params", {}).get("arguments", {}).get("b") if sent.get("id") else None


def _refusing_one_call(app: ASGIApp, arrived: asyncio.Event, release: asyncio.Event) -> ASGIApp:
    """``app``, but for the calls of ``divide``: ``b=2`` is refused (HTTP 403), ``b=3`` fails
    (HTTP 500, a server's own error) once ``release`` is set (``arrived`` says it came)."""

    async def answer(sent: dict[str, Any], b: object) -> Answered | None:
        if b not in (2, 3):
            return None
        if b == 3:
            arrived.set()
            await release.wait()
        return (403 if b == 2 else 500), [], b""

    return _answering_posts(app, answer)


async def test_a_refusal_is_told_to_its_own_call_not_to_a_concurrent_call_that_failed() -> None:
    """Two calls at once: one the server refuses (403) while the other waits, which then
    fails with the server's own error (500). The refusal is the refused call's alone; it
    was told to any call that failed while a refusal was heard (a count, not the call)."""
    token = "t" * 32
    arrived, release = asyncio.Event(), asyncio.Event()
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}))
    async with served(_refusing_one_call(app, arrived, release)) as client:
        url = f"{client.base_url}/mcp"
        headers = {"Authorization": f"Bearer {token}"}
        async with MCPSession.http(url, headers=headers) as session, MiniAgents():
            tools = ToolSet(session)
            failing = asyncio.ensure_future(tools.run_all([call("divide", "c2", a=1, b=3)]))
            await asyncio.wait_for(arrived.wait(), SAFETY)  # the failing call is at the server
            (refused,) = await asyncio.wait_for(tools.run_all([call("divide", a=1, b=2)]), SAFETY)
            release.set()
            (failed,) = await asyncio.wait_for(failing, SAFETY)
    assert isinstance(refused, ToolResultMessage)
    assert isinstance(failed, ToolResultMessage)
    assert refused.is_error
    assert str(refused).startswith(
        f"The MCP server {url} refused the call of its tool divide. The server answered "
        "HTTP 403 (the credentials may not use it);"
    )
    assert failed.is_error
    assert "refused" not in str(failed)
    assert "HTTP 403" not in str(failed)
    assert str(failed).startswith(
        f"The MCP server {url} failed the call of its tool divide. The server answered HTTP "
        "500 (the server failed);"
    )


def _answering_statuses(app: ASGIApp, opening: int | None = None) -> ASGIApp:
    """``app``, but a call of ``divide`` with ``b`` of 400 or more is answered with that HTTP
    status (``b=499``: with a JSON-RPC error of the server's own in its body); ``opening``:
    the status every request is answered with (the session cannot open)."""

    async def answer(sent: dict[str, Any], b: object) -> Answered | None:
        status = opening or (b if isinstance(b, int) and b >= 400 else None)
        if status is None:
            return None
        error = {"code": -32603, "message": "The quota of the day is spent."}
        told = {"jsonrpc": "2.0", "id": sent.get("id"), "error": error}
        said = json.dumps(told).encode() if status == 499 else b"No."
        kind = b"application/json" if status == 499 else b"text/plain"
        return status, [(b"content-type", kind)], said

    return _answering_posts(app, answer)


async def test_every_http_error_status_of_a_call_is_told_with_its_status_and_fix() -> None:
    """A call answered with 413, 429, 5xx or another 4xx says which and what to do; the
    SDK's own words were "Server returned an error response" ("Not Found" for a 404),
    naming neither (only 401 and 403 were told). A server's JSON-RPC error, at any
    status, is told as it said it."""
    token = "t" * 32
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}))
    statuses = [413, 429, 500, 503, 418, 404, 499]
    async with served(_answering_statuses(app)) as client:
        url = f"{client.base_url}/mcp"
        headers = {"Authorization": f"Bearer {token}"}
        async with MCPSession.http(url, headers=headers) as session, MiniAgents():
            calls = [call("divide", f"c{b}", a=1, b=b) for b in statuses]
            results = await asyncio.wait_for(ToolSet(session).run_all(calls), SAFETY)
            (divided,) = await asyncio.wait_for(
                ToolSet(session).run_all([call("divide", a=1, b=4)]), SAFETY
            )
    told = {}
    for b, result in zip(statuses, results, strict=True):
        assert isinstance(result, ToolResultMessage)
        assert result.is_error
        told[b] = str(result)
    refused = f"The MCP server {url} refused the call of its tool divide. The server answered"
    failed = f"The MCP server {url} failed the call of its tool divide. The server answered"
    assert told[413] == (
        f"{refused} HTTP 413 (the request is too large); send less (a tool's arguments), or "
        "have the server take larger requests."
    )
    assert told[429] == (
        f"{refused} HTTP 429 (too many requests); retry later: the server limits how often "
        "it is called (or ask for a higher limit)."
    )
    for b in (500, 503):
        assert told[b] == (
            f"{failed} HTTP {b} (the server failed); check the server (its logs), then try again."
        )
    assert told[418] == (
        f"{refused} HTTP 418 (the server refused the request); check the URL (a server's "
        "streamable HTTP endpoint) and the headers given."
    )
    assert told[404] == (
        f"{refused} HTTP 404 (not found: no MCP endpoint at this URL, or the session ended); "
        "check the URL's path (a server's streamable HTTP endpoint, often /mcp), or, if it is "
        "right, open a new session (the server ended this one, or restarted)."
    )
    assert "The quota of the day is spent." in told[499]
    assert "HTTP 499" not in told[499]
    assert token not in " ".join(told.values())
    assert isinstance(divided, ToolResultMessage)
    assert (str(divided), divided.is_error) == ("0.25", False)  # (the session goes on)


async def test_a_server_that_answers_the_opening_with_an_error_status_names_it() -> None:
    """A server that answers the handshake with 429: ``async with`` fails with the status
    and its fix ("check that it runs" before, as if the server were not there)."""
    app = mcp_http_app([divide], authentication=BearerTokenAuth({"t" * 32: "ada"}))
    async with served(_answering_statuses(app, opening=429)) as client:
        url = f"{client.base_url}/mcp"
        with pytest.raises(MCPSessionError) as raised:
            async with MCPSession.http(url, open_timeout=SAFETY):
                pass
    assert str(raised.value).endswith(
        "The server answered HTTP 429 (too many requests); retry later: the server limits how "
        "often it is called (or ask for a higher limit)."
    ), str(raised.value)
    assert "Check that it runs" not in str(raised.value)


def test_a_call_the_sdk_timed_out_is_told_as_read_timeout_though_the_clock_rounds() -> None:
    """The SDK's timer fires at its start plus ``read_timeout``; the session subtracts its own
    start again, which rounds below the timeout for some starts (1847.43... + 600 - 1847.43...
    is 599.9999999999998): the call was told as the server's own error, in the SDK's words
    ("Request 'tools/call' timed out"), not as the session's ``read_timeout``."""
    from mcp import MCPError
    from mcp.types import REQUEST_TIMEOUT

    start = 1847.4337369372327
    elapsed = (start + 600) - start
    assert elapsed < 600
    session = MCPSession.http("http://127.0.0.1:9/mcp", read_timeout=600)
    assert session._timed_out(MCPError(REQUEST_TIMEOUT, "timed out"), elapsed)
    assert not session._timed_out(MCPError(REQUEST_TIMEOUT, "timed out"), 599.0)


async def test_over_http_a_hung_call_waits_read_timeout_not_the_http_clients_300() -> None:
    """``read_timeout=600`` (what the error of a call past it advises) holds over HTTP too:
    the call fails after 600 seconds (of a virtual clock) with the error that names it. The
    HTTP client's own read timeout, 300 seconds whatever was given, ended it before (a
    server that answers in JSON says nothing meanwhile), as a closed connection."""
    released = asyncio.Event()

    async def hang() -> str:
        """Answer once the test is done."""
        await released.wait()
        return "late"

    app = mcp_server([hang]).streamable_http_app(  # (JSON answers: no SSE pings meanwhile)
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    with virtual_time() as clock:  # (the server's timers too: it runs on this loop)
        async with served(app) as client:
            url = f"{client.base_url}/mcp"
            session = MCPSession.http(url, read_timeout=600)
            async with session, MiniAgents():
                try:
                    start = clock.elapsed
                    tools = ToolSet(session)
                    (result,) = await asyncio.wait_for(tools.run_all([call("hang")]), 3600)
                    elapsed = clock.elapsed - start
                finally:
                    released.set()  # (the server's call ends, and the server with it)
    assert isinstance(result, ToolResultMessage)
    assert result.is_error
    assert str(result).startswith(
        f"The MCP server {url} did not answer the call of its tool hang within 600 seconds "
        "(read_timeout)."
    )
    assert elapsed == pytest.approx(600)


async def test_a_server_that_does_not_answer_the_close_is_cut_after_10_seconds() -> None:
    """The end of the block waits 10 seconds (of a virtual clock) for a server to end the
    session (the DELETE of a handshake-era server's session), then cuts the connection. It
    waited as long as the HTTP client's reads: ``read_timeout`` and 30 seconds more (for
    ever with ``read_timeout=None``)."""
    released = asyncio.Event()
    inner = mcp_server([divide]).streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "DELETE":
            await released.wait()  # the server hangs on the session's end
        if scope["type"] == "http" and scope["method"] == "POST":
            read = [await receive()]
            while read[-1].get("more_body"):
                read.append(await receive())
            sent = json.loads(b"".join(message.get("body", b"") for message in read))
            if sent.get("method") == "server/discover":  # a server of the handshake's era
                unknown = {"code": -32601, "message": "Method not found"}
                answer = {"jsonrpc": "2.0", "id": sent["id"], "error": unknown}
                json_type = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": json_type})
                await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
                return

            async def again() -> Message:
                return read.pop(0) if read else await receive()

            await inner(scope, again, send)
            return
        await inner(scope, receive, send)

    with virtual_time() as clock:
        async with served(app) as client:
            try:
                session = MCPSession.http(f"{client.base_url}/mcp", read_timeout=600)
                async with session:
                    async with MiniAgents():
                        (divided,) = await ToolSet(session).run_all([call("divide", a=1, b=4)])
                    start = clock.elapsed
                elapsed = clock.elapsed - start
            finally:
                released.set()
    assert str(divided) == "0.25"
    assert elapsed == pytest.approx(10)  # (on main: 630)


@pytest.mark.parametrize(
    ("headers", "refusal"),
    [
        (["Authorization"], r"needs headers to be a mapping of str to str, or None; got \["),
        ({"Bad Name": "x"}, r"each name of headers to be an HTTP header's name .*got 'Bad Name'"),
        ({b"X-Key": "x"}, r"each name of headers .*got b'X-Key'"),
        ({"X-Key": "hunter2\r\nX-Evil: 1"}, r"header 'X-Key' .*got a line break, another control"),
        ({"X-Key": "hunter\u00e92"}, r"header 'X-Key' .*a character outside ASCII in it"),
        (
            {"X-Key": b"hunter2"},
            r"header 'X-Key' to be a str .*got a bytes \(the value is not shown",
        ),
        ({"X-Key": 42}, r"header 'X-Key' to be a str .*got an int \(the value is not shown"),
    ],
)
def test_bad_headers_are_refused_at_once_without_showing_a_value(
    headers: object, refusal: str
) -> None:
    with pytest.raises(ArgumentError, match=refusal) as refused:
        MCPSession.http("http://127.0.0.1:1/mcp", headers=headers)  # type: ignore[arg-type]
    assert "hunter" not in str(refused.value)


async def test_the_http_app_closes_every_websocket_and_runs_its_lifespan() -> None:
    """Under uvicorn on 127.0.0.1: a WebSocket, with the token or without, is refused (403)
    before it opens, even to a route added to the app (it was passed through unchecked);
    the lifespan still runs (the MCP handshake answers)."""
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    reached: list[str] = []

    async def echo(websocket: WebSocket) -> None:
        reached.append("echo")
        await websocket.accept()
        await websocket.close()

    token = "t" * 32
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}))
    app.router.routes.append(WebSocketRoute("/echo", echo))
    known = {"Authorization": f"Bearer {token}"}
    async with served(app) as client:
        url = f"ws://127.0.0.1:{client.base_url.port}"
        statuses = []
        for path, headers in [("/echo", {}), ("/echo", known), ("/mcp", known)]:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url + path, additional_headers=headers, open_timeout=SAFETY):
                    pass
            statuses.append(refused.value.response.status_code)
        answered = await client.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **known})
    assert statuses == [403, 403, 403]
    assert reached == []
    assert answered.status_code == 200


def test_the_http_app_needs_authentication() -> None:
    with pytest.raises(WebConfigurationError, match="mcp_http_app needs authentication="):
        mcp_http_app([divide], authentication=None)  # type: ignore[arg-type]


# -- bounds: the calls of one caller, the sessions; what a caller is told of an error -------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_one_caller_runs_at_most_max_live_runs_per_principal_tool_calls_at_once() -> None:
    """Under uvicorn on 127.0.0.1, ``max_live_runs_per_principal=2``: while two calls of
    ada's run, her third is refused with an error that names the setting; bob's call runs
    meanwhile, and ada's next once hers have ended. (Every call ran: one caller could start
    as many calls as it liked.)"""
    from miniagents.ext.web import WebSettings

    started: list[str] = []
    both_started = asyncio.Event()
    released = asyncio.Event()

    async def hold(label: str) -> str:
        """Hold until the test releases it."""
        started.append(label)
        if len(started) == 2:
            both_started.set()
        await released.wait()
        return label

    ada, bob = "a" * 32, "b" * 32
    app = mcp_http_app(
        [hold, divide],
        authentication=BearerTokenAuth({ada: "ada", bob: "bob"}),
        settings=WebSettings(max_live_runs_per_principal=2),
    )
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        adas = MCPSession.http(url, headers=_bearer(ada))
        bobs = MCPSession.http(url, headers=_bearer(bob))
        async with adas, bobs, MiniAgents():
            try:
                held = [ToolSet(adas).run(call("hold", f"h{n}", label=f"h{n}")) for n in (1, 2)]
                await asyncio.wait_for(both_started.wait(), SAFETY)
                third = await asyncio.wait_for(ToolSet(adas).run(call("divide", a=1, b=4)), SAFETY)
                bobs_call = await asyncio.wait_for(
                    ToolSet(bobs).run(call("divide", a=1, b=2)), SAFETY
                )
            finally:
                released.set()
            ended = [await asyncio.wait_for(one, SAFETY) for one in held]
            again = await asyncio.wait_for(ToolSet(adas).run(call("divide", a=1, b=8)), SAFETY)
    assert started == ["h1", "h2"]
    assert third.is_error
    assert str(third) == (  # (was: "The tool divide failed: MCPError: You have 2 ...")
        f"The MCP server {url} answered the call of its tool divide with an error: You have 2 "
        "tool calls under way on this MCP server, the most one caller may "
        "(max_live_runs_per_principal); call again once one of them has ended."
    )
    assert (str(bobs_call), bobs_call.is_error) == ("0.5", False)
    assert [(str(one), one.is_error) for one in ended] == [("h1", False), ("h2", False)]
    assert (str(again), again.is_error) == ("0.125", False)


def _leaky(b: float) -> float:
    """Divide 1 by b, through a database."""
    raise RuntimeError("connect to postgresql://admin:hunter2@db.internal/prod failed")


async def test_a_served_tools_exception_is_told_as_its_class_and_a_reference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under uvicorn on 127.0.0.1: a tool's exception reaches its caller as a sentence naming
    the tool, the class and a reference, never its text (a password here); the server's log
    has it whole under that reference. A ``ToolCallError``'s text is the caller's, as is.
    (The text went to the caller as it is.)"""
    token = "t" * 32
    app = mcp_http_app([_leaky, divide], authentication=BearerTokenAuth({token: "ada"}))
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        async with MCPSession.http(url, headers=_bearer(token)) as session, MiniAgents():
            leaked, by_zero = await asyncio.wait_for(
                ToolSet(session).run_all([call("_leaky", b=2), call("divide", "c2", a=1, b=0)]),
                SAFETY,
            )
    assert leaked.is_error
    assert "hunter2" not in str(leaked)
    told = re.fullmatch(
        r"The tool _leaky failed with RuntimeError\. The server's log has the error under the "
        r"reference ([0-9a-f]{32}): ask the MCP server's operator to look it up there\.",
        str(leaked),
    )
    assert told is not None, str(leaked)
    # (logged where it was caught, as for the web apps: was the server's wrapper's log; the
    # caller, in this process too, logs each error result, an MCPToolError, under its own)
    (logged,) = [r for r in caplog.records if "failed with RuntimeError (" in r.getMessage()]
    assert (logged.name, logged.levelno) == ("miniagents.ext.tools.running", logging.ERROR)
    assert logged.getMessage() == (
        f"The tool _leaky failed with RuntimeError (reference {told.group(1)}); the model "
        "gets its text."
    )
    assert logged.exc_info is not None
    assert "hunter2" in str(logged.exc_info[1])
    assert (str(by_zero), by_zero.is_error) == ("Cannot divide by zero.", True)


async def test_with_error_texts_a_served_tools_exception_is_told_as_it_is_written() -> None:
    from miniagents.ext.web import WebSettings

    token = "t" * 32
    app = mcp_http_app(
        [_leaky],
        authentication=BearerTokenAuth({token: "ada"}),
        settings=WebSettings(error_texts=True),
    )
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        async with MCPSession.http(url, headers=_bearer(token)) as session, MiniAgents():
            (leaked,) = await asyncio.wait_for(
                ToolSet(session).run_all([call("_leaky", b=2)]), SAFETY
            )
    assert leaked.is_error
    assert str(leaked) == (
        "The tool _leaky failed: RuntimeError: connect to "
        "postgresql://admin:hunter2@db.internal/prod failed"
    )


@miniagent(alias="ASKER")
async def _asker(ctx: InteractionContext) -> None:
    """Ask which city, then answer."""
    question = request_input("Which city?")
    ctx.reply(question)
    await question.aanswer()  # (withdrawn: a model answers no question)
    ctx.reply("never")


async def test_an_agent_tools_withdrawn_question_is_told_to_the_caller_as_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An agent served as a tool that asks a question has it withdrawn (its caller is a
    model): the ``InputRequestError`` says so in the library's own sentence, which the
    caller is told as written, as A2A and the model are, not its class and a reference.
    (The caller was told "The tool ASKER failed with InputRequestError. The server's log
    has the error under the reference ...", and the log had it as an ``ERROR``.)"""
    caplog.set_level(logging.INFO, logger="miniagents.ext.tools.running")
    async with MCPSession(mcp_server([_asker], name="asking")) as session, MiniAgents():
        (asked,) = await asyncio.wait_for(ToolSet(session).run_all([call("ASKER")]), SAFETY)
    assert asked.is_error
    assert str(asked) == (
        "The tool ASKER failed: InputRequestError: The agent of the tool ASKER asked its caller "
        "a question, but a tool's caller is a model, which answers no question: give the "
        "agent what it needs in the call's arguments, or call it where someone answers (for "
        "a2a_agent, questions='raise' fails the call at once). The agent's question, in its "
        'own words (at most 200 characters): "Which city?".'
    )
    # (the server's log: the error at INFO, no reference; the caller, in this process too,
    # logs the error result it got, an MCPToolError, under its own)
    logged = [r.getMessage() for r in caplog.records if "MCPToolError" not in r.getMessage()]
    assert logged == ["The tool ASKER failed; the model gets the error."]


async def test_the_http_app_keeps_at_most_max_sessions_open() -> None:
    """Under uvicorn on 127.0.0.1, ``max_sessions=1``: a second session is refused (503)
    while the first is open, and opens once the first has ended. (Its count was the SDK's
    default, which mcp 2.0 and 2.1 did not have: no bound.) The tools' list is fixed: the
    server says it never changes."""
    token = "t" * 32
    app = mcp_http_app([divide], authentication=BearerTokenAuth({token: "ada"}), max_sessions=1)
    known = {**ACCEPT, **_bearer(token)}
    async with served(app) as client:
        first = await client.post("/mcp", json=INITIALIZE, headers=known)
        second = await client.post("/mcp", json=INITIALIZE, headers=known)
        ended = await client.delete(
            "/mcp", headers=_in_session(first.headers["mcp-session-id"], token)
        )
        third = await client.post("/mcp", json=INITIALIZE, headers=known)
    assert (first.status_code, second.status_code) == (200, 503)
    assert ended.status_code == 200
    assert third.status_code == 200
    assert '"tools":{"listChanged":false}' in first.text


async def test_a_session_of_the_http_app_ends_after_session_idle_seconds() -> None:
    """Under uvicorn on 127.0.0.1, on a virtual clock, ``session_idle_seconds=60``: a
    session idle for 59 seconds goes on; idle for 61 more, its id answers 404. (It lasted
    the SDK's default, none at all before mcp 2.2.)"""
    token = "t" * 32
    app = mcp_http_app(
        [divide], authentication=BearerTokenAuth({token: "ada"}), session_idle_seconds=60
    )
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    with virtual_time():  # (the server's timers too: it runs on this loop)
        async with served(app) as client:
            opened = await client.post(
                "/mcp", json=INITIALIZE, headers={**ACCEPT, **_bearer(token)}
            )
            in_session = _in_session(opened.headers["mcp-session-id"], token)
            await asyncio.sleep(59)
            soon = await client.post("/mcp", json=initialized, headers=in_session)
            await asyncio.sleep(61)
            late = await client.post("/mcp", json=initialized, headers=in_session)
    assert (opened.status_code, soon.status_code, late.status_code) == (200, 202, 404)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_sessions", 0),
        ("max_sessions", 1.5),
        ("max_sessions_per_principal", 0),
        ("session_idle_seconds", 0),
    ],
)
def test_the_http_apps_session_bounds_are_checked(name: str, value: object) -> None:
    with pytest.raises(WebConfigurationError, match=name):
        mcp_http_app([divide], authentication=BearerTokenAuth({"t" * 32: "ada"}), **{name: value})  # type: ignore[arg-type]


async def test_one_caller_keeps_at_most_max_sessions_per_principal_open() -> None:
    """Under uvicorn on 127.0.0.1, ``max_sessions=3``, ``max_sessions_per_principal=2``: ada's
    third session is refused (a 429 whose error names the setting) while bob still opens
    his; once ada closed one, she opens another. (ada could open all ``max_sessions``: every
    other caller was refused, 503, until one of hers ended.)"""
    ada, bob = "a" * 32, "b" * 32
    app = mcp_http_app(
        [divide],
        authentication=BearerTokenAuth({ada: "ada", bob: "bob"}),
        max_sessions=3,
        max_sessions_per_principal=2,
    )
    async with served(app) as client:
        adas = [
            await client.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **_bearer(ada)})
            for _ in range(3)
        ]
        bobs = await client.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **_bearer(bob)})
        closed = await client.delete(
            "/mcp", headers=_in_session(adas[0].headers["mcp-session-id"], ada)
        )
        again = await client.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **_bearer(ada)})
    assert [answer.status_code for answer in adas] == [200, 200, 429]
    assert adas[2].json()["error"]["message"] == (
        "You have 2 MCP sessions open on this server, the most one caller may "
        "(max_sessions_per_principal); close one of them (a client closes its session as it "
        "ends) or let one go idle until the server ends it, then open another."
    )
    assert "mcp-session-id" not in adas[2].headers
    assert (bobs.status_code, closed.status_code, again.status_code) == (200, 200, 200)


ADA = "t" * 32
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _adas_app(
    max_sessions_per_principal: int, session_idle_seconds: float = DEFAULT_SESSION_IDLE_SECONDS
) -> tuple[ASGIApp, dict[str, str]]:
    """An HTTP app serving ``divide`` to ada alone (her token is ``ADA``), with these bounds
    on her sessions, and the headers of her openings."""
    app = mcp_http_app(
        [divide],
        authentication=BearerTokenAuth({ADA: "ada"}),
        max_sessions_per_principal=max_sessions_per_principal,
        session_idle_seconds=session_idle_seconds,
    )
    return app, {**ACCEPT, **_bearer(ADA)}


def _heard_reading(app: ASGIApp, reading: asyncio.Event) -> ASGIApp:
    """``app``, setting ``reading`` once it reads a request's body (past the door, and ours)."""

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def heard() -> Message:
            reading.set()
            return await receive()

        await app(scope, heard if scope["type"] == "http" else receive, send)

    return watched


async def test_an_opening_under_way_counts_so_concurrent_ones_cannot_pass_the_bound() -> None:
    """Under uvicorn on 127.0.0.1, ``max_sessions_per_principal=1``: while ada's first
    opening is under way (its body half sent), her second is refused (429); the first then
    opens. (Counted only once opened, both would have opened.)"""
    app, opening = _adas_app(max_sessions_per_principal=1)
    reading, release = asyncio.Event(), asyncio.Event()
    sent = json.dumps(INITIALIZE).encode()

    async def slow_body() -> AsyncIterator[bytes]:
        yield sent[:10]
        await release.wait()
        yield sent[10:]

    known = {**opening, "Content-Type": "application/json"}
    async with served(_heard_reading(app, reading)) as client:
        first = asyncio.ensure_future(client.post("/mcp", content=slow_body(), headers=known))
        try:
            await asyncio.wait_for(reading.wait(), SAFETY)
            second = await client.post("/mcp", json=INITIALIZE, headers=known)
        finally:
            release.set()
        opened = await asyncio.wait_for(first, SAFETY)
    assert (second.status_code, opened.status_code) == (429, 200)


async def test_a_session_that_went_idle_counts_no_more_for_its_caller() -> None:
    """Under uvicorn on 127.0.0.1, on a virtual clock, ``max_sessions_per_principal=1`` and
    ``session_idle_seconds=60``: an opening that failed (400) counts for nothing; ada's
    second session is refused while her first is open, and opens once the first has been
    idle for 61 seconds (the server ended it: its id answers 404)."""
    app, known = _adas_app(max_sessions_per_principal=1, session_idle_seconds=60)
    with virtual_time():  # (the server's timers too: it runs on this loop)
        async with served(app) as client:
            failed = await client.post("/mcp", json={"jsonrpc": "2.0"}, headers=known)
            first = await client.post("/mcp", json=INITIALIZE, headers=known)
            refused = await client.post("/mcp", json=INITIALIZE, headers=known)
            await asyncio.sleep(61)
            second = await client.post("/mcp", json=INITIALIZE, headers=known)
            late = await client.post(
                "/mcp",
                json=INITIALIZED,
                headers=_in_session(first.headers["mcp-session-id"], ADA),
            )
    assert failed.status_code == 400
    assert (first.status_code, refused.status_code, second.status_code) == (200, 429, 200)
    assert late.status_code == 404


async def test_a_callers_429_says_when_one_of_their_sessions_would_end() -> None:
    """Under uvicorn on 127.0.0.1, on a virtual clock, ``max_sessions_per_principal=2`` and
    ``session_idle_seconds=60``: ada's third opening, 20 seconds after her first session
    went idle and 10 after her second, is told to retry in 40 seconds (when her first one
    ends), and in 60 once each of her sessions is back in use. (It was told 1 second: a
    client that heeded it was refused for a minute.)"""
    app, known = _adas_app(max_sessions_per_principal=2, session_idle_seconds=60)
    with virtual_time():  # (the server's timers too: it runs on this loop)
        async with served(app) as client:
            first = await client.post("/mcp", json=INITIALIZE, headers=known)
            await asyncio.sleep(10)
            second = await client.post("/mcp", json=INITIALIZE, headers=known)
            await asyncio.sleep(10)
            idle = await client.post("/mcp", json=INITIALIZE, headers=known)
            for opened in (first, second):
                used = await client.post(
                    "/mcp",
                    json=INITIALIZED,
                    headers=_in_session(opened.headers["mcp-session-id"], ADA),
                )
                assert used.status_code == 202
            fresh = await client.post("/mcp", json=INITIALIZE, headers=known)
    assert (first.status_code, second.status_code) == (200, 200)
    assert idle.status_code == 429
    assert idle.headers["Retry-After"] in {"40", "41"}  # (whole seconds, rounded up)
    assert (fresh.status_code, fresh.headers["Retry-After"]) == (429, "60")


async def test_a_session_with_an_open_get_stream_counts_until_it_has_been_idle() -> None:
    """Under uvicorn on 127.0.0.1, on a virtual clock, ``max_sessions_per_principal=1`` and
    ``session_idle_seconds=60``: ada's session with its GET stream open (its client listens)
    lives on past 60 seconds, for the SDK (its id still answers) as for her count (another
    opening is refused); once the stream closed and 61 seconds passed, she opens another."""
    app, known = _adas_app(max_sessions_per_principal=1, session_idle_seconds=60)
    with virtual_time():  # (the server's timers too: it runs on this loop)
        async with served(app) as client:
            first = await client.post("/mcp", json=INITIALIZE, headers=known)
            in_session = _in_session(first.headers["mcp-session-id"], ADA)
            await client.post("/mcp", json=INITIALIZED, headers=in_session)
            async with client.stream("GET", "/mcp", headers=in_session) as listening:
                await asyncio.sleep(61)
                refused = await client.post("/mcp", json=INITIALIZE, headers=known)
                alive = await client.post("/mcp", json=INITIALIZED, headers=in_session)
            await asyncio.sleep(61)
            second = await client.post("/mcp", json=INITIALIZE, headers=known)
            late = await client.post("/mcp", json=INITIALIZED, headers=in_session)
    assert (first.status_code, listening.status_code) == (200, 200)
    assert (refused.status_code, alive.status_code) == (429, 202)
    assert (second.status_code, late.status_code) == (200, 404)


@contextlib.contextmanager
def _failing_first_session(fail: asyncio.Event, failed: asyncio.Event) -> Iterator[None]:
    """The SDK's first HTTP session (of those opened in the block) fails once ``fail`` is set
    (its message loop raises, as a bug of the server would make it), then sets ``failed``."""
    import anyio
    from mcp.server.runner import serve_loop

    sessions = itertools.count()

    async def failing(*args: Any, **kwargs: Any) -> None:
        if next(sessions):
            await serve_loop(*args, **kwargs)
            return

        async def breaking() -> None:
            await fail.wait()
            raise RuntimeError("The session's message loop broke.")

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(breaking)
                await serve_loop(*args, **kwargs)
        finally:
            failed.set()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mcp.server.streamable_http_manager.serve_loop", failing)
        yield


async def test_a_session_the_sdk_ended_as_it_failed_counts_no_more_once_it_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under uvicorn on 127.0.0.1, ``max_sessions_per_principal=1``: ada's session fails on
    the server (the SDK ends it, and answers its id 404); once ada has been told so, she
    opens another. A 404 for its id of another path (the router's) or of the era without
    sessions (the SDK's for a method it lacks) ends nothing. (The failed
    session counted until its idle time, 30 minutes, was over: each opening was a 429.)"""
    app, known = _adas_app(max_sessions_per_principal=1)
    fail, failed = asyncio.Event(), asyncio.Event()
    with _failing_first_session(fail, failed), caplog.at_level(logging.CRITICAL):
        async with served(app) as client:
            first = await client.post("/mcp", json=INITIALIZE, headers=known)
            in_session = _in_session(first.headers["mcp-session-id"], ADA)
            elsewhere = await client.get("/elsewhere", headers=in_session)
            modern = {
                **in_session,
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "no/such/method",
            }
            envelope = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            unknown = {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "no/such/method",
                "params": {"_meta": envelope},
            }
            sessionless = await client.post("/mcp", json=unknown, headers=modern)
            refused = await client.post("/mcp", json=INITIALIZE, headers=known)
            fail.set()
            await asyncio.wait_for(failed.wait(), SAFETY)
            told = await client.post("/mcp", json=INITIALIZED, headers=in_session)
            second = await client.post("/mcp", json=INITIALIZE, headers=known)
    assert (first.status_code, elsewhere.status_code, sessionless.status_code) == (200, 404, 404)
    assert refused.status_code == 429
    assert (told.status_code, second.status_code) == (404, 200)


def _refusing_server(code: int = -32050) -> Any:
    """A low-level SDK server whose one tool, ``ask``, answers a JSON-RPC error of its ``said``
    (with ``code``)."""
    from mcp import MCPError
    from mcp.server import Server
    from mcp.types import CallToolResult, ListToolsResult, Tool

    async def list_tools(ctx: Any, params: Any) -> ListToolsResult:
        schema = {"type": "object", "properties": {"said": {"type": "string"}}}
        return ListToolsResult(tools=[Tool(name="ask", input_schema=schema)])

    async def call_tool(ctx: Any, params: Any) -> CallToolResult:
        raise MCPError(code, (params.arguments or {})["said"])

    return Server("refusing", on_list_tools=list_tools, on_call_tool=call_tool)


async def test_a_servers_json_rpc_error_for_a_call_is_told_as_a_sentence_not_a_class() -> None:
    """Under uvicorn on 127.0.0.1, a server that answers calls with JSON-RPC errors: each is
    the call's error result in the server's words, after the server and the tool, without
    the SDK's class (``MCPError: ...``); a blank one says the server gave no reason, and a
    long one is cut at ``max_result_chars``, as a result is."""
    app = _refusing_server().streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        async with MCPSession.http(url, max_result_chars=25) as session, MiniAgents():
            told, blank, long = await asyncio.wait_for(
                ToolSet(session).run_all(
                    [
                        call("ask", "c1", said="Come back in a minute."),
                        call("ask", "c2", said=" "),
                        call("ask", "c3", said="x" * 30),
                    ]
                ),
                SAFETY,
            )
    head = f"The MCP server {url} answered the call of its tool ask with an error"
    assert all(result.is_error for result in (told, blank, long))
    assert str(told) == f"{head}: Come back in a minute."
    assert str(blank) == f"{head}, without saying why."
    assert str(long) == (
        f"{head}: {'x' * 25}\n[The server's error was cut here: it had 30 characters, more "
        "than the 25 this MCP session passes on (max_result_chars).]"
    )


async def test_a_servers_own_timeout_error_is_told_as_its_error_not_as_read_timeout() -> None:
    """Under uvicorn on 127.0.0.1, a server that answers a call at once with a JSON-RPC error
    of code -32001 (the code of the SDK's own request timeout; here the server's, e.g. of a
    service it calls): the call's error result is the server's, in its words. (It read as
    the session's read_timeout of 300 seconds, which had not passed, and its fix.)"""
    app = _refusing_server(code=-32001).streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    async with served(app) as client:
        url = f"{client.base_url}/mcp"
        async with MCPSession.http(url) as session, MiniAgents():
            [told] = await asyncio.wait_for(
                ToolSet(session).run_all([call("ask", said="The weather service timed out.")]),
                SAFETY,
            )
    assert told.is_error
    assert str(told) == (
        f"The MCP server {url} answered the call of its tool ask with an error: The weather "
        "service timed out."
    )
