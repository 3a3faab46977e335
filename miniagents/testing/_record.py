"""What the fake LLM server received: each request, and how its response ended."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from miniagents.messages.image import ImagePart
from miniagents.promising.lowlevel import loop_runs
from miniagents.testing._live import LiveRecord
from miniagents.testing._output_format import output_format
from miniagents.testing._script import (
    Failure,
    Provider,
    Reply,
    check_script_count,
    check_script_seconds,
)
from miniagents.testing._wire import turns
from miniagents.testing.errors import FakeLLMServerError, FakeLLMServerTimeout

__all__ = [
    "HANG_GUARD",
    "Outcome",
    "ProbedWait",
    "RecordedRequest",
    "Recorder",
    "check_wait",
]

HANG_GUARD = 60.0
"""The waiters' default timeout, in seconds: a guard against a hang, not a window that
decides a result (what a test waits for comes in time or never, however loaded the
machine; a test that waits for something not to happen gives its own short timeout)."""

T = TypeVar("T")
R = TypeVar("R")

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
        model: The model the request asks for (in its body, or its path for Gemini and
            Bedrock), if it names one.
        streamed: Whether the request asks for a streamed reply (see ``stream``).
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
    model: str | None = None
    streamed: bool | None = None
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _disconnected: threading.Event = field(default_factory=threading.Event, repr=False)
    _paused: threading.Event = field(default_factory=threading.Event, repr=False)
    _resumed: threading.Event = field(default_factory=threading.Event, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def json(self) -> dict[str, Any]:
        """The JSON body as an object (empty if the body was not a JSON object)."""
        return cast("dict[str, Any]", self.body) if isinstance(self.body, dict) else {}

    @property
    def output_format(self) -> dict[str, Any] | None:
        """The structured output the request asked for: ``{"name", "schema", "strict"}``.

        Read from Chat Completions ``response_format``, the Responses API's ``text.format``,
        Anthropic's ``output_config.format`` (``name`` ``None`` there, ``strict`` true),
        Gemini's ``generationConfig.responseJsonSchema`` (``name`` ``None``, ``strict``
        false) or Bedrock's ``outputConfig.textFormat`` (its schema a JSON text, parsed;
        ``strict`` false); ``None`` for a request that asked for none.
        """
        return output_format(self.json)

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The images the request's messages carry, in order, as ``ImagePart`` s.

        Read from each API's format: Chat Completions ``image_url`` parts, Responses
        ``input_image`` parts, Anthropic ``image`` blocks, Gemini ``inlineData`` and
        ``fileData`` parts and Bedrock ``image`` blocks (a data URL or base64 data gives
        the bytes and their media type back).

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
        """Whether the request asked for a streamed response (its body's ``stream``, or its
        endpoint: Gemini's ``streamGenerateContent``, Bedrock's ``converse-stream``)."""
        if self.streamed is not None:
            return self.streamed
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

    def _set(self, event: threading.Event) -> None:
        """Set one of the record's events, and wake those who wait for it (``_changed``)."""
        with self._changed:
            event.set()
            self._changed.notify_all()


KeptT = TypeVar("KeptT", RecordedRequest, LiveRecord)


