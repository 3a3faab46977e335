"""The fake LLM server's side of each request: its script, its connections, its answers.

:class:`ScriptedApp` is what the HTTP server (``_http``) serves: it records each request
(``_record``), takes the script item for it, and has it rendered (``_respond``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from miniagents.testing._anthropic_batch_wire import AnthropicBatchAPI
from miniagents.testing._anthropic_wire import AnthropicWire
from miniagents.testing._batch_wire import BatchWire
from miniagents.testing._batches import FakeBatches
from miniagents.testing._bedrock_wire import BedrockWire
from miniagents.testing._compatible_wire import AZURE_PREFIX, COMPATIBLE_SERVERS, CompatibleWire
from miniagents.testing._gemini_batch_wire import GeminiBatchAPI
from miniagents.testing._gemini_live_wire import GeminiLiveWire
from miniagents.testing._gemini_wire import GeminiWire
from miniagents.testing._http import ClientGone, Exchange, Handler, Stopping, read_body
from miniagents.testing._live import LiveRecord, LiveRefusal, LiveSession, LiveWire, SpokenReply
from miniagents.testing._live import serve as serve_live
from miniagents.testing._openai_batch_wire import OpenAIBatchAPI
from miniagents.testing._openai_realtime_wire import OpenAIRealtimeWire
from miniagents.testing._openai_wire import OpenAIWire
from miniagents.testing._record import ProbedWait, RecordedRequest, Recorder
from miniagents.testing._respond import respond
from miniagents.testing._responses_wire import ResponsesWire
from miniagents.testing._script import Failure, Reply, check_script_count
from miniagents.testing._websocket import accept_upgrade, wants_upgrade
from miniagents.testing._wire import Wire, dumps
from miniagents.testing.errors import FakeLLMServerError, FakeLLMServerTimeout

__all__ = ["ScriptedApp"]

_STOP_SECONDS = 5.0
"""Seconds :meth:`ScriptedApp._drop_connections` waits, in all, for the handler threads."""

_WIRES: dict[str, Wire] = {
    "/chat/completions": OpenAIWire(),
    "/responses": ResponsesWire(),
    "/messages": AnthropicWire(),
    ":generateContent": GeminiWire(),
    ":streamGenerateContent": GeminiWire(),
    "/converse": BedrockWire(),
    "/converse-stream": BedrockWire(),
}
"""The wire format of each endpoint, by the end of its path."""

_DIALECTS: dict[str, Wire] = {
    **{f"/{server}/": CompatibleWire(server) for server in COMPATIBLE_SERVERS},
    AZURE_PREFIX: CompatibleWire("azure"),
}
"""The OpenAI-compatible servers' Chat Completions, by the start of the path."""


def _live_wire_of(route: str) -> tuple[LiveWire, int, int] | None:
    """The realtime API of an upgrade to ``route``, with its input and output sample rates."""
    if route.endswith("/realtime"):
        return OpenAIRealtimeWire(), 24000, 24000
    if route.endswith("BidiGenerateContent"):
        return GeminiLiveWire(), 16000, 24000
    return None


def _wire_of(route: str) -> Wire | None:
    """The wire format of a POST to ``route`` (its path), if it is an endpoint."""
    wire = next((wire for end, wire in _WIRES.items() if route.endswith(end)), None)
    if wire is not None and wire.provider == "openai" and route.endswith("/chat/completions"):
        return next(
            (dialect for start, dialect in _DIALECTS.items() if route.startswith(start)), wire
        )
    return wire


def _headers_of(handler: Handler) -> dict[str, str]:
    """The request's headers, their names lower-cased (as the records keep them)."""
    return {name.lower(): value for name, value in handler.headers.items()}


