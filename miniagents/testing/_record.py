"""What the fake LLM server received: each request, and how its response ended."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from miniagents.messages.image import ImagePart
from miniagents.testing._http import POLL_INTERVAL
from miniagents.testing._output_format import output_format
from miniagents.testing._script import Failure, Provider, Reply
from miniagents.testing._wire import turns
from miniagents.testing.errors import FakeLLMServerTimeout

__all__ = ["Outcome", "RecordedRequest", "Recorder"]

Outcome = Literal[
    "pending",  # the response is still being sent
    "complete",  # the whole response was sent (an error status, or a stream ended cleanly)
    "cut",  # the server closed the connection mid-response (cut_after)
    "disconnected",  # the client closed the connection before the end of the response
    "stopped",  # the server was stopped while the response was still going (e.g. hang_after)
]
"""How the response to a recorded request ended."""


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
    _paused: threading.Event = field(default_factory=threading.Event, repr=False)
    _resumed: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def json(self) -> dict[str, Any]:
        """The JSON body as an object (empty if the body was not a JSON object)."""
        return cast("dict[str, Any]", self.body) if isinstance(self.body, dict) else {}

    @property
    def output_format(self) -> dict[str, Any] | None:
        """The structured output the request asked for: ``{"name", "schema", "strict"}``.

        Read from Chat Completions ``response_format``, the Responses API's ``text.format``
        or Anthropic's ``output_config.format`` (``name`` ``None`` there, ``strict`` true);
        ``None`` for a request that asked for none.
        """
        return output_format(self.json)

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The images the request's messages carry, in order, as ``ImagePart`` s.

        Read from each API's format: Chat Completions ``image_url`` parts, Responses
        ``input_image`` parts, Anthropic ``image`` blocks (a data URL or a base64 source
        gives the bytes and their media type back).

        Raises:
            pydantic.ValidationError: for an image that is not one (the server refused
                the request with a 400).
        """
        found: list[ImagePart] = []
        for message in turns(self.json):
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                image = _image(part) if isinstance(part, dict) else None
                if image is not None:
                    found.append(image)
        return tuple(found)

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed response."""
        return self.json.get("stream") is True

    @property
    def finished(self) -> bool:
        """Whether the response is over (whatever its outcome)."""
        return self._finished.is_set()

    @property
    def paused(self) -> bool:
        """Whether the response is paused (``pause_after``) and not resumed yet."""
        return self._paused.is_set() and not self._resumed.is_set()

    def resume(self) -> None:
        """Let a response paused by ``pause_after`` go on (at once if it has not paused yet)."""
        self._resumed.set()


class Recorder:
    """The requests a server received, and ways to wait for them (from a thread or a loop)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []

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
            FakeLLMServerTimeout: Fewer requests arrived within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise FakeLLMServerTimeout(
                    f"{len(self._requests)} requests received, expected {count}"
                )
            return list(self._requests)

    def wait_finished(self, index: int, timeout: float = 5.0) -> RecordedRequest:
        """Wait until the response to request ``index`` is over; return its record.

        Raises:
            FakeLLMServerTimeout: The request did not arrive or its response did not end
                in time.
        """
        deadline = time.monotonic() + timeout
        record = self.wait_requests(index + 1, timeout)[index]
        if not record._finished.wait(max(0.0, deadline - time.monotonic())):
            raise FakeLLMServerTimeout(f"the response to request {index} is not over")
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
        except FakeLLMServerTimeout:
            return False
        while True:
            if record._disconnected.is_set():
                return True
            remaining = deadline - time.monotonic()
            if record._finished.is_set() or remaining <= 0:
                return record._disconnected.is_set()
            record._disconnected.wait(min(remaining, POLL_INTERVAL))

    async def wait_requests_async(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """``wait_requests`` that lets the event loop run while it waits."""
        if count <= 0:
            return self.requests
        record = await self._poll(lambda: self._requests[count - 1], timeout)
        if record is None:
            with self._lock:
                received = len(self._requests)
            raise FakeLLMServerTimeout(f"{received} requests received, expected {count}")
        return self.requests

    async def wait_disconnected_async(self, index: int, timeout: float = 5.0) -> bool:
        """``wait_disconnected`` that lets the event loop run while it waits."""
        record = await self._poll(lambda: self._ended(index), timeout)
        return record is not None and record._disconnected.is_set()

    async def wait_finished_async(self, index: int, timeout: float = 5.0) -> RecordedRequest:
        """``wait_finished`` that lets the event loop run while it waits."""
        record = await self._poll(lambda: self._ended(index, finished=True), timeout)
        if record is None:
            raise FakeLLMServerTimeout(f"the response to request {index} is not over")
        return record

    async def wait_paused_async(self, index: int, timeout: float = 5.0) -> RecordedRequest:
        """Wait until the response to request ``index`` has paused (``pause_after``).

        Raises:
            FakeLLMServerTimeout: It did not pause within ``timeout`` seconds.
        """
        record = await self._poll(lambda: self._state(index, "_paused"), timeout)
        if record is None:
            raise FakeLLMServerTimeout(f"the response to request {index} did not pause")
        return record

    def _state(self, index: int, event: str) -> RecordedRequest | None:
        record = self._requests[index]
        return record if cast(threading.Event, getattr(record, event)).is_set() else None

    def _ended(self, index: int, *, finished: bool = False) -> RecordedRequest | None:
        record = self._requests[index]
        if record.finished or (not finished and record._disconnected.is_set()):
            return record
        return None

    async def _poll(
        self, probe: Callable[[], RecordedRequest | None], timeout: float
    ) -> RecordedRequest | None:
        """Call ``probe`` (under the lock) until it gives a record, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                try:
                    found = probe()
                except IndexError:  # that request has not come yet
                    found = None
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(POLL_INTERVAL)


def _image(part: dict[str, Any]) -> ImagePart | None:
    """The image of a content part of any of the APIs (``None`` for another part)."""
    kind = part.get("type")
    if kind == "image_url":
        given = part.get("image_url") or {}
        return ImagePart(url=given.get("url"), detail=given.get("detail"))
    if kind == "input_image":
        return ImagePart(url=part.get("image_url"), detail=part.get("detail"))
    if kind == "image":
        source = part.get("source") or {}
        if source.get("type") == "base64":
            return ImagePart(data=source.get("data"), media_type=source.get("media_type"))
        return ImagePart(url=source.get("url"))
    return None