class Recorder:
    """The requests a server received, and ways to wait for them (from a thread or a loop)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._live: list[LiveRecord] = []

    def _kept(self, records: list[KeptT], record_of: Callable[[int], KeptT]) -> KeptT:
        """A new record (made with its index) added to ``records``, waking who waits for one."""
        with self._lock:
            record = record_of(len(records))
            records.append(record)
            self._lock.notify_all()
        return record

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised in the server's handler threads (a bug of the fake),
        and a ``FakeLLMServerError`` naming those still running after ``stop()``."""
        with self._lock:
            return list(self._errors)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def realtime_sessions(self) -> list[LiveRecord]:
        """A snapshot of the realtime sessions held so far (WebSocket), in order."""
        with self._lock:
            return list(self._live)

    async def wait_realtime_async(
        self,
        index: int,
        until: Callable[[LiveRecord], bool] = lambda record: True,
        timeout: float = HANG_GUARD,
    ) -> LiveRecord:
        """Wait until realtime session ``index`` is open and ``until(record)`` holds.

        ``until`` is called under the server's lock, whenever the session's record changes
        (a message received, an event sent, its end).

        Raises:
            FakeLLMServerError: ``index`` is no index of a session (a negative number or no
                whole number) or ``timeout`` is no positive, finite number of seconds.
            FakeLLMServerTimeout: It did not happen within ``timeout`` seconds.
        """
        check_wait("index", index, timeout, "FakeLLMServer.wait_realtime_async()")

        def probe() -> LiveRecord | None:
            record = self._live[index]
            return record if until(record) else None

        def outcome(found: LiveRecord | None) -> LiveRecord:
            if found is None:
                raise FakeLLMServerTimeout(
                    f"Realtime session {index} did not come to the state the test waited for "
                    f"within {timeout:g} s."
                )
            return found

        return await ProbedWait(self._lock, probe, timeout, outcome).awaited()

    # -- the waiters: each a blocking method and its _async twin, over one ProbedWait --------
    #
    # Every waiter refuses, at once, a count or an index below 0 (a negative index would
    # name a request from the end, or none) and a timeout that is not a positive, finite
    # number of seconds (0 or less gives up before looking; NaN or inf broke the waiting
    # thread, and the _async twin then waited for ever).

    def wait_requests(self, count: int, timeout: float = HANG_GUARD) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests were received; return them all.

        Blocking (for a test's thread); see ``wait_requests_async`` inside an event loop.

        Raises:
            FakeLLMServerError: ``count`` is no whole number of at least 0, or ``timeout``
                no positive, finite number of seconds.
            FakeLLMServerTimeout: Fewer requests arrived within ``timeout`` seconds.
        """
        return self._requests_wait(count, timeout, "wait_requests").blocking()

    def wait_finished(self, index: int, timeout: float = HANG_GUARD) -> RecordedRequest:
        """Wait until the response to request ``index`` is over; return its record.

        Raises:
            FakeLLMServerError: ``index`` is no whole number of at least 0, or ``timeout``
                no positive, finite number of seconds.
            FakeLLMServerTimeout: The request did not arrive or its response did not end
                in time.
        """
        return self._finished_wait(index, timeout, "wait_finished").blocking()

    def wait_disconnected(self, index: int, timeout: float = HANG_GUARD) -> bool:
        """Wait until the client closed the connection of request ``index`` mid-response.

        Returns:
            ``True`` once the client disconnected before the end of the response; ``False``
            once the response ended otherwise first (it was sent whole, or the server cut,
            failed or stopped it), so the client can no longer close it mid-response.

        Raises:
            FakeLLMServerError: ``index`` is no whole number of at least 0, or ``timeout``
                no positive, finite number of seconds.
            FakeLLMServerTimeout: The request did not arrive, or its response went on with
                its connection open, for ``timeout`` seconds.
        """
        return self._disconnected_wait(index, timeout, "wait_disconnected").blocking()

    def wait_paused(self, index: int, timeout: float = HANG_GUARD) -> RecordedRequest:
        """Wait until the response to request ``index`` has paused (``pause_after``).

        Returns at once once it has paused (even if it was resumed and ended since).

        Raises:
            FakeLLMServerError: The response ended without pausing (raised as soon as it
                ended, not after ``timeout``); or ``index`` is no whole number of at least 0,
                or ``timeout`` no positive, finite number of seconds.
            FakeLLMServerTimeout: It neither paused nor ended within ``timeout`` seconds.
        """
        return self._paused_wait(index, timeout, "wait_paused").blocking()

    async def wait_requests_async(
        self, count: int, timeout: float = HANG_GUARD
    ) -> list[RecordedRequest]:
        """``wait_requests`` that lets the event loop run while it waits.

        Each ``*_async`` waiter waits in a thread of its own and wakes the loop when it is
        done, ``timeout`` in wall-clock seconds: it works on a virtual clock, stopped
        (``manual_time()``) or not, and does not hold it (the code under test may sleep
        meanwhile). Every waiter's default ``timeout`` (60 s) is a guard against a hang, not
        a window that decides a result: a loaded machine is slow, never wrong. Each raises
        what its blocking twin raises.
        """
        return await self._requests_wait(count, timeout, "wait_requests_async").awaited()

    async def wait_finished_async(self, index: int, timeout: float = HANG_GUARD) -> RecordedRequest:
        """``wait_finished`` that lets the event loop run while it waits."""
        return await self._finished_wait(index, timeout, "wait_finished_async").awaited()

    async def wait_disconnected_async(self, index: int, timeout: float = HANG_GUARD) -> bool:
        """``wait_disconnected`` that lets the event loop run while it waits."""
        return await self._disconnected_wait(index, timeout, "wait_disconnected_async").awaited()

    async def wait_paused_async(self, index: int, timeout: float = HANG_GUARD) -> RecordedRequest:
        """``wait_paused`` that lets the event loop run while it waits.

        Raises:
            FakeLLMServerError: The response ended without pausing (raised as soon as it
                ended, not after ``timeout``); or ``index`` or ``timeout`` is refused (see
                ``wait_paused``).
            FakeLLMServerTimeout: It neither paused nor ended within ``timeout`` seconds.
        """
        return await self._paused_wait(index, timeout, "wait_paused_async").awaited()

    def _requests_wait(
        self, count: int, timeout: float, waiter: str
    ) -> ProbedWait[list[RecordedRequest], list[RecordedRequest]]:
        """The wait of ``wait_requests`` (its arguments checked)."""
        check_wait("count", count, timeout, f"FakeLLMServer.{waiter}()")

        def outcome(found: list[RecordedRequest] | None) -> list[RecordedRequest]:
            if found is None:
                raise FakeLLMServerTimeout(
                    f"The fake server received {len(self.requests)} requests within "
                    f"{timeout:g} s, and the test expected {count}."
                )
            return found

        def probe() -> list[RecordedRequest] | None:
            return list(self._requests) if len(self._requests) >= count else None

        return ProbedWait(self._lock, probe, timeout, outcome, f"FakeLLMServer.{waiter}")

    def _finished_wait(
        self, index: int, timeout: float, waiter: str
    ) -> ProbedWait[RecordedRequest, RecordedRequest]:
        """The wait of ``wait_finished`` (its arguments checked)."""
        check_wait("index", index, timeout, f"FakeLLMServer.{waiter}()")
        what = f"The response to request {index} was not over"
        return ProbedWait(
            self._lock,
            lambda: self._ended(index, finished=True),
            timeout,
            lambda found: _found(found, what, timeout),
            f"FakeLLMServer.{waiter}",
        )

    def _disconnected_wait(
        self, index: int, timeout: float, waiter: str
    ) -> ProbedWait[RecordedRequest, bool]:
        """The wait of ``wait_disconnected`` (its arguments checked)."""
        check_wait("index", index, timeout, f"FakeLLMServer.{waiter}()")
        what = (
            f"The client did not close the connection of request {index}, nor did its response end,"
        )
        return ProbedWait(
            self._lock,
            lambda: self._ended(index),
            timeout,
            lambda found: _found(found, what, timeout)._disconnected.is_set(),
            f"FakeLLMServer.{waiter}",
        )

    def _paused_wait(
        self, index: int, timeout: float, waiter: str
    ) -> ProbedWait[RecordedRequest, RecordedRequest]:
        """The wait of ``wait_paused`` (its arguments checked)."""
        check_wait("index", index, timeout, f"FakeLLMServer.{waiter}()")

        def outcome(found: RecordedRequest | None) -> RecordedRequest:
            record = _found(found, f"The response to request {index} did not pause", timeout)
            if not record._paused.is_set():
                raise FakeLLMServerError(
                    f"The response to request {index} ended ({record.outcome}) without "
                    "pausing, so it never will. Script the reply it takes with pause_after= "
                    "(a count the stream reaches), or wait for its end with wait_finished()."
                )
            return record

        return ProbedWait(
            self._lock,
            lambda: self._paused_or_over(index),
            timeout,
            outcome,
            f"FakeLLMServer.{waiter}",
        )

    def _paused_or_over(self, index: int) -> RecordedRequest | None:
        """The record of request ``index`` once it has paused or its response is over."""
        record = self._requests[index]
        return record if record._paused.is_set() or record.finished else None

    def _ended(self, index: int, *, finished: bool = False) -> RecordedRequest | None:
        record = self._requests[index]
        if record.finished or (not finished and record._disconnected.is_set()):
            return record
        return None


@dataclass(frozen=True)
class ProbedWait(Generic[T, R]):
    """A wait for what ``probe`` finds under ``lock``, and what it comes to: one plan for a
    blocking waiter and its ``_async`` twin (the recorder's and the batches').

    Attributes:
        lock: The lock the probe is read under, notified when what it reads changes.
        probe: What the wait is for (``None`` until it comes; an ``IndexError``: not yet).
        timeout: Its most seconds (wall-clock).
        outcome: What the waiter returns (or raises) of what the probe found (``None``:
            it did not come within ``timeout``).
        waiter: The blocking waiter, e.g. ``"FakeLLMServer.wait_requests"`` (its ``_async``
            twin is named after it); ``""``: it may block an event loop's thread.
    """

    lock: threading.Condition
    probe: Callable[[], T | None]
    timeout: float
    outcome: Callable[[T | None], R]
    waiter: str = ""

    def blocking(self) -> R:
        """The outcome, waited for in the caller's thread.

        Raises:
            FakeLLMServerTimeout: What it waits for did not come in time; when an event loop
                runs in this thread (blocked meanwhile, the code under test could not go on),
                it names the ``_async`` twin to await instead.
        """
        found = _wait_probed(self.lock, self.probe, self.timeout)
        if found is not None or not self.waiter or not loop_runs():
            return self.outcome(found)
        try:
            return self.outcome(found)
        except FakeLLMServerTimeout as timeout:
            owner, name = self.waiter.rsplit(".", 1)
            raise FakeLLMServerTimeout(
                f"{timeout} {owner}.{name}() blocked the event loop that runs in this thread "
                "meanwhile, so the code under test could not go on: in async code, await its "
                f"twin, `await server.{name}_async(...)` (same arguments)."
            ) from None

    async def awaited(self) -> R:
        """The outcome, waited for in a thread of its own while the event loop runs."""
        return self.outcome(await _wait_probed_async(self.lock, self.probe, self.timeout))


def check_wait(name: str, value: object, timeout: object, owner: str) -> None:
    """Refuse a waiter's count or index, or its timeout, that it could not wait with.

    ``name`` is ``"count"`` or ``"index"``: a whole number of at least 0; ``timeout``: a
    positive, finite number of seconds; ``owner``: the waiter (``"FakeBatches.wait_created()"``).

    Raises:
        FakeLLMServerError: naming the argument, the waiter and what it takes.
    """
    why = (
        "a count below 0 is reached at once, and one of another type breaks the wait"
        if name == "count"
        else "an index below 0 would name a record from the end, and one of another type "
        "breaks the wait"
    )
    check_script_count(value, name, owner, why=why)
    check_script_seconds(timeout, "timeout", owner, positive=True)


def _found(found: RecordedRequest | None, what: str, timeout: float) -> RecordedRequest:
    """``found``, or the timeout of a wait for it (``what`` did not happen)."""
    if found is None:
        raise FakeLLMServerTimeout(f"{what} within {timeout:g} s.")
    return found


def _wait_probed(
    lock: threading.Condition,
    probe: Callable[[], T | None],
    timeout: float,
    gave_up: Callable[[], bool] = lambda: False,
) -> T | None:
    """What ``probe`` gives (under ``lock``) once it gives something, else ``None``.

    ``None`` after ``timeout`` seconds, or once ``gave_up`` (checked when woken). The
    recorder's waits and the batches' are this one, each on its own lock.
    """
    found: T | None = None

    def seen() -> bool:
        nonlocal found
        try:
            found = probe()
        except IndexError:  # that request has not come yet
            found = None
        return found is not None or gave_up()

    with lock:
        lock.wait_for(seen, timeout)
    return found


async def _wait_probed_async(
    lock: threading.Condition, probe: Callable[[], T | None], timeout: float
) -> T | None:
    """``_wait_probed`` in a thread of its own (not an executor's: it holds no virtual clock)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T | None] = loop.create_future()
    gave_up = threading.Event()

    def wait() -> None:
        found = _wait_probed(lock, probe, timeout, gave_up.is_set)
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
            loop.call_soon_threadsafe(_settle, done, found)

    threading.Thread(target=wait, name="fake-llm-server-wait", daemon=True).start()
    try:
        return await done
    finally:  # given up (cancelled): the thread ends now
        gave_up.set()
        with lock:
            lock.notify_all()


def _settle(future: asyncio.Future[T], result: T) -> None:
    if not future.done():  # not given up on meanwhile
        future.set_result(result)


def _image(part: dict[str, Any]) -> ImagePart | None:
    """The image of a content part of any of the APIs (``None`` for another part)."""
    kind = part.get("type")
    if kind == "image_url":
        given = part.get("image_url") or {}
        return ImagePart(url=given.get("url"), detail=given.get("detail"))
    if kind == "input_image":
        return ImagePart(url=part.get("image_url"), detail=part.get("detail"))
    inline = part.get("inlineData", part.get("inline_data"))  # Gemini's (either case)
    if isinstance(inline, dict):
        media_type = inline.get("mimeType", inline.get("mime_type"))
        return ImagePart(data=inline.get("data"), media_type=media_type)
    given = part.get("fileData", part.get("file_data"))
    if isinstance(given, dict):
        return ImagePart(url=given.get("fileUri", given.get("file_uri")))
    bedrock = part.get("image")  # Bedrock's content blocks
    if kind is None and isinstance(bedrock, dict):
        source = bedrock.get("source") or {}
        return ImagePart(data=source.get("bytes"), media_type=f"image/{bedrock.get('format')}")
    if kind == "image":
        source = part.get("source") or {}
        if source.get("type") == "base64":
            return ImagePart(data=source.get("data"), media_type=source.get("media_type"))
        return ImagePart(url=source.get("url"))
    return None
