"""A fake OpenAI / Anthropic HTTP server for tests (standard library only).

The server listens on ``127.0.0.1`` on a free port, in a background thread, and speaks the
wire formats of the OpenAI Chat Completions API (``POST /v1/chat/completions``) and the
Anthropic Messages API (``POST /v1/messages``), streamed (server-sent events over a chunked
HTTP/1.1 body, as the real services send them) and not streamed. The real SDK clients
(``openai.AsyncOpenAI``, ``anthropic.AsyncAnthropic``) talk to it over real sockets::

    with FakeLLMServer() as server:
        server.reply(tokens=["Hel", "lo"], finish_reason="stop", usage=(5, 2))
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test")
        # anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test")

Script: a FIFO queue; every request to a known endpoint takes the next item (``reply`` or
``fail``); when the queue is empty, the reply echoes the text of the last user message.
Items are provider-neutral: a reply or an error is rendered in the format of the endpoint
that receives it.

Record: ``server.requests`` holds every request (method, path, headers, parsed JSON body)
and, once its response is over, how it ended (``outcome``) and whether the client closed
the connection before the end (``client_disconnected``).

Retry timing of the SDKs (openai 3.52, anthropic 2.11): both take ``retry-after-ms`` then
``retry-after`` (seconds, floats allowed) but only honour a delay that is > 0 (OpenAI:
0 < delay <= 120 s); ``retry-after: 0`` (or no header) falls back to the exponential backoff
``0.5 s * 2**retry * jitter(0.75..1)`` (capped at 8 s). So to make retries instant, send
``FAST_RETRY`` (``{"retry-after-ms": "1"}``: a 1 ms wait) with the failure. Both SDKs retry
408, 409, 429 and >= 500 (``x-should-retry: true|false`` overrides), and connection errors
before the response is read (a non-streamed body cut short counts); never a broken stream.

What the SDKs do on each stream failure (pinned by ``tests/fakes/test_llm_server.py``):

============  =================================================  ===========================
mode          openai 3.52 (``AsyncStream[ChatCompletionChunk]``) anthropic 2.11 (raw events)
============  =================================================  ===========================
cut (FIN)     ``openai.APIConnectionError("Connection error.")``  ``httpx2.RemoteProtocolError``
              from ``httpx2.RemoteProtocolError("peer closed      (same message), NOT wrapped
              connection without sending complete message body
              (incomplete chunked read)")``
cut (RST)     ``openai.APIConnectionError`` from                  ``httpx2.ReadError``
              ``httpx2.ReadError``                                NOT wrapped
omit_final    silent end (no finish_reason, no usage chunk)       silent end (no message_stop)
malformed     ``json.JSONDecodeError``                            ``json.JSONDecodeError``
error event   ``openai.APIError`` (base class; str: the error     ``anthropic.APIStatusError``
              message; ``.body``: the error object)               (base; status_code 200;
                                                                  str: ``str(body)``)
read timeout  ``openai.APITimeoutError("Request timed out.")``    ``httpx2.ReadTimeout``
              from ``httpx2.ReadTimeout``                         NOT wrapped
============  =================================================  ===========================
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

__all__ = [
    "FAST_RETRY",
    "Failure",
    "FakeLLMServer",
    "Outcome",
    "Provider",
    "RecordedRequest",
    "Reply",
]

Provider = Literal["openai", "anthropic"]
"""The API an endpoint belongs to."""

Outcome = Literal[
    "pending",  # the response is still being sent
    "complete",  # the whole response was sent (an error status, or a stream ended cleanly)
    "cut",  # the server closed the connection mid-response (cut_after)
    "disconnected",  # the client closed the connection before the end of the response
    "stopped",  # the server was stopped while the response was still going (e.g. hang_after)
]
"""How the response to a recorded request ended."""

FAST_RETRY: Mapping[str, str] = {"retry-after-ms": "1"}
"""Headers for ``fail()`` that make both SDKs retry after 1 ms (``retry-after: 0`` does not)."""

_POLL_INTERVAL = 0.01

_OPENAI_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ANTHROPIC_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1ms.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass(frozen=True)
class Reply:
    """A scripted successful reply (see ``FakeLLMServer.reply`` for the fields)."""

    tokens: tuple[str, ...] | None = None
    finish_reason: str | None = None
    stop_sequence: str | None = None
    usage: tuple[int, int] | None = None
    token_delay: float = 0.0
    delay: float = 0.0
    model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    reset: bool = False
    omit_final: bool = False
    malformed_after: int | None = None
    error_event_after: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    hang_after: int | None = None


@dataclass(frozen=True)
class Failure:
    """A scripted HTTP error response (see ``FakeLLMServer.fail``)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    delay: float = 0.0


