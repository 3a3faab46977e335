"""Serving MiniAgents tools (agents, functions, ``Tool`` s) as the tools of an MCP server.

::

    server = mcp_server([researcher, get_weather], name="research")
    # in-process: MCPSession(server); over stdio: await serve_stdio([...]) in the server's
    # own program; over HTTP, behind a bearer token and the allowed hosts:
    app = mcp_http_app([researcher, get_weather], authentication=BearerTokenAuth({token: "ada"}))

Each call runs in a ``MiniAgents`` context of its own, which ends when the call has
finished; its result (MCP results are not streamed) is the tool's whole reply as text, and
an error result (invalid arguments, an exception of the tool) is sent with ``isError``.

What the caller is told of a tool's exception: the text of a ``ToolCallError`` (which a
tool raises to tell its caller what to do differently) as it is written; of any other
exception, a sentence naming the tool, the exception's class and a reference, the exception
logged whole under that reference (its text may hold a path, a query, a key), unless the
settings say ``WebSettings(error_texts=True)``. A caller runs at most
``max_live_runs_per_principal`` tool calls at once (the server ``max_live_runs``): one more
is refused with a JSON-RPC error (code ``-32029``) that says so. Over :func:`mcp_http_app`,
a caller keeps at most ``max_sessions_per_principal`` MCP sessions open at once (the server
``max_sessions``): one more is a 429 that says so, so that no caller takes every session.

The tools are listed once, as the server is made: a ``ToolSet`` does not change, so the
server never sends ``notifications/tools/list_changed`` (its capabilities say
``listChanged: false``); to serve other tools, make another server.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.caller_counts import CallerCounts
from miniagents.ext.mcp._sdk import require_mcp
from miniagents.ext.told_errors import ToldResult
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool_like import ToolLike
from miniagents.ext.tools.tool_set import ToolSet
from miniagents.miniagents.context import MiniAgents

if TYPE_CHECKING:
    from mcp.server import Server, ServerRequestContext
    from mcp.types import (
        CallToolRequestParams,
        CallToolResult,
        ListToolsResult,
        PaginatedRequestParams,
    )
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from miniagents.ext.web.auth import Authentication
    from miniagents.ext.web.lowlevel import Door
    from miniagents.ext.web.settings import WebSettings

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_MAX_SESSIONS_PER_PRINCIPAL",
    "DEFAULT_SESSION_IDLE_SECONDS",
    "mcp_http_app",
    "mcp_server",
    "serve_stdio",
]

DEFAULT_MAX_SESSIONS = 1_000
"""The most MCP sessions :func:`mcp_http_app` keeps open at once (one more is a 503)."""

DEFAULT_MAX_SESSIONS_PER_PRINCIPAL = 100
"""The most MCP sessions one caller of :func:`mcp_http_app` keeps open at once (one more is a
429), so that one caller cannot take all :data:`DEFAULT_MAX_SESSIONS`."""

DEFAULT_SESSION_IDLE_SECONDS = 1_800.0
"""Seconds an MCP session of :func:`mcp_http_app` lasts with no request under way (then 404)."""

_TOO_MANY_CALLS = -32029
"""The JSON-RPC error code of a tool call refused for the calls under way (a server error's
code, of the range JSON-RPC leaves to servers)."""

_TOO_MANY_SESSIONS = -32030
"""The JSON-RPC error code of a session refused for a caller's open sessions (a server
error's code, as ``_TOO_MANY_CALLS``)."""

_SESSION_ID = "mcp-session-id"
"""The HTTP header that names a request's MCP session (and, in the answer that opens one,
the new session)."""

_OPERATOR = "the MCP server's operator"
"""Whom a caller told of a tool's exception is told to ask (see ``ToldResult``)."""

_CALLER = "miniagents.mcp_caller"
"""The key of a request's ASGI scope that names its caller (the principal the door knows)."""


