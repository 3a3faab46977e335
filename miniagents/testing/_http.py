"""The HTTP plumbing of the fake LLM server: a threaded HTTP/1.1 server, one exchange per request.

Standard library only. Each connection is served by a handler thread; :class:`Exchange`
writes one response (a JSON body, or server-sent events over a chunked body) and watches
the connection, so that a client that goes away, or the server stopping, ends the
response early (:class:`ClientGone`, :class:`Stopping`).

What a response writes is buffered and sent when the response waits (a delay between
tokens, a pause, a hang), is cut, or ends (the app calls :meth:`Exchange.flush` once it
has recorded how the response ended), or when ``WRITE_BUFFER`` bytes are waiting:
the events that are ready go out in one ``send`` rather than one each. The client sees
the same bytes at the same moments of the script; only the number of system calls (and,
with a thread per connection, of hand-offs of the GIL) drops, by two orders of magnitude
for a streamed reply without delays.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast

__all__ = ["App", "ClientGone", "Exchange", "HTTPServer", "Handler", "Stopping", "read_body"]

POLL_INTERVAL = 0.01
"""Seconds between two looks at the connection while a response waits."""

WRITE_BUFFER = 64 * 1024
"""Bytes a response holds back, at most, before they are sent (see the module)."""


class ClientGone(Exception):
    """The client closed the connection (raised inside a handler thread only)."""


class Stopping(Exception):
    """The server is stopping (raised inside a handler thread only)."""


class App(Protocol):
    """What the HTTP server serves: the fake server, seen from its handler threads."""

    stopping: threading.Event

    def register_connection(self, sock: socket.socket) -> bool:
        """Take a new connection; ``False`` if the server is stopping."""
        ...

    def unregister_connection(self, sock: socket.socket) -> None:
        """Forget a connection that ended."""
        ...

    def connection_accepted(self, address: tuple[str, int]) -> None:
        """Count a connection accepted from ``address`` (before its handler thread starts)."""
        ...

    def connection_ended(self) -> None:
        """Count a connection whose handler thread is done with it (closed)."""
        ...

    def handle(self, handler: Handler) -> None:
        """Answer one request."""
        ...

    def record_error(self, error: BaseException) -> None:
        """Keep an unexpected error of a handler thread for the test."""
        ...


class HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that serves an :class:`App` and never looks up DNS."""

    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once (socketserver's default: 5)
    app: App

    def server_bind(self) -> None:
        """Bind without ``socket.getfqdn()`` (a reverse DNS lookup, slow on some hosts)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Count the connection as accepted (in accepting order), then serve it in a thread."""
        self.app.connection_accepted(tuple(client_address[:2]))
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection (in its handler thread), then count it as ended."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.app.connection_ended()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep an unexpected error of a handler thread for the test."""
        error = sys.exc_info()[1]
        if error is not None:
            self.app.record_error(error)


class Handler(BaseHTTPRequestHandler):
    """One connection: keep-alive HTTP/1.1, each request handed to the app."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-llm"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection is dropped after this
    wbufsize = WRITE_BUFFER  # the headers and the events that are ready go out together
    disable_nagle_algorithm = True  # what is flushed goes out at once (no delayed ACK wait)

    @property
    def app(self) -> App:
        """The app this handler serves."""
        return cast(HTTPServer, self.server).app

    def setup(self) -> None:
        """Register the connection (or close it at once if the server is stopping).

        A connection that opens with a TLS handshake (Gemini's Live sessions, at
        ``wss://``) is answered in TLS, with the fake's own certificate (``_tls``).
        """
        sock = cast(socket.socket, self.request)
        sock.settimeout(self.timeout)
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if first == b"\x16":  # a TLS ClientHello
            from miniagents.testing._tls import server_context

            try:
                self.request = server_context().wrap_socket(sock, server_side=True)
            except (OSError, ValueError):
                self.close_connection = True
        super().setup()
        if not self.app.register_connection(self.connection):
            self.close_connection = True

    def handle(self) -> None:
        """Serve requests until the connection closes."""
        try:
            super().handle()
        except OSError:  # e.g. the client reset a keep-alive connection while idle
            self.close_connection = True

    def finish(self) -> None:
        """Unregister the connection (and close it, if it is in TLS: the server closes the
        plain socket it accepted, which TLS took over)."""
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.app.unregister_connection(self.connection)
            if isinstance(self.request, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    self.request.close()

    def do_POST(self) -> None:
        """Answer a POST request."""
        self.app.handle(self)

    def do_GET(self) -> None:
        """Answer a GET request (the batch APIs'; a 404 for any other path)."""
        self.app.handle(self)

    def do_DELETE(self) -> None:
        """Answer a DELETE request (the batch APIs'; a 404 for any other path)."""
        self.app.handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""


class Exchange:
    """Writing one response, and watching the connection, from a handler thread."""

    def __init__(
        self,
        handler: Handler,
        stopping: threading.Event,
        on_status: Callable[[int], None] = lambda status: None,
    ) -> None:
        self.handler = handler
        self.stopping = stopping
        self.on_status = on_status
        self.sock = cast(socket.socket, handler.connection)

    def client_gone(self) -> bool:
        """Without blocking: whether the client has closed (or reset) the connection."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return False
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def wait(self, seconds: float | None, until: threading.Event | None = None) -> None:
        """Wait ``seconds`` (``None``: forever) or until ``until`` is set, watching the client.

        Raises:
            ClientGone: The client closed the connection.
            Stopping: The server is stopping.
        """
        self.flush()  # what was written before the wait reaches the client now
        deadline = None if seconds is None else time.monotonic() + seconds
        while until is None or not until.is_set():
            if self.stopping.is_set():
                raise Stopping
            if self.client_gone():
                raise ClientGone
            step = POLL_INTERVAL
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return
            self.stopping.wait(step)

    def write(self, data: bytes) -> None:
        """Send ``data``: at the next wait, cut or :meth:`flush` (or once the buffer is full).

        Raises:
            ClientGone: The connection broke.
            Stopping: The server is stopping.
        """
        if self.stopping.is_set():
            raise Stopping
        try:
            self.handler.wfile.write(data)
        except OSError as error:  # BrokenPipeError, ConnectionResetError, ...
            raise ClientGone from error

    def flush(self) -> None:
        """Send what was written and not sent yet.

        Raises:
            ClientGone: The connection broke.
        """
        try:
            self.handler.wfile.flush()
        except (OSError, ValueError) as error:  # broken, or closed by a cut
            raise ClientGone from error

    def send_head(self, status: int, headers: Mapping[str, str]) -> None:
        """Send the status line and the headers."""
        self.on_status(status)
        self.handler.send_response(status)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        try:
            self.handler.end_headers()
        except OSError as error:
            raise ClientGone from error

    def send_body(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        """Send a whole JSON response."""
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        self.send_head(status, {**head, **headers})
        self.write(body)

    def start_events(
        self, headers: Mapping[str, str], content_type: str = "text/event-stream; charset=utf-8"
    ) -> None:
        """Start a streamed response (a chunked body): server-sent events by default."""
        events = {
            "Content-Type": content_type,
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
        }
        self.send_head(200, {**events, **headers})

    def send_chunk(self, data: bytes) -> None:
        """Send one chunk of a chunked body."""
        self.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        """End a chunked body."""
        self.write(b"0\r\n\r\n")

    def cut(self, *, reset: bool) -> None:
        """Close the connection now, without ending the response body (RST if ``reset``)."""
        self.handler.close_connection = True
        with contextlib.suppress(ClientGone):
            self.flush()  # what was written before the cut reaches the client first
        with contextlib.suppress(OSError):
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Close the descriptor now (the handler's file objects would defer a close());
                # the socket object is left closed, so later writes fail harmlessly.
                os.close(self.sock.detach())
            else:
                self.sock.shutdown(socket.SHUT_RDWR)


def read_body(handler: Handler) -> bytes:
    """The request's body (``Content-Length`` or chunked)."""
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