class ScriptedApp(Recorder):
    """A script of replies and failures, answering the requests of an HTTP server."""

    def __init__(self) -> None:
        super().__init__()
        self._script: deque[Reply | Failure] = deque()
        self._live_script: deque[SpokenReply] = deque()
        self._live_refusals: deque[LiveRefusal] = deque()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._open = 0  # connections accepted and not ended (see wait_connections_closed)
        self._probes: dict[tuple[str, int], bool] = {}  # a probe's address: accepted yet?
        self.stopping = threading.Event()
        self._ids = itertools.count(1)
        self.batches = FakeBatches(self._take, self._serial)
        """The batches the server was given (OpenAI's Batch API, Anthropic's Message
        Batches, Gemini's Batch API), and the test's say over how they run (see
        ``_batches``)."""
        self._batch_apis: tuple[BatchWire, ...] = (
            GeminiBatchAPI(self.batches),  # (first: it shares OpenAI's paths, see claims)
            OpenAIBatchAPI(self.batches),
            AnthropicBatchAPI(self.batches),
        )

    def _drop_connections(self) -> None:
        """Close every open connection, wait for its thread, and end every response."""
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _STOP_SECONDS  # (one wait for all, not one each)
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = sorted(thread.name for thread in connections.values() if thread.is_alive())
        if stuck:  # (a handler that heeds no stop: a bug of the fake, told as its errors)
            self.record_error(
                FakeLLMServerError(
                    f"{len(stuck)} handler thread(s) of the fake LLM server still ran "
                    f"{_STOP_SECONDS:g} s after stop() dropped their connections, and were "
                    f"left running: {', '.join(stuck)}. A handler must return once the "
                    "server is stopping (it waits on `stopping`)."
                )
            )
        with self._lock:
            for record in self._requests:
                record._finished.set()
            self._lock.notify_all()

    def _enqueue(
        self,
        item: Reply | Failure | SpokenReply | LiveRefusal,
        times: int,
        owner: str = "FakeLLMServer.reply()",
    ) -> None:
        """Script ``item`` ``times`` times: a reply, a realtime session's, or a refusal.

        Raises:
            FakeLLMServerError: if ``times`` is not a whole number of at least 1 (``owner``,
                the method that scripts the item, is named).
        """
        check_script_count(times, "times", owner, least=1)
        queue: deque[Any] = (
            self._live_refusals
            if isinstance(item, LiveRefusal)
            else self._live_script
            if isinstance(item, SpokenReply)
            else self._script
        )
        with self._lock:
            queue.extend([item] * times)

    def clear_script(self) -> None:
        """Drop the scripted items not used yet (the realtime sessions' too)."""
        with self._lock:
            self._script.clear()
            self._live_script.clear()
            self._live_refusals.clear()

    def _take_live(self, peek: bool, ahead: int = 0) -> SpokenReply | None:
        """The next scripted reply of a realtime session, taken off the script.

        With ``peek``, the one ``ahead`` places after the next (``0``: the next), left on
        the script (``None`` past its end).
        """
        with self._lock:
            if peek:
                return self._live_script[ahead] if ahead < len(self._live_script) else None
            return self._live_script.popleft() if self._live_script else None

    @property
    def pending(self) -> int:
        """How many scripted items are not used yet."""
        with self._lock:
            return len(self._script)

    def _take(self, model: str | None) -> Reply | Failure:
        """The first script item for ``model`` (taken off the script), else a default reply."""
        with self._lock:
            for item in self._script:
                if item.for_model is None or item.for_model == model:
                    self._script.remove(item)
                    return item
        return Reply()

    def _serial(self) -> int:
        return next(self._ids)

    # -- the handler threads' side (see miniagents.testing._http.App) ----------------------

    def register_connection(self, sock: socket.socket) -> bool:
        """Take a new connection; ``False`` if the server is stopping."""
        with self._lock:
            if self.stopping.is_set():
                return False
            self._connections[sock] = threading.current_thread()
            return True

    def unregister_connection(self, sock: socket.socket) -> None:
        """Forget a connection that ended."""
        with self._lock:
            self._connections.pop(sock, None)

    def connection_accepted(self, address: tuple[str, int]) -> None:
        """Count a connection accepted from ``address`` (before its handler thread starts)."""
        with self._lock:
            self._open += 1
            if address in self._probes:
                self._probes[address] = True
            self._lock.notify_all()

    def connection_ended(self) -> None:
        """Count a connection whose handler thread is done with it (closed)."""
        with self._lock:
            self._open -= 1
            self._lock.notify_all()

    def _expect_probe(self, address: tuple[str, int]) -> None:
        """Watch for the probe connection from ``address`` (see ``wait_connections_closed``)."""
        with self._lock:
            self._probes[address] = False

    def _closed_wait(self, address: tuple[str, int], timeout: float) -> ProbedWait[bool, None]:
        """The wait of ``wait_connections_closed`` for the probe from ``address`` (checked)."""

        def outcome(found: bool | None) -> None:
            with self._lock:
                self._probes.pop(address, None)
                still = self._open
            if found is None:
                raise FakeLLMServerTimeout(
                    f"{still} connection(s) to the fake server stayed open for {timeout:g} s: "
                    "a client still holds them. Stop or kill that client first."
                )

        return ProbedWait(self._lock, lambda: self._closed_since(address), timeout, outcome)

    def _closed_since(self, address: tuple[str, int]) -> bool | None:
        """``True`` once the probe from ``address`` was accepted and no connection is open."""
        return True if self._probes.get(address) and self._open == 0 else None

    def record_error(self, error: BaseException) -> None:
        """Keep an unexpected error of a handler thread (see ``errors``)."""
        with self._lock:
            self._errors.append(error)

    def handle(self, handler: Handler) -> None:
        """Record one request, and answer it."""
        target = urlsplit(handler.path)
        route = target.path.rstrip("/")
        if handler.command == "GET" and wants_upgrade(handler):
            self._hold_live(handler, route, target.query)
            return
        raw_body = read_body(handler)
        headers = _headers_of(handler)
        batch_api = next((api for api in self._batch_apis if api.claims(route, headers)), None)
        wire = _wire_of(route) if batch_api is None and handler.command == "POST" else None
        record, exchange = self._record(handler, raw_body, route, batch_api or wire)
        try:
            if batch_api is not None:
                batch_api.answer(
                    exchange, handler.command, route, target.query, record.headers, raw_body
                )
            elif wire is None:
                error = {"error": {"message": f"Unknown path {record.path}", "type": "not_found"}}
                exchange.send_body(404, dumps(error), {})
            else:
                respond(exchange, wire, record, self._take, self._serial)
            record.outcome = "cut" if record.outcome == "cut" else "complete"
            exchange.flush()  # the end of the response: recorded before the client sees it
        except ClientGone:
            record.outcome = "disconnected"
            record.client_disconnected = True
            record._set(record._disconnected)
            handler.close_connection = True
        except Stopping:
            record.outcome = "stopped"
            handler.close_connection = True
            exchange.cut(reset=False)
        finally:
            record._set(record._finished)

    def _record(
        self, handler: Handler, raw_body: bytes, route: str, wire: Wire | BatchWire | None
    ) -> tuple[RecordedRequest, Exchange]:
        """Record a request (waking who waits for one), and open the exchange that answers it."""
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        model, streamed = wire.route(route, body) if isinstance(wire, Wire) else (None, None)
        record = self._kept(
            self._requests,
            lambda index: RecordedRequest(
                index=index,
                method=handler.command,
                path=handler.path,
                headers=_headers_of(handler),
                raw_body=raw_body,
                body=body,
                provider=None if wire is None else wire.provider,
                model=model,
                streamed=streamed,
                _changed=self._lock,
            ),
        )
        exchange = Exchange(
            handler, self.stopping, lambda status: setattr(record, "status", status)
        )
        return record, exchange

    # -- realtime sessions (WebSocket) ------------------------------------------------------

    def _hold_live(self, handler: Handler, route: str, query: str) -> None:
        """Upgrade a realtime API's request to a WebSocket, and hold its session."""
        found = _live_wire_of(route)
        exchange = Exchange(handler, self.stopping)
        if found is None:
            error = {"error": {"message": f"Unknown path {handler.path}", "type": "not_found"}}
            exchange.send_body(404, dumps(error), {})
            exchange.flush()
            return
        wire, input_rate, output_rate = found
        with self._lock:
            refusal = self._live_refusals.popleft() if self._live_refusals else None
        if refusal is not None:
            refused: dict[str, object] = {
                "error": {
                    "message": refusal.message,
                    "type": "invalid_request_error",
                    "code": refusal.status,
                }
            }
            exchange.send_body(refusal.status, dumps(refused), {})
            exchange.flush()
            handler.close_connection = True
            return
        model = parse_qs(query).get("model", [None])[0]
        record = self._kept(
            self._live,
            lambda index: LiveRecord(
                index=index,
                provider=wire.provider,
                path=handler.path,
                headers=_headers_of(handler),
                model=model,
                _changed=self._lock,
            ),
        )
        session = LiveSession(
            wire,
            record,
            self._take_live,
            self._serial,
            input_rate=input_rate,
            output_rate=output_rate,
        )
        try:
            socket = accept_upgrade(handler)
            serve_live(socket, session, self.stopping)
        except ClientGone:
            record.note(lambda: setattr(record, "outcome", "closed"))
        except Stopping:
            record.note(lambda: setattr(record, "outcome", "stopped"))
