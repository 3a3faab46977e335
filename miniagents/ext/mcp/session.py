"""``MCPSession``: a connection to an MCP server, whose tools become MiniAgents tools."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import json
import logging
import re
import shlex
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from miniagents.arguments import a_class, check_count, check_seconds, refused_argument
from miniagents.ext.content_coding import encoded_with
from miniagents.ext.mcp._sdk import require_mcp
from miniagents.ext.mcp.errors import MCPSessionError
from miniagents.ext.mcp.tool import DEFAULT_MAX_RESULT_CHARS, MCPTool
from miniagents.ext.tools.errors import ToolCallError
from miniagents.root_error import ArgumentError

if TYPE_CHECKING:
    import httpx2
    from mcp import Client, MCPError, StdioServerParameters
    from mcp.client import Transport
    from mcp.server import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_TOOLS",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "MCPSession",
]

_logger = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 300.0
"""Seconds a session waits for each answer of its server (``read_timeout``): the MCP SDK's
own read timeout of an HTTP stream, 5 minutes, long enough for a slow tool."""

DEFAULT_OPEN_TIMEOUT = 60.0
"""Seconds ``async with`` waits for its server to start, answer the handshake and list its
tools (``open_timeout``): one minute."""

DEFAULT_MAX_MESSAGE_BYTES = 16_000_000
"""The most bytes one message of a server reached by its URL may take (``max_message_bytes``):
an answer, or one event of a stream; 16 MB, above a tool's result of ``max_result_chars``."""

DEFAULT_MAX_TOOLS = 10_000
"""The most tools a session takes of its server's listing (``max_tools``): far above what a
model is given at once (a provider takes a few hundred), far below what fills the memory."""

_READ_MARGIN = 30.0
"""Seconds the HTTP client of a URL waits past ``read_timeout`` before it gives up on a
stream that says nothing (the session's own timeout ends a call before)."""

_CLOCK_SLACK = 1e-3
"""Seconds by which a call the SDK timed out may seem shorter than ``read_timeout``: its timer
fires at a time it added the timeout to, and subtracting the start again rounds (600.1 + 600
- 600.1 < 600 in floating point), as the loop may also run a timer up to its clock's
resolution early."""

_CLOSE_TIMEOUT = 10.0
"""Seconds a session waits for its connection to close (a server reached by its URL told to
end the session, a server's process stopped) before it cuts it: a server that hangs cannot
hold the end of the block (the HTTP client's own wait is ``read_timeout`` and more, or none)."""

_MAX_PAGES = 1000
"""The most pages of tools a session reads from a server (a listing that never ends fails)."""

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header's name: a token (RFC 9110), ASCII letters, digits and a few signs."""

_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""An HTTP header's value: printable ASCII, spaces and tabs (no line break, no control)."""

_CREDENTIALS = (
    "give its credentials as headers, e.g. MCPSession.http(url, headers={'Authorization': "
    "'Bearer <token>'})."
)

_STATUSES: dict[int, tuple[str, str]] = {
    401: ("it asks for credentials", _CREDENTIALS),
    403: ("the credentials may not use it", _CREDENTIALS),
    404: (
        "not found: no MCP endpoint at this URL, or the session ended",
        "check the URL's path (a server's streamable HTTP endpoint, often /mcp), or, if it is "
        "right, open a new session (the server ended this one, or restarted).",
    ),
    413: (
        "the request is too large",
        "send less (a tool's arguments), or have the server take larger requests.",
    ),
    429: (
        "too many requests",
        "retry later: the server limits how often it is called (or ask for a higher limit).",
    ),
}
"""What the HTTP statuses a server may answer with say, and the fix each asks for (a 5xx and
another 4xx: :func:`_status_fix`)."""

_SDK_STATUS_ERRORS = frozenset(
    {"Server returned an error response", "Not Found", "Session terminated"}
)
"""The SDK's words for a request answered with an HTTP error status and no JSON-RPC error (a
404: "Not Found", or "Session terminated" once the server named a session); a server that
says what was wrong in a JSON-RPC error is told as it said it."""

_CALL_KEY = "io.github.miniagents/call"
"""The key of a call's number in the ``_meta`` of its request to a URL: the number its HTTP
error status is told to (the SDK reports a call answered with one only as "Server returned
an error response", and a hook of the HTTP client sees the request, not whose call it is)."""