@dataclass(eq=False)
class RecordedRequest:
    """A request the server received, and how its response ended.

    Attributes:
        index: Position in ``FakeLLMServer.requests`` (0 for the first request).
        method: HTTP method (``"POST"``).
        path: Request path, with the query string if any (``"/v1/chat/completions"``).
        headers: Request headers, names lower-cased.
        raw_body: The request body as received.
        body: The parsed JSON body (``None`` if it was not JSON).
        provider: The API of the endpoint, or ``None`` for an unknown path.
        status: The HTTP status sent back (``None`` if none was sent, e.g. a hang).
        outcome: How the response ended (see ``Outcome``).
        client_disconnected: Whether the client closed the connection before the end.
        script: The script item used (``None``: none, e.g. a 404 or an invalid request).
    """

    index: int
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: Any
    provider: Provider | None
    status: int | None = None
    outcome: Outcome = "pending"
    client_disconnected: bool = False
    script: Reply | Failure | None = None
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _disconnected: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def json(self) -> dict[str, Any]:
        """The JSON body as an object (empty if the body was not a JSON object)."""
        return cast("dict[str, Any]", self.body) if isinstance(self.body, dict) else {}

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed response."""
        return self.json.get("stream") is True

    @property
    def finished(self) -> bool:
        """Whether the response is over (whatever its outcome)."""
        return self._finished.is_set()


class _ClientGone(Exception):
    """The client closed the connection (raised inside the server thread only)."""


class _Stopping(Exception):
    """The server is stopping (raised inside the server thread only)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeLLMServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a reverse DNS lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep an unexpected error of a handler thread for the test (``server.errors``)."""
        error = sys.exc_info()[1]
        if error is not None:
            with self.fake._lock:
                self.fake._errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection is dropped after this

    def setup(self) -> None:
        super().setup()
        fake = cast(_HTTPServer, self.server).fake
        if not fake._register_connection(self.connection):
            self.close_connection = True

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # e.g. the client reset a keep-alive connection while idle
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            cast(_HTTPServer, self.server).fake._unregister_connection(self.connection)

    def do_POST(self) -> None:
        cast(_HTTPServer, self.server).fake._handle(self)

    def do_GET(self) -> None:
        cast(_HTTPServer, self.server).fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""


class _Exchange:
    """Writing one response, and watching the connection, from a handler thread."""

    def __init__(self, fake: FakeLLMServer, handler: _Handler, record: RecordedRequest) -> None:
        self.fake = fake
        self.handler = handler
        self.record = record
        self.sock = cast(socket.socket, handler.connection)

    # -- connection state ------------------------------------------------------------------

    def _client_gone(self) -> bool:
        """Without blocking: whether the client has closed (or reset) the connection."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return False
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def wait(self, seconds: float | None) -> None:
        """Wait ``seconds`` (``None``: forever), watching for the client leaving.

        Raises:
            _ClientGone: The client closed the connection.
            _Stopping: The server is stopping.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if self.fake._stopping.is_set():
                raise _Stopping
            if self._client_gone():
                raise _ClientGone
            step = _POLL_INTERVAL
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return
            self.fake._stopping.wait(step)

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.fake._stopping.is_set():
            raise _Stopping
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError as err:  # BrokenPipeError, ConnectionResetError, ...
            raise _ClientGone from err

    def send_head(self, status: int, headers: Mapping[str, str]) -> None:
        self.record.status = status
        self.handler.send_response(status)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        try:
            self.handler.end_headers()
        except OSError as err:
            raise _ClientGone from err

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
        body = _dumps(payload)
        self.send_head(
            status,
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                **headers,
            },
        )
        self.write(body)

    def start_events(self, headers: Mapping[str, str]) -> None:
        self.send_head(
            200,
            {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Transfer-Encoding": "chunked",
                "Cache-Control": "no-cache",
                **headers,
            },
        )

    def send_chunk(self, data: bytes) -> None:
        self.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        self.write(b"0\r\n\r\n")

    def cut(self, *, reset: bool) -> None:
        """Close the connection now, without ending the response body."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            if reset:  # RST instead of FIN
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Close the descriptor now (the handler's file objects would defer a close());
                # the socket object is left closed, so later writes fail harmlessly.
                os.close(self.sock.detach())
            else:
                self.sock.shutdown(socket.SHUT_RDWR)


class FakeLLMServer:
    """A local fake of the OpenAI and Anthropic HTTP APIs, scripted by the test.

    Use as a context manager (or ``start()`` / ``stop()``)::

        with FakeLLMServer() as server:
            server.reply(tokens=["Hi", "!"])
            ...  # point a client at server.openai_base_url / server.anthropic_base_url
            assert server.requests[0].json["model"] == "gpt-4o-mini"

    Endpoints: ``POST .../chat/completions`` (OpenAI; ``/v1/chat/completions`` with
    ``base_url=server.openai_base_url``) and ``POST .../messages`` (Anthropic;
    ``/v1/messages`` with ``base_url=server.anthropic_base_url``). Any other path gets a 404.
    A request missing a required field (OpenAI: ``model``, ``messages``; Anthropic: ``model``,
    ``messages``, ``max_tokens``), or with a numeric option out of the API's range (e.g.
    ``temperature``: OpenAI 0 to 2, Anthropic 0 to 1), gets a 400 in the provider's format
    without consuming the script.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.Condition()
        self._script: deque[Reply | Failure] = deque()
        self._requests: list[RecordedRequest] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._errors: list[BaseException] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind a free port and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("FakeLLMServer already started")
        httpd = _HTTPServer(self._address, _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-llm-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: drop every open connection and wait for the handler threads."""
        httpd = self._httpd
        if httpd is None or self._stopping.is_set():
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in connections.values():
            thread.join(5)
        with self._lock:
            for record in self._requests:
                record._finished.set()
            self._lock.notify_all()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("FakeLLMServer not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.AsyncOpenAI`` (``base_url + "/v1"``)."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for ``anthropic.AsyncAnthropic`` (the SDK adds ``/v1``)."""
        return self.base_url

    # -- script ----------------------------------------------------------------------------

    def reply(
        self,
        tokens: Sequence[str] | None = None,
        *,
        finish_reason: str | None = None,
        stop_sequence: str | None = None,
        usage: tuple[int, int] | None = None,
        token_delay: float = 0.0,
        delay: float = 0.0,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        cut_after: int | None = None,
        reset: bool = False,
        omit_final: bool = False,
        malformed_after: int | None = None,
        error_event_after: int | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        hang_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Enqueue a successful reply for the next request(s).

        Args:
            tokens: The text pieces; one streamed event each (OpenAI: a chunk with
                ``delta.content``; Anthropic: a ``content_block_delta`` ``text_delta``).
                The non-streamed reply holds their concatenation. ``None``: echo the last
                user message, split in words. A ``str`` is one token.
            finish_reason: In either vocabulary, translated for the endpoint: ``"stop"`` <->
                ``"end_turn"``, ``"length"`` <-> ``"max_tokens"``, ``"tool_calls"`` <->
                ``"tool_use"``, ``"content_filter"`` <-> ``"refusal"``; OpenAI gets
                ``"stop"`` for ``"stop_sequence"``; other values are sent as given.
                ``None``: ``"stop"`` / ``"end_turn"``.
            stop_sequence: Anthropic's ``stop_sequence`` field.
            usage: ``(input_tokens, output_tokens)``. ``None``: the number of words in the
                request's messages (and system), and the number of tokens.
            token_delay: Seconds to wait before each token event.
            delay: Seconds to wait before sending the status line (time to first byte).
            model: The model named in the response (``None``: the request's model).
            headers: Extra response headers.
            cut_after: Stream: after this many token events, close the connection without
                ending the chunked body (FIN; RST if ``reset``). Not streamed: send the
                headers and half of the body, then close.
            reset: With ``cut_after``: close with a TCP reset (SO_LINGER 0) instead.
            omit_final: Stream: end the body cleanly but without the final event(s):
                OpenAI: no ``finish_reason`` chunk, no usage chunk, no ``data: [DONE]``;
                Anthropic: no ``message_stop`` (``content_block_stop`` and
                ``message_delta`` are sent).
            malformed_after: Stream: after this many token events, send a data line that is
                truncated JSON, then go on with the rest of the stream.
            error_event_after: Stream: after this many token events, send an error event
                (Anthropic: ``event: error`` + ``{"type": "error", "error": {...}}``; OpenAI:
                ``data: {"error": {...}}``), then end the body cleanly.
            error_type: The error type of the error event (``None``: ``"overloaded_error"``
                / ``"server_error"``).
            error_message: The message of the error event (``None``: ``"Overloaded"`` /
                ``"The server had an error while processing your request."``).
            hang_after: Stream: after this many token events, send nothing more and keep the
                connection open until the client closes it (recorded as
                ``client_disconnected``) or the server stops. Not streamed: hang before the
                status line.
            times: Enqueue this reply this many times.

        A fault ``after=N`` with N >= len(tokens) happens after the last token, before the
        final events; the preamble (OpenAI's role chunk; Anthropic's ``message_start``,
        ``content_block_start``, ``ping``) is always sent first.
        """
        item = Reply(
            tokens=None if tokens is None else _as_tokens(tokens),
            finish_reason=finish_reason,
            stop_sequence=stop_sequence,
            usage=usage,
            token_delay=token_delay,
            delay=delay,
            model=model,
            headers=dict(headers or {}),
            cut_after=cut_after,
            reset=reset,
            omit_final=omit_final,
            malformed_after=malformed_after,
            error_event_after=error_event_after,
            error_type=error_type,
            error_message=error_message,
            hang_after=hang_after,
        )
        self._enqueue(item, times)

    def fail(
        self,
        status: int = 500,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        message: str | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Enqueue an HTTP error response for the next request(s).

        Args:
            status: The HTTP status (429, 500, 503, 529, ...).
            body: The JSON body (a ``str`` or ``bytes`` is sent as is). ``None``: the error
                body of the provider of the endpoint: OpenAI ``{"error": {"message", "type",
                "param", "code"}}``; Anthropic ``{"type": "error", "error": {"type",
                "message"}, "request_id"}`` (``rate_limit_error`` for 429, ``api_error`` for
                500/503, ``overloaded_error`` for 529, ...).
            headers: Extra response headers, e.g. ``FAST_RETRY`` or ``{"retry-after": "1"}``,
                ``{"x-should-retry": "false"}``.
            message: The error message in the default body.
            delay: Seconds to wait before responding.
            times: Enqueue this failure this many times (e.g. 1 + max_retries).
        """
        item = Failure(
            status=status, body=body, headers=dict(headers or {}), message=message, delay=delay
        )
        self._enqueue(item, times)

    def _enqueue(self, item: Reply | Failure, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._script.extend([item] * times)

    def clear_script(self) -> None:
        """Drop the scripted items not used yet."""
        with self._lock:
            self._script.clear()

    @property
    def pending(self) -> int:
        """How many scripted items are not used yet."""
        with self._lock:
            return len(self._script)

    # -- record ----------------------------------------------------------------------------

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised in the server's handler threads (a bug of the fake)."""
        with self._lock:
            return list(self._errors)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, in order."""
        with self._lock:
            return list(self._requests)

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests were received; return them all.

        Raises:
            TimeoutError: Fewer requests arrived within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} requests received, expected {count}")
            return list(self._requests)

    def wait_finished(self, index: int, timeout: float = 5.0) -> RecordedRequest:
        """Wait until the response to request ``index`` is over; return its record.

        Raises:
            TimeoutError: The request did not arrive or its response did not end in time.
        """
        deadline = time.monotonic() + timeout
        record = self.wait_requests(index + 1, timeout)[index]
        if not record._finished.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"the response to request {index} is not over")
        return record

    def wait_disconnected(self, index: int, timeout: float = 5.0) -> bool:
        """Wait until the client closed the connection of request ``index`` mid-response.

        Blocking (for a test's thread, or once the client is done); see
        ``wait_disconnected_async`` inside an event loop.

        Returns:
            Whether the client disconnected before the end of the response within
            ``timeout`` seconds (``False`` also if the response ended otherwise first).
        """
        deadline = time.monotonic() + timeout
        try:
            record = self.wait_requests(index + 1, timeout)[index]
        except TimeoutError:
            return False
        while True:
            if record._disconnected.is_set():
                return True
            remaining = deadline - time.monotonic()
            if record._finished.is_set() or remaining <= 0:
                return record._disconnected.is_set()
            record._disconnected.wait(min(remaining, _POLL_INTERVAL))

    async def wait_requests_async(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """``wait_requests`` that lets the event loop run while it waits."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._requests) >= count:
                    return list(self._requests)
                received = len(self._requests)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{received} requests received, expected {count}")
            await asyncio.sleep(_POLL_INTERVAL)

    async def wait_disconnected_async(self, index: int, timeout: float = 5.0) -> bool:
        """``wait_disconnected`` that lets the event loop run while it waits."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                record = self._requests[index] if index < len(self._requests) else None
            if record is not None and (record._disconnected.is_set() or record.finished):
                return record._disconnected.is_set()
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_INTERVAL)

    async def wait_finished_async(self, index: int, timeout: float = 5.0) -> RecordedRequest:
        """``wait_finished`` that lets the event loop run while it waits."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                record = self._requests[index] if index < len(self._requests) else None
            if record is not None and record.finished:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the response to request {index} is not over")
            await asyncio.sleep(_POLL_INTERVAL)

    # -- server side (handler threads) -----------------------------------------------------

    def _register_connection(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._connections[sock] = threading.current_thread()
            return True

    def _unregister_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def _handle(self, handler: _Handler) -> None:
        raw_body = _read_body(handler)
        path = handler.path
        route = urlsplit(path).path.rstrip("/")
        provider: Provider | None = None
        if handler.command == "POST" and route.endswith("/chat/completions"):
            provider = "openai"
        elif handler.command == "POST" and route.endswith("/messages"):
            provider = "anthropic"
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        with self._lock:
            record = RecordedRequest(
                index=len(self._requests),
                method=handler.command,
                path=path,
                headers={name.lower(): value for name, value in handler.headers.items()},
                raw_body=raw_body,
                body=body,
                provider=provider,
            )
            self._requests.append(record)
            self._lock.notify_all()
        exchange = _Exchange(self, handler, record)
        try:
            self._respond(exchange, provider, record)
            record.outcome = "cut" if record.outcome == "cut" else "complete"
        except _ClientGone:
            record.outcome = "disconnected"
            record.client_disconnected = True
            record._disconnected.set()
            handler.close_connection = True
        except _Stopping:
            record.outcome = "stopped"
            handler.close_connection = True
            exchange.cut(reset=False)
        finally:
            record._finished.set()
            with self._lock:
                self._lock.notify_all()

    def _respond(
        self, exchange: _Exchange, provider: Provider | None, record: RecordedRequest
    ) -> None:
        request_id = f"req_fake{next(self._ids):08d}"
        if provider is None:
            exchange.send_json(
                404,
                {"error": {"message": f"Unknown path {record.path}", "type": "not_found"}},
                {},
            )
            return
        problem = _validate(provider, record.body)
        if problem is not None:
            exchange.send_json(
                400,
                _error_body(provider, 400, problem, request_id),
                _id_headers(provider, request_id),
            )
            return
        with self._lock:
            item: Reply | Failure = self._script.popleft() if self._script else Reply()
        record.script = item
        if item.delay:
            exchange.wait(item.delay)
        if isinstance(item, Failure):
            payload: Any = item.body
            if payload is None:
                payload = _error_body(provider, item.status, item.message, request_id)
            if isinstance(payload, (str, bytes)):
                data = payload.encode() if isinstance(payload, str) else payload
                exchange.send_head(
                    item.status,
                    {
                        "Content-Type": "application/json",
                        "Content-Length": str(len(data)),
                        **_id_headers(provider, request_id),
                        **item.headers,
                    },
                )
                exchange.write(data)
            else:
                exchange.send_json(
                    item.status, payload, {**_id_headers(provider, request_id), **item.headers}
                )
            return
        _Responder(exchange, provider, record, item, request_id, next(self._ids)).run()


class _Responder:
    """Renders one ``Reply`` for one provider, streamed or not."""

    def __init__(
        self,
        exchange: _Exchange,
        provider: Provider,
        record: RecordedRequest,
        reply: Reply,
        request_id: str,
        serial: int,
    ) -> None:
        self.x = exchange
        self.provider = provider
        self.record = record
        self.reply = reply
        request = record.json
        self.tokens = reply.tokens if reply.tokens is not None else _echo_tokens(request)
        self.text = "".join(self.tokens)
        self.model = reply.model or str(request.get("model", "fake-model"))
        if reply.usage is not None:
            self.input_tokens, self.output_tokens = reply.usage
        else:
            self.input_tokens, self.output_tokens = _count_words(request), len(self.tokens)
        self.request_id = request_id
        self.created = int(time.time())
        if provider == "openai":
            self.id = f"chatcmpl-fake{serial:08d}"
            reason = reply.finish_reason or "stop"
            self.finish_reason = _ANTHROPIC_TO_OPENAI.get(reason, reason)
        else:
            self.id = f"msg_fake{serial:08d}"
            reason = reply.finish_reason or "end_turn"
            self.finish_reason = _OPENAI_TO_ANTHROPIC.get(reason, reason)
        self.headers = {**_id_headers(provider, request_id), **reply.headers}

    def run(self) -> None:
        if self.record.stream:
            self.stream()
        else:
            self.single()

    # -- not streamed ----------------------------------------------------------------------

    def single(self) -> None:
        reply = self.reply
        if reply.hang_after is not None:
            self.x.wait(None)
            return
        payload = (
            self.openai_completion() if self.provider == "openai" else self.anthropic_message()
        )
        body = _dumps(payload)
        if reply.malformed_after is not None:
            body = body[: len(body) // 2]
        head = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **self.headers,
        }
        if reply.cut_after is not None:
            self.x.send_head(200, head)
            self.x.write(body[: len(body) // 2])
            self.cut()
            return
        self.x.send_head(200, head)
        self.x.write(body)

    def openai_completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": self.text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.openai_usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def openai_usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def anthropic_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": self.text}],
            "stop_reason": self.finish_reason,
            "stop_sequence": self.reply.stop_sequence,
            "usage": self.anthropic_usage(self.output_tokens),
        }

    def anthropic_usage(self, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    # -- streamed --------------------------------------------------------------------------

    def cut(self) -> None:
        self.record.outcome = "cut"
        self.x.cut(reset=self.reply.reset)

    def event(self, name: str | None, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else _dumps(payload)
        prefix = b"" if name is None else b"event: %s\n" % name.encode()
        self.x.send_chunk(prefix + b"data: " + data + b"\n\n")

    def openai_chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    @property
    def include_usage(self) -> bool:
        options = self.record.json.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def fault(self, sent: int) -> bool:
        """Apply the faults due after ``sent`` token events; True if the stream is over."""
        reply = self.reply
        last = len(self.tokens)

        def due(after: int | None) -> bool:
            return after is not None and min(after, last) == sent

        if due(reply.hang_after):
            self.x.wait(None)
        if due(reply.cut_after):
            self.cut()
            return True
        if due(reply.error_event_after):
            if self.provider == "openai":
                error = {
                    "message": reply.error_message
                    or "The server had an error while processing your request.",
                    "type": reply.error_type or "server_error",
                    "param": None,
                    "code": None,
                }
                self.event(None, {"error": error})
            else:
                error = {
                    "type": reply.error_type or "overloaded_error",
                    "message": reply.error_message or "Overloaded",
                }
                self.event("error", {"type": "error", "error": error})
            self.x.end_chunks()
            return True
        if due(reply.malformed_after):
            if self.provider == "openai":
                truncated = b'{"id":"%s","object":"chat.completion.chunk","choices":[{"ind'
                self.event(None, truncated % self.id.encode())
            else:
                self.event(
                    "content_block_delta",
                    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_del',
                )
        return False

    def stream(self) -> None:
        self.x.start_events(self.headers)
        if self.provider == "openai":
            self.event(
                None, self.openai_chunk({"role": "assistant", "content": "", "refusal": None}, None)
            )
        else:
            start = self.anthropic_message()
            start.update(content=[], stop_reason=None, stop_sequence=None)
            start["usage"] = self.anthropic_usage(min(1, self.output_tokens))
            self.event("message_start", {"type": "message_start", "message": start})
            self.event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            self.event("ping", b'{"type": "ping"}')
        for sent, token in enumerate(self.tokens):
            if self.fault(sent):
                return
            if self.reply.token_delay:
                self.x.wait(self.reply.token_delay)
            if self.provider == "openai":
                self.event(None, self.openai_chunk({"content": token}, None))
            else:
                self.event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": token},
                    },
                )
        if self.fault(len(self.tokens)):
            return
        if self.provider == "openai":
            if not self.reply.omit_final:
                self.event(None, self.openai_chunk({}, self.finish_reason))
                if self.include_usage:
                    usage_chunk = self.openai_chunk({}, None)
                    usage_chunk["choices"] = []
                    usage_chunk["usage"] = self.openai_usage()
                    self.event(None, usage_chunk)
                self.event(None, b"[DONE]")
        else:
            self.event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self.event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self.finish_reason,
                        "stop_sequence": self.reply.stop_sequence,
                    },
                    "usage": {"output_tokens": self.output_tokens},
                },
            )
            if not self.reply.omit_final:
                self.event("message_stop", {"type": "message_stop"})
        self.x.end_chunks()


# -- helpers -------------------------------------------------------------------------------


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _as_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    return (tokens,) if isinstance(tokens, str) else tuple(tokens)


def _read_body(handler: _Handler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _id_headers(provider: Provider, request_id: str) -> dict[str, str]:
    if provider == "openai":
        return {"x-request-id": request_id, "openai-processing-ms": "1"}
    return {"request-id": request_id}


def _error_body(provider: Provider, status: int, message: str | None, request_id: str) -> Any:
    if provider == "openai":
        kind, code, default = _OPENAI_ERRORS.get(
            status,
            ("server_error" if status >= 500 else "invalid_request_error", None, "Error."),
        )
        return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
    kind, default = _ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", "Error.")
    )
    return {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": request_id,
    }


_RANGES: dict[Provider, dict[str, tuple[float, float]]] = {
    "openai": {
        "temperature": (0, 2),
        "top_p": (0, 1),
        "presence_penalty": (-2, 2),
        "frequency_penalty": (-2, 2),
        "max_tokens": (1, 1_000_000),
        "max_completion_tokens": (1, 1_000_000),
    },
    "anthropic": {
        "temperature": (0, 1),
        "top_p": (0, 1),
        "top_k": (0, 1_000_000),
        "max_tokens": (1, 1_000_000),
    },
}
"""The numeric options each API checks, with their ranges (a value outside gets a 400)."""


def _validate(provider: Provider, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body is not a JSON object."
    required = (
        ("model", "messages") if provider == "openai" else ("model", "messages", "max_tokens")
    )
    for name in required:
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["messages"], list):
        return "messages: Input should be a valid list"
    for name, (low, high) in _RANGES[provider].items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name}: Input should be a valid number"
        if not low <= value <= high:
            return f"{name}: Input should be between {low} and {high}, got {value}"
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return " ".join(parts)
    return ""


def _echo_tokens(request: Mapping[str, Any]) -> tuple[str, ...]:
    messages = request.get("messages")
    text = ""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = _text_of(message.get("content"))
                break
    return tuple(re.findall(r"\s*\S+", text)) or ("",)


def _count_words(request: Mapping[str, Any]) -> int:
    texts = [_text_of(request.get("system"))]
    messages = request.get("messages")
    if isinstance(messages, list):
        texts.extend(
            _text_of(message.get("content")) for message in messages if isinstance(message, dict)
        )
    return max(1, sum(len(text.split()) for text in texts))