def mcp_server(
    tools: Iterable[ToolLike],
    *,
    name: str = "miniagents",
    instructions: str | None = None,
    settings: WebSettings | None = None,
) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) whose tools are ``tools``.

    Served over HTTP as the SDK's ``server.streamable_http_app()``, it asks nobody who they
    are: whoever reaches it may call every tool. Serve :func:`mcp_http_app` instead, which
    asks for credentials and checks the hosts.

    The tools are listed once, now: the server's list never changes (it does not send
    ``notifications/tools/list_changed``, and says so in its capabilities). A tool's
    exception is told to its caller as a sentence naming the tool, the exception's class
    and a reference, the exception logged whole under it (a ``ToolCallError`` as it is
    written; see the module).

    Args:
        tools: Agents, typed functions and ``Tool`` objects, as for ``ToolSet``.
        name: The server's name, as clients see it.
        instructions: What clients should know about the server, if anything.
        settings: ``error_texts=True`` tells callers a tool's exception as it is written;
            ``max_live_runs`` bounds the tool calls under way at once, and
            ``max_live_runs_per_principal`` those of one caller (over ``mcp_http_app``, a
            principal; else every caller is one). ``None``, the default, bounds nothing
            (the one client of ``serve_stdio`` or of an in-process ``MCPSession``) and tells
            exceptions as a sentence and a reference. The other settings are
            :func:`mcp_http_app`'s.

    Raises:
        MissingExtraError: without the MCP SDK (``pip install "miniagents[mcp]"``; an
            ``ImportError``).
        ToolDefinitionError: if one of ``tools`` cannot be a tool.
        ToolNameConflictError: if two of them have the same name.
    """
    require_mcp()
    from mcp import types
    from mcp.server import Server

    tool_set = ToolSet(tools)
    error_texts = settings is not None and settings.error_texts
    calls = _Calls(
        None if settings is None else settings.max_live_runs,
        None if settings is None else settings.max_live_runs_per_principal,
    )
    listed = types.ListToolsResult(
        tools=[
            types.Tool(name=tool.name, description=tool.description, input_schema=tool.parameters)
            for tool in tool_set
        ]
    )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return listed

    async def call_tool(
        ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        call = ToolCallMessage(
            tool_name=params.name, arguments=params.arguments or {}, call_id=str(ctx.request_id)
        )
        with calls.held(_caller_of(ctx.request)):
            async with MiniAgents():
                result = tool_set.run(call)
                told = ToldResult(result, error_texts=error_texts, operator=_OPERATOR)
                async for _ in told.tokens():  # (MCP results are not streamed)
                    pass
        return types.CallToolResult(
            content=[types.TextContent(text=told.text)],
            is_error=(await result).is_error,
        )

    return Server(name, instructions=instructions, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(
    tools: Iterable[ToolLike],
    *,
    name: str = "miniagents",
    instructions: str | None = None,
    settings: WebSettings | None = None,
) -> None:
    """Serve ``tools`` over this process's stdin and stdout until the client disconnects.

    For a program that a client starts as its MCP server, e.g.
    ``asyncio.run(serve_stdio([researcher, get_weather]))``; see :func:`mcp_server` (and
    its ``settings``).

    Raises:
        MissingExtraError: without the MCP SDK (``pip install "miniagents[mcp]"``; an
            ``ImportError``).
    """
    require_mcp()
    from mcp.server.stdio import stdio_server

    server = mcp_server(tools, name=name, instructions=instructions, settings=settings)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def mcp_http_app(
    tools: Iterable[ToolLike],
    *,
    authentication: Authentication,
    settings: WebSettings | None = None,
    name: str = "miniagents",
    instructions: str | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    max_sessions_per_principal: int = DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
    session_idle_seconds: float = DEFAULT_SESSION_IDLE_SECONDS,
) -> Starlette:
    """An ASGI app that serves ``tools`` as an MCP server over streamable HTTP, at ``/mcp``.

    It has the web apps' door (``miniagents.ext.web``): a request without the credentials
    of ``authentication`` is a 401, and one for a host (or from a browser's origin) that
    ``settings`` does not allow is refused, so that only those it knows call the tools.
    Each MCP session is its opener's alone: another caller, even one it knows, who sends
    its id is answered 404 (as for a session that does not exist). The sessions are
    bounded: at most ``max_sessions`` open at once (one more is a 503 until one ends), at
    most ``max_sessions_per_principal`` of them one caller's (one more of theirs is a 429
    until one of theirs ends, its ``Retry-After`` the seconds until the one of theirs idle
    longest would end; every caller of an app that knows nobody is one), each
    ended once it has had no request under way for ``session_idle_seconds`` (its id then
    answers 404: the client opens a new one). Each caller runs at most
    ``max_live_runs_per_principal`` tool calls at once (see :func:`mcp_server`).
    Serve it with any ASGI server, e.g. ``uvicorn.run(app, host="127.0.0.1")``.

    Args:
        tools: Agents, typed functions and ``Tool`` objects, as for ``ToolSet``.
        authentication: Who may call the tools, as the web apps take it: e.g.
            ``BearerTokenAuth({token: "ada"})``, or ``NoAuthentication()`` for this
            machine alone (its names only, the default ``allowed_hosts``).
        settings: The hosts and origins it serves (``allowed_hosts``, ``allowed_origins``),
            its body deadline and the largest body it takes (``body_seconds``,
            ``max_body_bytes``: a larger one is a 413), the tool calls under way at once
            (``max_live_runs``, ``max_live_runs_per_principal``: one more is refused with a
            JSON-RPC error) and whether a tool's exception is told as it is written
            (``error_texts``); default ``WebSettings()``: this machine's names only, 100
            calls at once, 10 of one principal, exceptions told as a sentence and a
            reference.
        name: The server's name, as clients see it.
        instructions: What clients should know about the server, if anything.
        max_sessions: The most MCP sessions open at once.
        max_sessions_per_principal: The most MCP sessions one principal keeps open at once.
        session_idle_seconds: Seconds a session lasts with no request under way.

    Raises:
        MissingExtraError: without the MCP SDK (``pip install "miniagents[mcp]"``; an
            ``ImportError``).
        WebConfigurationError: if ``authentication`` is ``None``, or ``max_sessions`` or
            ``max_sessions_per_principal`` is not a whole number of at least 1, or
            ``session_idle_seconds`` not a positive, finite number of seconds (an
            ``ArgumentError``).
    """
    require_mcp()
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.middleware import Middleware

    from miniagents.ext.errors import WebConfigurationError
    from miniagents.ext.web.lowlevel import Door
    from miniagents.ext.web.settings import WebSettings

    fix = "Pass such a value, or leave it out for its default."
    owner, error = "mcp_http_app", WebConfigurationError
    check_count(max_sessions, "max_sessions", owner=owner, fix=fix, error=error)
    most_each = check_count(
        max_sessions_per_principal, "max_sessions_per_principal", owner=owner, fix=fix, error=error
    )
    idle = check_seconds(
        session_idle_seconds, "session_idle_seconds", owner=owner, fix=fix, error=error
    )
    settings = settings or WebSettings()
    door = Door(authentication, settings, "mcp_http_app")
    server = mcp_server(tools, name=name, instructions=instructions, settings=settings)
    app = server.streamable_http_app(
        max_request_body_size=settings.max_body_bytes,  # (a larger body: a 413)
        max_sessions=max_sessions,  # (a session more: a 503)
        session_idle_timeout=session_idle_seconds,  # (mcp 2.2 on: both named so, never None)
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )  # (the door checks the hosts and origins, as it does for the web apps)
    sessions = _Sessions(most_each, idle)
    known_only = Middleware(_known_only, door=door, sessions=sessions)
    for middleware in reversed([*door.middleware(), known_only]):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    return app


def _known_only(app: ASGIApp, door: Door, sessions: _Sessions) -> ASGIApp:
    """``app``, answering a request of nobody ``door`` knows with its 401 (after its middleware).

    Only HTTP requests that ``door`` lets in and the server's ``lifespan`` reach ``app``: a
    WebSocket (MCP has no WebSocket transport, and a route added to the app would be reached
    unchecked) is closed before it opens (the server answers 403), and a scope of another
    type reaches nothing.

    A request reaches ``app`` as from the principal ``door`` names (the SDK's
    ``AuthenticatedUser``, the only user its session manager compares), so that an MCP
    session is its opener's alone: a request of anybody else in it is answered 404, as for a
    session that does not exist, and cannot call its tools, read what it sends or end it.
    The SDK forgets a session's owner with the session. The principal's name is the
    request's caller too (its scope's ``_CALLER``), whose tool calls under way are counted,
    and whose open sessions ``sessions`` counts (and bounds).
    """
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken
    from starlette.requests import Request

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            try:
                await app(scope, receive, send)
            finally:  # (the server stopped: the SDK ended every session)
                sessions.clear()
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # (policy violation)
        elif kind == "http":
            owner = door.owner(Request(scope))
            if owner is None:  # (the app knows nobody: this machine's clients only)
                await sessions.aserve(app, scope, receive, send, None)
            elif isinstance(owner, str):  # (no token of the SDK's: the principal's name)
                principal = AccessToken(token="", client_id=owner, scopes=[])
                user = AuthenticatedUser(principal)
                known = {**scope, "user": user, _CALLER: owner}
                await sessions.aserve(app, known, receive, send, owner)
            else:
                await owner(scope, receive, send)

    return guarded


def _caller_of(request: object) -> str | None:
    """Who sent ``request`` (a tool call's HTTP request), as the door named them.

    ``None`` for the one caller of stdio and of an in-process session, and over HTTP for a
    request the door named nobody for (an app that knows nobody: this machine's callers).
    """
    scope = getattr(request, "scope", None)
    caller = scope.get(_CALLER) if isinstance(scope, Mapping) else None
    return caller if isinstance(caller, str) else None


class _Session:
    """One open MCP session of :func:`mcp_http_app`: its id, its opener, its requests under way.

    ``path`` is the one its opening was sent to, the SDK's endpoint (a 404 there, for the
    session's id, is the SDK's: the session is over; elsewhere, the app's router's).
    """

    __slots__ = ("caller", "id", "path", "under_way")

    def __init__(self, session_id: str, caller: str | None, path: str) -> None:
        self.id = session_id
        self.caller = caller
        self.path = path
        self.under_way = 1  # (the request that opened it, until it ends)


class _Sessions:
    """The open MCP sessions of :func:`mcp_http_app`, by caller, at most ``most_each`` each.

    A session counts for its opener from the answer that names it (its ``mcp-session-id``)
    to its end: an HTTP ``DELETE`` of it answered (the client closed it), ``idle_seconds``
    with no request of its opener under way (the SDK ends it so; counted here from the end
    of the request, a moment after the SDK's, so it never stops counting before the SDK
    ends it; an open GET stream is a request under way, for the SDK as here), the SDK's 404
    to its opener for its id at its endpoint, in the era of handshakes (the SDK ended it
    otherwise: it failed), or
    the server's stop. A request that may open a session counts for its caller while it is
    under way, so that concurrent openings cannot pass the bound. Memory is bounded: a
    session is kept only while the SDK keeps it (those past their idle time are forgotten
    before each request), the SDK keeps at most ``max_sessions``, and a caller is forgotten
    at 0.

    The SDK tells nobody when a session of its fails (its per-connection teardown,
    ``Connection.exit_stack``, is not reachable from a request's context in mcp 2.3), so a
    failed session counts until its client next uses it (the 404 that makes a client open
    another), or until its idle time is over.
    """

    def __init__(self, most_each: int, idle_seconds: float) -> None:
        self._most_each = most_each
        self._idle_seconds = idle_seconds
        self._open: dict[str, _Session] = {}
        self._idle: OrderedDict[str, float] = OrderedDict()
        """The sessions with no request under way, by id, with the time each ends (in order)."""
        self._by_caller = CallerCounts()
        """Each caller's open sessions and openings under way."""

    async def aserve(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, caller: str | None
    ) -> None:
        """Serve an HTTP request of ``caller`` with ``app``, counting the session it opens or uses.

        One that may open a session while ``caller`` has ``most_each`` open (or opening) is
        answered 429, with a JSON-RPC error that names ``max_sessions_per_principal``.
        """
        from starlette.datastructures import Headers

        now = asyncio.get_running_loop().time()
        self._forget_idle(now)
        headers = Headers(scope=scope)
        session_id = headers.get(_SESSION_ID)
        if session_id is None:
            if not _handshake_era(headers):
                await app(scope, receive, send)
            elif self._by_caller[caller] >= self._most_each:
                await self._refusal(self._retry_after(caller, now))(scope, receive, send)
            else:
                await self._aopening(app, scope, receive, send, caller)
            return
        session = self._open.get(session_id)
        if session is None or session.caller != caller:  # (not its opener: the SDK's 404)
            await app(scope, receive, send)
            return
        session.under_way += 1
        self._idle.pop(session.id, None)
        ended, handshake = False, _handshake_era(headers)

        async def watched(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.start":
                status = message["status"]
                if scope["method"] == "DELETE" and status < 400:
                    ended = True  # (the client ended the session)
                elif status == 404 and scope["path"] == session.path and handshake:
                    ended = True  # (the SDK had ended it: it failed, or went idle)
            await send(message)

        try:
            await app(scope, receive, watched)
        finally:
            if ended:
                self._end(session)
            else:
                self._left(session)

    def clear(self) -> None:
        """Forget every session (the server stopped, and the SDK's sessions with it)."""
        self._open.clear()
        self._idle.clear()
        self._by_caller.clear()

    async def _aopening(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, caller: str | None
    ) -> None:
        """Serve a request that may open a session, counted for ``caller`` while under way."""
        from starlette.datastructures import Headers

        self._by_caller.add(caller)
        opened: _Session | None = None

        async def watched(message: Message) -> None:
            nonlocal opened
            if message["type"] == "http.response.start" and message["status"] < 400:
                session_id = Headers(raw=message["headers"]).get(_SESSION_ID)
                if session_id is not None and session_id not in self._open:
                    opened = _Session(session_id, caller, scope["path"])
                    self._open[session_id] = opened
            await send(message)

        try:
            await app(scope, receive, watched)
        finally:
            if opened is None:  # (no session opened: the opening counts no more)
                self._by_caller.remove(caller)
            else:
                self._left(opened)

    def _left(self, session: _Session) -> None:
        """A request of ``session`` has ended: with none left, its idle time starts."""
        if self._open.get(session.id) is not session:  # (it ended meanwhile)
            return
        session.under_way -= 1
        if not session.under_way:
            self._idle[session.id] = asyncio.get_running_loop().time() + self._idle_seconds

    def _end(self, session: _Session) -> None:
        """``session`` has ended: it counts no more."""
        if self._open.get(session.id) is session:
            del self._open[session.id]
            self._idle.pop(session.id, None)
            self._by_caller.remove(session.caller)

    def _forget_idle(self, now: float) -> None:
        """End the sessions whose idle time is over by ``now`` (the SDK has ended them)."""
        while self._idle:
            session_id, ends = next(iter(self._idle.items()))
            if ends > now:
                return
            self._end(self._open[session_id])

    def _retry_after(self, caller: str | None, now: float) -> int:
        """Whole seconds until one of ``caller``'s sessions would end by ``now``'s count.

        The one of theirs idle longest ends once its idle time is over; with none idle (each
        has a request under way, or is opening), one ends ``idle_seconds`` after its last
        request at the soonest (unless its client closes it first).
        """
        ends = (end for key, end in self._idle.items() if self._open[key].caller == caller)
        first = next(ends, None)  # (in the order they went idle: the first ends first)
        wait = self._idle_seconds if first is None else first - now
        return max(1, math.ceil(wait))

    def _refusal(self, retry_after: int) -> ASGIApp:
        """The answer to one opening too many: a 429 whose JSON-RPC error names the bound.

        Its ``Retry-After`` is ``retry_after`` (seconds).
        """
        from starlette.responses import JSONResponse

        most = self._most_each
        message = (
            f"You have {most} MCP session{'' if most == 1 else 's'} open on this server, the "
            "most one caller may (max_sessions_per_principal); close one of them (a client "
            "closes its session as it ends) or let one go idle until the server ends it, then "
            "open another."
        )
        error = {"code": _TOO_MANY_SESSIONS, "message": message}
        return JSONResponse(
            {"jsonrpc": "2.0", "id": None, "error": error},
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )


def _handshake_era(headers: Mapping[str, str]) -> bool:
    """Whether the SDK serves a request with ``headers`` as one of the era of handshakes.

    The SDK serves a request that names a protocol version of the era without handshakes
    (2026 on) without a session (it may answer one 404 for a method it lacks); any other
    may open one (without a session id), or is served in the session its id names (where a
    404 says the session is over).
    """
    from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS

    version = headers.get("mcp-protocol-version")
    return version is None or version in HANDSHAKE_PROTOCOL_VERSIONS


class _Calls:
    """The tool calls under way, by caller, within the server's bounds (``None``: none)."""

    def __init__(self, most: int | None, most_each: int | None) -> None:
        self._most = most
        self._most_each = most_each
        self._total = 0
        self._by_caller = CallerCounts()

    @contextmanager
    def held(self, caller: str | None) -> Iterator[None]:
        """Count a call of ``caller`` while the block runs.

        Raises:
            MCPError: the SDK's JSON-RPC error (code ``-32029``) that its caller is
                answered with, if the server or ``caller`` has as many calls under way as
                it may.
        """
        mine = self._by_caller[caller]
        refusal = None
        if self._most is not None and self._total >= self._most:
            refusal = (
                f"The MCP server has {_calls(self._total)} under way, the most it runs at "
                "once (max_live_runs); call again once one has ended."
            )
        elif self._most_each is not None and mine >= self._most_each:
            refusal = (
                f"You have {_calls(mine)} under way on this MCP server, the most one caller "
                "may (max_live_runs_per_principal); call again once one of them has ended."
            )
        if refusal is not None:
            from mcp import MCPError

            raise MCPError(_TOO_MANY_CALLS, refusal)
        self._total += 1
        self._by_caller.add(caller)
        try:
            yield
        finally:
            self._total -= 1
            self._by_caller.remove(caller)


def _calls(count: int) -> str:
    """``count`` tool calls, in words ("1 tool call", "2 tool calls")."""
    return f"{count} tool call{'' if count == 1 else 's'}"