class MCPSession:
    """The tools of an MCP server, for as long as the ``async with`` block lasts.

    ``async with`` connects (starting the server's process for stdio), lists the server's
    tools (``tools``; the session also iterates over them) and closes the connection at the
    end of the block (cut after 10 seconds if the server does not take the close). Use the
    tools only inside the block: a call after it, or still running as it ends, gives an
    error result that says so. Open the session around the ``MiniAgents`` context, so the
    context, which waits for every tool call, ends first::

        async with MCPSession.stdio("python", ["server.py"]) as server, MiniAgents():
            ...  # tools=[*server] (or server.tools)

    The connection lives in a task of the session's own: an exception of the block comes
    out of it as it is, and a server that dies (or cannot be reached any more) gives the
    calls error results while the block goes on. A call the server answers with a JSON-RPC
    error (it refused the call, e.g. for the calls its caller has under way) is an error
    result too, in the server's words.

    The same session can serve any number of agents and concurrent calls. It needs the
    official MCP SDK, version 2 (``pip install "miniagents[mcp]"``).

    Args:
        server: What to connect to, as the SDK's ``mcp.Client`` takes it: the URL of a
            streamable HTTP server, a ``StdioServerParameters``, a transport, or an
            in-process server (an ``MCPServer``, or a low-level ``Server`` such as
            ``mcp_server`` makes), handy in tests.
        prefix: Put before each tool's name (e.g. ``"github_"``), to tell apart the tools
            of several servers.
        read_timeout: Seconds to wait for each answer of the server, a tool's result
            included (default: 300, the MCP SDK's own read timeout of an HTTP stream), so
            that a server that hangs gives the call an error result, not a wait without
            end; ``None`` waits as long as it takes. Over HTTP it bounds the HTTP client's
            reads too (a little longer, so the session's own timeout comes first).
        open_timeout: Seconds ``async with`` waits for the server to start, answer the
            handshake and list its tools (default: 60; ``None``: no limit), so that a
            server that never answers is an error, not a hang.
        max_result_chars: The most characters of a tool's result that go on to the model
            (default: 1,000,000): a longer result is cut there, with a note to the model
            that says so, so that a huge result cannot fill the model's context.
        max_message_bytes: The most bytes one message of a server reached by its URL may
            take (default: 16,000,000): an answer, or one event of its stream, counted as
            it is read, so that a server that sends more (a result of hundreds of MB, a
            listing of a hundred thousand tools) fails that call (or the opening) with an
            error that names this limit, rather than filling the memory. The session asks
            for answers uncompressed (``Accept-Encoding: identity``) and refuses, unread,
            one sent compressed all the same (it would be uncompressed past this bound).
        max_tools: The most tools the server may list, on all its pages (default:
            10,000); a listing of more fails the opening with an error that names this
            limit, rather than filling the memory page after page.
    """

    def __init__(
        self,
        server: str | StdioServerParameters | Transport | MCPServer[Any] | Server[Any],
        *,
        prefix: str = "",
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_tools: int = DEFAULT_MAX_TOOLS,
    ) -> None:
        """Describe the connection; nothing happens before ``async with``.

        Raises:
            ArgumentError: for a ``prefix`` that is not a ``str``, a ``read_timeout`` or
                ``open_timeout`` that is not a positive, finite number of seconds (nor
                ``None``), or a ``max_result_chars``, ``max_message_bytes`` or
                ``max_tools`` that is not a whole number above 0.
        """
        require_mcp()
        if not isinstance(prefix, str):
            raise ArgumentError(
                f"MCPSession needs prefix to be a str (put before each tool's name); got "
                f"{prefix!r}. E.g. MCPSession(..., prefix='web_')."
            )
        read_timeout, open_timeout = (
            None
            if seconds is None
            else check_seconds(
                seconds,
                name,
                owner="MCPSession",
                fix=f"E.g. MCPSession(..., {name}=30), or None to wait as long as it takes.",
            )
            for name, seconds in (("read_timeout", read_timeout), ("open_timeout", open_timeout))
        )
        self._max_result_chars = check_count(
            max_result_chars,
            "max_result_chars",
            owner="MCPSession",
            fix="E.g. MCPSession(..., max_result_chars=100_000).",
        )
        self._max_message_bytes = check_count(
            max_message_bytes,
            "max_message_bytes",
            owner="MCPSession",
            fix="E.g. MCPSession(..., max_message_bytes=100_000_000).",
        )
        self._max_tools = check_count(
            max_tools, "max_tools", owner="MCPSession", fix="E.g. MCPSession(..., max_tools=500)."
        )
        self._server = server
        self._prefix = prefix
        self._read_timeout = read_timeout
        self._open_timeout = open_timeout
        self._client: Client | None = None
        self._running: asyncio.Task[None] | None = None
        """The task that holds the connection, from ``async with`` to the block's end."""
        self._closing: asyncio.Event | None = None
        self._broken: Exception | None = None
        """Why the connection ended while the session was open, if it did."""
        self._tools: tuple[MCPTool, ...] | None = None
        """The server's tools while the session is open."""
        self._headers: dict[str, str] = {}
        """The HTTP headers of every request to a URL (``http(headers=...)``)."""
        self._error_status: int | None = None
        """The HTTP error status of the last request to a URL (400 and above)."""
        self._call_statuses: dict[str, int] = {}
        """The HTTP error status of each call to a URL answered with one, by its number."""
        self._call_numbers = itertools.count(1)
        self._cut_answers: dict[str | None, str] = {}
        """The calls (by number; ``None``: a request of no call) whose answer was cut: to
        each, ``""`` if it, or an event of its stream, went over ``max_message_bytes``, else
        the content coding of an answer sent compressed (refused unread)."""

    @classmethod
    def stdio(
        cls,
        command: str,
        args: list[str] | tuple[str, ...] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        prefix: str = "",
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        max_tools: int = DEFAULT_MAX_TOOLS,
    ) -> Self:
        """A server run as a child process, talked to over its stdin and stdout.

        Args:
            command: The program to run, e.g. ``"python"`` or ``"npx"``.
            args: Its arguments, one item each, e.g. ``["server.py", "--verbose"]``.
            env: Environment variables added to the few the SDK passes on (``PATH``,
                ``HOME``, ...): the child does not see the rest of this environment.
            cwd: The working directory of the child.
            prefix: See the class.
            read_timeout: See the class.
            open_timeout: See the class.
            max_result_chars: See the class.
            max_tools: See the class.

        Raises:
            MCPSessionError: if ``args`` is a ``str`` (it would be split into characters).
        """
        require_mcp()
        from mcp import StdioServerParameters

        given: object = args  # a str passes without mypy (and a Sequence[str] before)
        if isinstance(given, str):
            raise MCPSessionError(  # (not quoted: an argument may be a token)
                f"The arguments of the MCP server's command {_program(command)!r} are one "
                f"str ({len(shlex.split(given))} words once split); give a list of them, one "
                f"item each, e.g. MCPSession.stdio({command!r}, shlex.split(args))."
            )

        parameters = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env else None, cwd=cwd
        )
        return cls(
            parameters,
            prefix=prefix,
            read_timeout=read_timeout,
            open_timeout=open_timeout,
            max_result_chars=max_result_chars,
            max_tools=max_tools,
        )

    @classmethod
    def http(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        prefix: str = "",
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_tools: int = DEFAULT_MAX_TOOLS,
    ) -> Self:
        """A server reached over streamable HTTP at ``url`` (e.g. ``http://127.0.0.1:8000/mcp``).

        Args:
            url: The server's endpoint.
            headers: HTTP headers sent with every request, e.g. the credentials of a
                server that asks for them (as ``mcp_http_app`` does):
                ``{"Authorization": f"Bearer {token}"}``. Errors and tool results never
                show them. A server that refuses them (HTTP 401 or 403), as the session
                opens or at a later call (a token that expired), gives an error that says
                so; so does any other HTTP error status it answers with (413, 429, a 5xx,
                ...): the error names it and what to do.
            prefix: See the class.
            read_timeout: See the class.
            open_timeout: See the class.
            max_result_chars: See the class.
            max_message_bytes: See the class.
            max_tools: See the class.

        Raises:
            ArgumentError: if ``headers`` is not a mapping of ``str`` to ``str``, or a name
                is not an HTTP token (letters, digits, ``-``, ...), or a value holds a line
                break, another control character or a character that is not ASCII.
        """
        session = cls(
            url,
            prefix=prefix,
            read_timeout=read_timeout,
            open_timeout=open_timeout,
            max_result_chars=max_result_chars,
            max_message_bytes=max_message_bytes,
            max_tools=max_tools,
        )
        session._headers = _checked_headers(headers)
        return session

    async def __aenter__(self) -> Self:
        """Connect (in a task of the session's own), and list the server's tools.

        Raises:
            MCPSessionError: if the server cannot be reached or started, or fails to list
                its tools (the SDK's error is the cause), or lists them on more than 1000
                pages (a listing that never ends), or more than ``max_tools`` of them, or
                an answer over ``max_message_bytes``, or has not listed them within
                ``open_timeout`` seconds.
        """
        if self._running is not None:
            raise MCPSessionError("This MCP session is open already; make a new one.")
        opened: asyncio.Future[tuple[MCPTool, ...]] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._broken = None
        running = self._running = asyncio.create_task(self._connect(opened, self._closing))
        try:
            self._tools = await asyncio.wait_for(asyncio.shield(opened), self._open_timeout)
        except TimeoutError as error:
            self._running = None
            self._closing.set()
            running.cancel()  # (still connecting: stop at once)
            await _ended(running)
            raise MCPSessionError(
                f"The MCP server {self._describe()} did not start, answer and list its tools "
                f"within {self._open_timeout:g} seconds (open_timeout). Check that it runs "
                "(or that its command works when run by hand), or give it longer: "
                "MCPSession(..., open_timeout=120)."
            ) from error
        except BaseException:
            self._running = None
            self._closing.set()  # the caller gave up as the connection opened: close it
            if not opened.done():  # given up on (e.g. a timeout): stop connecting at once
                running.cancel()
            await _ended(running)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the connection (and stop the server's process, for stdio)."""
        running, self._running, self._tools = self._running, None, None
        if running is not None and self._closing is not None:
            self._closing.set()
            await _ended(running)

    async def _connect(
        self, opened: asyncio.Future[tuple[MCPTool, ...]], closing: asyncio.Event
    ) -> None:
        """Hold the connection until ``closing`` is set (the session's own task).

        The SDK's task groups live here: an error of the transport ends this task (and
        the calls waiting for an answer get error results), not the caller's.
        """
        from mcp import Client, StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        server = self._server
        http: httpx2.AsyncClient | None = None
        if isinstance(server, str):  # our own client: its headers, and the statuses it hears
            http = self._http_client()
            bounded: dict[str, Any] = {}
            if "max_sse_event_size" in inspect.signature(streamable_http_client).parameters:
                bounded["max_sse_event_size"] = self._max_message_bytes  # (mcp 2.3 and later)
            server = streamable_http_client(server, http_client=http, **bounded)
        elif isinstance(server, StdioServerParameters):  # a transport: what every mcp 2 takes
            server = stdio_client(server)
        self._error_status = None
        self._cut_answers.clear()
        try:
            async with (
                http or contextlib.nullcontext(),
                Client(server, read_timeout_seconds=self._read_timeout) as client,
            ):
                try:
                    tools = await self._list_tools(client)
                except Exception as error:
                    what = f"The MCP server {self._describe()} failed to list its tools"
                    opened.set_exception(
                        error
                        if isinstance(error, MCPSessionError)
                        else self._cut_opening(error) or _session_error(what, error)
                    )
                    return
                self._client = client
                opened.set_result(tools)
                await closing.wait()
        except Exception as error:
            if not opened.done():
                opened.set_exception(
                    self._cut_opening(error)
                    or _session_error(
                        f"Could not connect to the MCP server {self._describe()}",
                        error,
                        self._connection_fix(),
                    )
                )
            elif not closing.is_set():
                self._broken = error
            else:  # (the block is ending: nobody else would hear of it)
                _logger.warning(
                    "The connection to the MCP server %s failed as its session closed; it is "
                    "closed all the same.",
                    self._describe(),
                    exc_info=error,
                )
        finally:
            self._client = None

    def _http_client(self) -> httpx2.AsyncClient:
        """The HTTP client of a URL: the session's headers, the SDK's timeouts but the read's.

        Its read timeout (a stream that says nothing) is ``read_timeout`` and a little more,
        so that the session's own timeout, which names ``read_timeout``, ends a hung call
        first; ``None``: none.

        It notes the HTTP error status of a request (``_error_status``, and by the call it
        belongs to, ``_call_statuses``), which the SDK reports only as "Server returned an
        error response". Only of the SDK's POSTs, whose answers it waits for: its other
        requests (the stream it listens on, the session's end) may be refused unharmed.

        It asks for answers uncompressed (``Accept-Encoding: identity``) and refuses,
        unread, one sent compressed all the same: ``max_message_bytes`` counts the bytes
        received, and a few compressed kilobytes may be gigabytes once uncompressed.
        """
        import httpx2

        async def heard(response: httpx2.Response) -> None:
            if response.status_code >= 400 and response.request.method == "POST":
                self._error_status = response.status_code
                number = _call_number(response.request)
                if number is not None:
                    self._call_statuses[number] = response.status_code

        async def bounded(response: httpx2.Response) -> None:
            body = response.stream
            if isinstance(body, httpx2.AsyncByteStream):  # (always, of an async client)
                events = response.headers.get("content-type", "").startswith("text/event-stream")
                coding = encoded_with(response.headers.get_list("content-encoding"))
                if coding and response.status_code >= 400:  # (its status tells the failure)
                    coding = _QUIETLY
                bounded_body = _bounded_body_class(httpx2.AsyncByteStream)
                request = response.request
                response.stream = bounded_body(
                    body, self._max_message_bytes, events, coding, request, self
                )

        read = None if self._read_timeout is None else self._read_timeout + _READ_MARGIN
        headers = httpx2.Headers(self._headers)
        headers["Accept-Encoding"] = "identity"  # (a compressed answer is refused: see above)
        return httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(30.0, read=read),  # (the SDK's default client's, but read)
            event_hooks={"response": [heard, bounded]},
        )

    def _note_cut(self, request: httpx2.Request, coding: str) -> None:
        """(:class:`_BoundedBody`'s) The answer to ``request`` was cut (see ``_cut_answers``).

        Over the bound (``coding`` ``""``), or refused, sent compressed with ``coding``.
        """
        self._cut_answers[_call_number(request)] = coding

    def _cut_text(self, what: str, coding: str) -> str:
        """Why ``what`` was not read: over ``max_message_bytes`` (``""``), or sent compressed."""
        if coding:
            return (
                f"The MCP server {self._describe()} sent {what} compressed (Content-Encoding: "
                f"{coding}) though this MCP session asks for answers uncompressed "
                "(Accept-Encoding: identity), so it was not read: max_message_bytes could not "
                "bound it before it was uncompressed. Configure the server (or the proxy in "
                "front of it) to send this client's answers uncompressed."
            )
        return (
            f"The MCP server {self._describe()} sent {what} over {self._max_message_bytes:,} "
            "bytes in one message, the most this MCP session reads (max_message_bytes), so it "
            "was not read. Ask for less, or give the session a higher max_message_bytes if "
            "the server's messages are this large by design: MCPSession.http(url, "
            "max_message_bytes=...)."
        )

    def _cut_opening(self, error: BaseException) -> MCPSessionError | None:
        """The error of an opening whose handshake or listing was cut (see ``_cut``)."""
        if not self._cut_answers:
            return None
        coding = next(iter(self._cut_answers.values()))
        failure = MCPSessionError(self._cut_text("an answer to its handshake or listing", coding))
        failure.__cause__ = error
        return failure

    def _connection_fix(self) -> str:
        """What to do about a connection that failed: what its HTTP error status asks for.

        The last status heard, if any (:func:`_status_fix`); else, to check the server runs.
        """
        status = self._error_status
        if status is None:
            return "Check that it runs (or that its command works when run by hand)."
        return _status_fix(status, headers_given=bool(self._headers))

    @property
    def tools(self) -> tuple[MCPTool, ...]:
        """The server's tools, listed when the session was opened.

        Raises:
            MCPSessionError: if the session is not open (outside its ``async with`` block).
        """
        if self._tools is None:
            raise MCPSessionError(
                f"The MCP session {self._describe()} is not open, so it has no tools to give. "
                "Use them inside its block: `async with MCPSession(...) as session:`, then "
                "tools=[*session]."
            )
        return self._tools

    def __iter__(self) -> Iterator[MCPTool]:
        """The server's tools (see ``tools``)."""
        return iter(self.tools)

    async def _list_tools(self, client: Client) -> tuple[MCPTool, ...]:
        tools: list[MCPTool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(
                MCPTool(
                    name=self._prefix + listed.name,
                    server_name=listed.name,
                    description=listed.description or "",
                    parameters=listed.input_schema,
                    call=self._call,
                    max_result_chars=self._max_result_chars,
                )
                for listed in page.tools[: self._max_tools + 1 - len(tools)]
            )
            if len(tools) > self._max_tools:
                raise MCPSessionError(
                    f"The MCP server {self._describe()} listed more than {self._max_tools:,} "
                    "tools, the most this MCP session takes (max_tools). Give the session a "
                    "higher max_tools if the server has that many by design: MCPSession(..., "
                    "max_tools=...); a model is given a few hundred at most."
                )
            cursor = page.next_cursor
            if cursor is None:
                return self._distinct(tools)
        raise MCPSessionError(
            f"The MCP server {self._describe()} listed its tools on more than {_MAX_PAGES} "
            "pages, the most a session reads, so some of them would be missing. Check the "
            "server's pagination: its last page must have no nextCursor."
        )

    def _distinct(self, tools: list[MCPTool]) -> tuple[MCPTool, ...]:
        """``tools``, whose names (made valid for the providers) must differ.

        Raises:
            MCPSessionError: naming the two tools of the server whose names became one.
        """
        by_name: dict[str, MCPTool] = {}
        for tool in tools:
            other = by_name.setdefault(tool.name, tool)
            if other is not tool:
                raise MCPSessionError(
                    f"The MCP server {self._describe()} has two tools, {other.server_name!r} "
                    f"and {tool.server_name!r}, whose names both become {tool.name!r} (a "
                    "tool's name for a model has only letters, digits, '_' and '-'), so a "
                    "model could not tell them apart, whatever the prefix. Rename one of "
                    "them on the server."
                )
        return tuple(tools)

    async def _call(self, name: str, arguments: dict[str, object]) -> CallToolResult:
        client = self._client
        if client is None and self._running is not None and self._broken is not None:
            raise ToolCallError(self._gone(name, self._broken)) from self._broken
        if client is None:
            raise MCPSessionError(
                f"The MCP session of the tool {name} is closed. Call MCP tools inside the "
                "`async with MCPSession(...)` block that listed them."
            )
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        closing = self._closing  # (this opening's: set once its block ends)
        number = str(next(self._call_numbers))
        meta = {_CALL_KEY: number} if isinstance(self._server, str) else None
        clock = asyncio.get_running_loop()
        started = clock.time()
        try:
            # (RequestParamsMeta takes any key, extra_items, which mypy does not read yet)
            return await client.call_tool(name, arguments, meta=meta)  # type: ignore[arg-type]
        except MCPError as error:  # the SDK's words name no fix: say what to do
            if number in self._cut_answers:
                raise ToolCallError(
                    self._cut_text(f"the result of its tool {name}", self._cut_answers[number])
                ) from error
            if error.code == REQUEST_TIMEOUT and self._timed_out(error, clock.time() - started):
                raise ToolCallError(
                    f"The MCP server {self._describe()} did not answer the call of its tool "
                    f"{name} within {self._read_timeout:g} seconds (read_timeout). Call it "
                    "again, or give the server longer: MCPSession(..., read_timeout=600), or "
                    "read_timeout=None to wait as long as it takes."
                ) from error
            if error.code == CONNECTION_CLOSED and closing is not None and closing.is_set():
                raise ToolCallError(  # (the session closed it, not the server)
                    f"The MCP session of the tool {name} closed before its server answered "
                    "the call: its `async with` block ended while the call ran. Open the "
                    "session around the MiniAgents context, which waits for every tool call: "
                    "`async with MCPSession(...) as session, MiniAgents():`."
                ) from error
            if error.code == CONNECTION_CLOSED:
                raise ToolCallError(self._gone(name)) from error
            status = self._call_statuses.get(number)
            if status and error.message in _SDK_STATUS_ERRORS:
                # (the SDK's stand-in for a status; the session's client heard the status)
                did = "failed" if status >= 500 else "refused"
                anew = " Open a new session with them." if status in (401, 403) else ""
                fix = _status_fix(status, headers_given=bool(self._headers))
                raise ToolCallError(
                    f"The MCP server {self._describe()} {did} the call of its tool {name}. "
                    f"{fix}{anew}"
                ) from error
            raise ToolCallError(self._answered_error(name, error.message)) from error
        except Exception as error:  # the SDK's own failure, e.g. a result it could not take
            _logger.info("The call of the MCP tool %s failed in the SDK.", name, exc_info=error)
            raise ToolCallError(self._failed_call(name, error)) from error
        finally:
            self._call_statuses.pop(number, None)
            self._cut_answers.pop(number, None)

    def _gone(self, name: str, broken: BaseException | None = None) -> str:
        """What the model is told of a call of ``name`` whose server is gone, by any transport.

        The server stopped or cannot be reached: a stdio server's process ended (the SDK
        closes the connection), or an HTTP server's connection broke (the session's task
        ended with ``broken``, whose text, not its class, is told).
        """
        said = "" if broken is None else _said(_one_error(broken)).strip().rstrip(".")
        return (
            f"The connection to the MCP server {self._describe()} closed before it answered "
            f"the call of its tool {name} (the server stopped, or could not be reached any "
            f"more{': ' + said if said else ''}). Open a new session once the server runs again."
        )

    def _timed_out(self, error: MCPError, elapsed: float) -> bool:
        """Whether ``error`` (code ``REQUEST_TIMEOUT``, -32001) is the SDK's own ``read_timeout``.

        The SDK ends a call it has waited ``read_timeout`` seconds for with that code and no
        data; a server may answer a call with the same code (its own timeout, e.g. of a
        service it calls), at any time and with data: that is the server's error, told in
        its words. A call ended sooner than ``read_timeout`` (on the loop's clock, the one
        the SDK's timer runs on) was not ended by the SDK.
        """
        return (
            self._read_timeout is not None
            and elapsed + _CLOCK_SLACK >= self._read_timeout
            and error.data is None
        )

    def _answered_error(self, name: str, said: str) -> str:
        """What the model is told of the server's JSON-RPC error ``said`` for a call of ``name``.

        The server's own words (a refusal says what to do, e.g. to call again later), after
        the server and the tool they are about, cut as a tool's result is
        (``max_result_chars``); a server that said nothing is said to have given no reason.
        """
        said = said.strip()
        head = (
            f"The MCP server {self._describe()} answered the call of its tool {name} with an error"
        )
        if not said:
            return f"{head}, without saying why."
        return f"{head}: {self._cut(said, 'server')}"

    def _cut(self, said: str, whose: str) -> str:
        """``said``, the error of ``whose``, cut at ``max_result_chars`` with a note saying so."""
        if len(said) <= self._max_result_chars:
            return said
        return (
            f"{said[: self._max_result_chars]}\n[The {whose}'s error was cut here: it had "
            f"{len(said):,} characters, more than the {self._max_result_chars:,} this MCP "
            "session passes on (max_result_chars).]"
        )

    def _failed_call(self, name: str, error: Exception) -> str:
        """What the model is told of the SDK's ``error`` (not the server's) in a call of ``name``.

        A sentence, as for the server's errors, without the Python class of ``error`` (which
        would tell the model nothing): what the SDK said (e.g. that the result does not fit
        the tool's output schema), its first paragraph (the rest, such as the schema that
        failed, is logged), cut as a tool's result is (``max_result_chars``), and what to do.
        """
        said = _said(error).strip().split("\n\n", 1)[0].rstrip().rstrip(".")
        head = (
            f"The MCP client could not complete the call of the tool {name} of the MCP "
            f"server {self._describe()}"
        )
        fix = (
            "Call it again, or do without it; if it fails again, the server's operator should "
            "check its answer to this call."
        )
        if not said:
            return f"{head}, without saying why. {fix}"
        return f"{head}: {self._cut(said + '.', 'MCP client')} {fix}"

    def _describe(self) -> str:
        """The server, as errors and tool results name it (without what may be a secret).

        A URL without its user, password and query; a command by its program's name, its
        arguments (a token may be one) as ``…``.
        """
        server = self._server
        if isinstance(server, str):
            return _shown_url(server)
        command = getattr(server, "command", None)
        if command is not None:
            return _program(command) + (" …" if getattr(server, "args", None) else "")
        name = getattr(server, "name", None)  # an in-process MCPServer or Server
        if isinstance(name, str):
            return f"{name!r} (in-process)"
        return repr(server)

    def __repr__(self) -> str:
        """Show the server and the names of its tools."""
        return f"<MCPSession {self._describe()} tools={[tool.name for tool in self._tools or ()]}>"


class _BoundedBody:
    """The body of an answer of a server reached by its URL, cut at ``max_message_bytes``.

    It counts the bytes of one message as they are read (of a stream, one event: the bytes
    since its last blank line; else the whole body) and ends the body at the first one over
    the bound, telling its session which call it was: the SDK never holds a bigger message
    (it fails the call, with its own words, which the session replaces with the bound's).
    A body sent compressed (``coding``, its content coding) ends before its first byte: the
    bytes counted are the ones received, which the client would uncompress past the bound
    (told to the session but of an answer of an HTTP error status, ``_QUIETLY``'s, whose
    status says what failed).
    """

    def __init__(
        self, body: Any, most: int, events: bool, coding: str, request: Any, session: MCPSession
    ) -> None:
        self._body = body
        self._most = most
        self._events = events
        self._coding = coding
        self._request = request  # (whose call it is, read only if it is cut)
        self._session = session

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._coding:
            if self._coding != _QUIETLY:
                self._session._note_cut(self._request, self._coding)
            return
        pending = 0  # the bytes of the message read so far
        tail = b""  # (the last bytes read: an event's end may span two reads)
        async for chunk in self._body:
            if self._events:
                joined = tail + chunk
                ends = [at + len(end) for end in _EVENT_ENDS if (at := joined.rfind(end)) >= 0]
                pending = len(joined) - max(ends) if ends else pending + len(chunk)
                tail = joined[-3:]
            else:
                pending += len(chunk)
            if pending > self._most:
                self._session._note_cut(self._request, "")
                return
            yield chunk

    async def aclose(self) -> None:
        await self._body.aclose()


@functools.cache
def _bounded_body_class(
    byte_stream: type[httpx2.AsyncByteStream],
) -> Callable[[Any, int, bool, str, httpx2.Request, MCPSession], httpx2.AsyncByteStream]:
    """:class:`_BoundedBody` as a ``byte_stream`` (httpx2's, imported only where it is used)."""
    return type("_BoundedByteStream", (_BoundedBody, byte_stream), {"__slots__": ()})


_QUIETLY = "(quietly)"
"""The ``coding`` of a compressed body of an HTTP error status: refused, but not told."""


_EVENT_ENDS = (b"\n\n", b"\r\r", b"\r\n\r\n")
"""What ends an SSE event: a blank line, after any of the line ends the standard allows."""


def _checked_headers(headers: object) -> dict[str, str]:
    """``headers`` as a ``dict``, each name an HTTP token and each value printable ASCII.

    A value is never shown in the error (it may be a token).

    Raises:
        ArgumentError: naming the header that is wrong, and how to give it.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise refused_argument(
            headers,
            "headers",
            "a mapping of str to str, or None",
            owner="MCPSession.http",
            fix="E.g. MCPSession.http(url, headers={'Authorization': 'Bearer <token>'}).",
            error=ArgumentError,
        )
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ArgumentError(
                f"MCPSession.http needs each name of headers to be an HTTP header's name (ASCII "
                f"letters, digits and !#$%&'*+-.^_`|~, nothing else); got {name!r}. E.g. "
                "headers={'Authorization': 'Bearer <token>'}."
            )
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            got = (
                "a line break, another control character or a character outside ASCII in it"
                if isinstance(value, str)
                else a_class(type(value))
            )
            raise ArgumentError(
                f"MCPSession.http needs the value of the header {name!r} to be a str of "
                f"printable ASCII characters; got {got} (the value is not shown: it may be "
                "a secret). Give it as one line of text, e.g. headers={'Authorization': "
                "f'Bearer {token}'}."
            )
        checked[name] = value
    return checked


def _status_fix(status: int, *, headers_given: bool) -> str:
    """What the HTTP error ``status`` a server answered with says, and the fix it asks for.

    Args:
        status: The status (400 and above).
        headers_given: Whether the session sent headers (``http(headers=...)``): a server
            that asks for credentials refused them.
    """
    said, fix = _STATUSES.get(status, ("", ""))
    if status >= 500:
        said, fix = "the server failed", "check the server (its logs), then try again."
    elif not said:
        said = "the server refused the request"
        fix = "check the URL (a server's streamable HTTP endpoint) and the headers given."
    if status in (401, 403) and headers_given:
        fix = "the headers given were refused: check them, or " + fix
    return f"The server answered HTTP {status} ({said}); {fix}"


def _call_number(request: httpx2.Request) -> str | None:
    """The number of the call ``request`` belongs to (its ``_meta``), if it is a call's."""
    try:
        sent = json.loads(request.content)
    except (ValueError, RuntimeError):  # (not JSON, or a body streamed: not a call's)
        return None
    params = sent.get("params") if isinstance(sent, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    number = meta.get(_CALL_KEY) if isinstance(meta, dict) else None
    return number if isinstance(number, str) else None


def _said(error: BaseException) -> str:
    """The text of ``error``, or ``""`` if it has none or reading it fails."""
    try:
        return str(error)
    except Exception:  # (an error whose __str__ fails must not lose the call's result)
        return ""


def _program(command: str) -> str:
    """The name of the program ``command`` runs (its path left out, e.g. ``python3.12``)."""
    return Path(command).name or command


def _shown_url(url: str) -> str:
    """``url`` without what may be a secret: its user and password, its query (``?key=``).

    Errors are logged and a tool's error result goes to the model, so a token in a
    server's URL (``https://mcp.example.com/mcp?api_key=...``) is never shown: ``…`` stands
    for it.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = host if host == parts.netloc else f"…@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


async def _ended(running: asyncio.Task[None]) -> None:
    """Wait for the session's task to end, cancelled after ``_CLOSE_TIMEOUT`` seconds.

    If the wait is cancelled, the task is cancelled too.
    """
    try:
        await asyncio.wait([running], timeout=_CLOSE_TIMEOUT)
        if not running.done():  # (a server that does not answer the close: cut it)
            running.cancel()
            await asyncio.wait([running])
    except asyncio.CancelledError:
        running.cancel()
        raise


def _session_error(what: str, error: BaseException, fix: str = "") -> MCPSessionError:
    """``MCPSessionError`` of ``what``, caused by ``error`` (the one error of the SDK's group).

    ``error`` is shown as Python writes it: its class and text, for the developer whose
    session did not open.
    """
    error = _one_error(error)
    failure = MCPSessionError(f"{what}: {error!r}. {fix}".rstrip())
    failure.__cause__ = error
    return failure


def _one_error(error: BaseException) -> BaseException:
    """``error``, or the one error of its group (of the SDK's task groups), at any depth."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
