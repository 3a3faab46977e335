"""The WebSocket side of the fake LLM server: the upgrade of a request, then its frames.

The realtime APIs (OpenAI Realtime, Gemini Live) speak JSON messages over a WebSocket. A
request that asks for the upgrade (``Upgrade: websocket``) is answered with ``101
Switching Protocols`` here, in its handler thread, and the connection then carries frames:
:class:`WebSocket` reads and writes them with the ``websockets`` package's sans-I/O protocol
(imported when the first upgrade comes: the fake's HTTP APIs do not need it), over the
handler's own socket. Only that thread reads and writes the socket, so a session of the
fake is one thread, waiting on its socket with a timeout (see :meth:`WebSocket.receive`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from miniagents.testing._http import ClientGone, Handler, Stopping

if TYPE_CHECKING:
    from websockets.protocol import Protocol

__all__ = ["WebSocket", "accept_upgrade", "wants_upgrade"]


def wants_upgrade(handler: Handler) -> bool:
    """Whether the request asks to become a WebSocket."""
    upgrade = handler.headers.get("Upgrade", "").lower()
    connection = handler.headers.get("Connection", "").lower()
    return upgrade == "websocket" and "upgrade" in connection


def accept_upgrade(handler: Handler, headers: dict[str, str] | None = None) -> WebSocket:
    """Answer ``101 Switching Protocols`` and return the connection's WebSocket.

    Raises:
        ClientGone: if the client went away before the answer was sent.
    """
    from websockets.protocol import State
    from websockets.server import ServerProtocol
    from websockets.utils import accept_key

    key = handler.headers.get("Sec-WebSocket-Key", "")
    handler.close_connection = True  # no HTTP request follows on this connection
    handler.send_response(101)
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept_key(key))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    try:
        handler.end_headers()
        handler.wfile.flush()
    except OSError as error:
        raise ClientGone from error
    protocol = ServerProtocol(state=State.OPEN, max_size=None)
    return WebSocket(handler.connection, protocol)


class WebSocket:
    """One upgraded connection: messages in and out, a clean close, or a cut.

    Args:
        sock: The connection's socket.
        protocol: The ``websockets`` sans-I/O protocol, already open.
    """

    def __init__(self, sock: socket.socket, protocol: Protocol) -> None:
        self._sock = sock
        self._protocol = protocol
        self._messages: deque[str | bytes] = deque()
        self._parts: list[bytes] = []
        self._text = False
        self.closed = False
        """Whether the connection has ended (closed by either side, or cut)."""
        self.close_code: int | None = None
        """The code of the client's close frame, once it closed."""

    def receive(self, timeout: float, stopping: threading.Event) -> str | bytes | None:
        """The next message of the client, or ``None`` if none came within ``timeout`` s.

        Raises:
            ClientGone: if the client closed the connection (or it broke).
            Stopping: if the server is stopping.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._messages:
            if stopping.is_set():
                raise Stopping
            if self.closed:
                raise ClientGone
            step = deadline - time.monotonic()
            if step <= 0:
                return None
            try:
                pending = isinstance(self._sock, ssl.SSLSocket) and self._sock.pending()
                if not pending:
                    readable, _, _ = select.select([self._sock], [], [], step)
                    if not readable:
                        continue
                data = self._sock.recv(65536)
            except (OSError, ValueError) as error:
                self.closed = True
                raise ClientGone from error
            if not data:
                self.closed = True
                self._protocol.receive_eof()
                raise ClientGone
            self._protocol.receive_data(data)
            self._take_frames()
        return self._messages.popleft()

    def _take_frames(self) -> None:
        from websockets.frames import Frame, Opcode

        for frame in self._protocol.events_received():
            if not isinstance(frame, Frame):  # (an open protocol gives frames only)
                continue
            if frame.opcode is Opcode.CLOSE:
                self.close_code = (
                    self._protocol.close_rcvd.code if self._protocol.close_rcvd else None
                )
                self._flush()  # the answering close frame
                self.closed = True
            elif frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                if frame.opcode is not Opcode.CONT:
                    self._text = frame.opcode is Opcode.TEXT
                    self._parts = []
                self._parts.append(bytes(frame.data))
                if frame.fin:
                    data = b"".join(self._parts)
                    self._messages.append(data.decode() if self._text else data)
                    self._parts = []
            else:  # a ping: the protocol queued its pong
                self._flush()

    def send_text(self, text: str) -> None:
        """Send one text message.

        Raises:
            ClientGone: if the connection broke.
        """
        if self.closed:
            raise ClientGone
        self._protocol.send_text(text.encode())
        self._flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection cleanly (a close frame, then the socket)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._protocol.send_close(code, reason)
            self._flush()
        # the client may still be sending: read until it closes too (or a second passes),
        # so that its data unread here does not reset the connection before it reads ours
        deadline = time.monotonic() + 1.0
        with contextlib.suppress(OSError, ValueError):
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self._sock], [], [], left)
                if readable and not self._sock.recv(65536):
                    break
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def cut(self, *, reset: bool = False) -> None:
        """End the connection without a close frame (a dropped connection; RST if ``reset``)."""
        self.closed = True
        with contextlib.suppress(OSError):
            if reset:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._sock.shutdown(socket.SHUT_RDWR)

    def _flush(self) -> None:
        for data in self._protocol.data_to_send():
            if not data:
                continue  # (the protocol's sign to close the connection: the caller does)
            try:
                self._sock.sendall(data)
            except OSError as error:
                self.closed = True
                raise ClientGone from error
