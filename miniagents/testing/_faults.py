"""The failure modes of the fake LLM server: HTTP errors, and replies that go wrong.

A ``Failure`` is an HTTP error response in the provider's format. A ``Reply`` may go wrong
after a given number of content events (text tokens and argument deltas) of its stream:

- ``cut_after``: the connection is closed (FIN, or RST with ``reset``) mid-body;
- ``hang_after``: nothing more is sent until the client leaves or the server stops;
- ``pause_after``: nothing more is sent until the test calls ``RecordedRequest.resume()``;
- ``error_event_after``: an error event, then the body ends cleanly;
- ``failed_after``: the event of a failed response (the Responses API's
  ``response.failed``; an error event for the others), then the body ends cleanly;
- ``malformed_after``: an event of truncated JSON, then the rest of the stream.

Not streamed, ``hang_after`` hangs before the status line, ``cut_after`` sends half the body
then closes, and ``malformed_after`` sends half the body as if it were whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from miniagents.testing._http import Exchange
from miniagents.testing._record import RecordedRequest
from miniagents.testing._script import Failure, Reply
from miniagents.testing._wire import Event, Rendering, Wire, dumps

__all__ = ["StreamFaults", "send_event", "send_failure", "send_single"]


def send_failure(exchange: Exchange, wire: Wire, failure: Failure, request_id: str) -> None:
    """Answer with the HTTP error ``failure`` (its body, or the provider's error body)."""
    payload: object = failure.body
    if payload is None:
        payload = wire.error_body(failure.status, failure.message, request_id)
    if isinstance(payload, str):
        payload = payload.encode()
    body = payload if isinstance(payload, bytes) else dumps(payload)
    headers = {
        **wire.id_headers(request_id),
        **wire.error_headers(failure.status),
        **failure.headers,
    }
    exchange.send_body(failure.status, body, headers)


def send_event(exchange: Exchange, wire: Wire, event: Event) -> None:
    """Send one event of a stream, framed as the wire format frames it."""
    exchange.send_chunk(wire.frame(event))


def send_single(
    exchange: Exchange, record: RecordedRequest, body: bytes, headers: dict[str, str]
) -> None:
    """Send a reply that is not streamed, with its faults."""
    reply = record.script
    assert isinstance(reply, Reply)
    if reply.hang_after is not None:
        exchange.wait(None)
        return
    if reply.malformed_after is not None:
        body = body[: len(body) // 2]
    head = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
    exchange.send_head(200, head)
    if reply.cut_after is not None:
        exchange.write(body[: len(body) // 2])
        record.outcome = "cut"
        exchange.cut(reset=reply.reset)
        return
    exchange.write(body)


@dataclass
class StreamFaults:
    """The faults of one streamed reply, struck when their number of events is reached.

    Attributes:
        total: How many content events the stream has (a fault after more strikes at the end).
    """

    exchange: Exchange
    wire: Wire
    record: RecordedRequest
    rendering: Rendering
    total: int

    def _due(self, after: int | None, sent: int) -> bool:
        return after is not None and min(after, self.total) == sent

    def strike(self, sent: int) -> bool:
        """Apply the faults due after ``sent`` content events; whether the stream is over."""
        reply, exchange = self.rendering.reply, self.exchange
        if self._due(reply.pause_after, sent):
            self.record._set(self.record._paused)
            exchange.wait(None, until=self.record._resumed)
        if self._due(reply.hang_after, sent):
            exchange.wait(None)
        if self._due(reply.cut_after, sent):
            self.record.outcome = "cut"
            exchange.cut(reset=reply.reset)
            return True
        if self._due(reply.error_event_after, sent):
            send_event(
                exchange, self.wire, self.wire.error_event(reply.error_type, reply.error_message)
            )
            exchange.end_chunks()
            return True
        if self._due(reply.failed_after, sent):
            failed = self.wire.failed_event(self.rendering, reply.error_type, reply.error_message)
            send_event(exchange, self.wire, failed)
            exchange.end_chunks()
            return True
        if self._due(reply.malformed_after, sent):
            send_event(exchange, self.wire, self.wire.malformed_event(self.rendering))
        return False
