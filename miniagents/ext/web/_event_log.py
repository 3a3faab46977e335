"""A web run's event log: its events in order, where each leaves its client, how a client resumes.

Every event a run streams is kept, in order, in the run's log; its SSE ``id`` is its position
in the log. A client follows a run from any position: it gets the events logged after it,
then each new one as it comes, so any number of clients follow one run, and a client that
reconnects with ``Last-Event-ID`` misses nothing and gets nothing twice.

**Where a client is, after a restart** (the log of a durable agent's run). A run made again
from its durable run's replay has its finished calls replayed (the same events, at the same
positions) but its unfinished ones made again, live: their events may differ from those a
client saw before the restart. So each event of such a log has an SSE id that says where it
leaves its client (an :class:`EventPlace`): between messages (the id is the position, as in
any log), or inside an *item* (a text message, a call's streaming input, a tool's streaming
output), which began at ``start``, is named ``names`` and whose events so far hash to
``digest``::

    4                                   between messages: the rest follows event 4 exactly
    4.1.1f0a3b9c.WyJ0ZXh0IiwicjEtMCJd   inside the text message r1-0 (since event 1)

A client that comes back inside an item that the log holds the same way (the same start,
names and digest: a replayed call, or the same log) goes on after its event. One whose item
the log does not hold so (a call made again, which said something else) gets its item
ended, as the protocol ends one, then the log's item again from its start, renamed
(``~<tag>``: the log's tag, new for each log) so that the page keeps the two apart, then the
rest: never a message of two calls spliced. The rename stays with that client's ids
(``~<tag>@<start>``), so a later reconnect renames alike. Which events open, go on with or
end an item, and how one is ended, is the protocol's (:class:`~._protocol.WebProtocol`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse

from miniagents.ext.web._http import error_response
from miniagents.ext.web._protocol import WebProtocol, json_text

__all__ = [
    "EventLog",
    "EventPlace",
    "EventPlaces",
    "Rename",
    "ResumePoint",
    "SeenPlace",
    "astart_position",
    "event_id",
    "parse_event_id",
    "sse",
    "start_position",
]

_POSITION = re.compile(r"\d{1,18}")
_RENAMED_KINDS = frozenset({"text", "output"})  # a call's id names its result and approval
_KINDS = frozenset({"text", "call", "output", "input"})
_EVENT_ID = re.compile(
    r"(\d{1,18})(?:~([0-9a-f]{1,32})@(\d{1,18}))?(?:\.(\d{1,18})\.([0-9a-f]{8})\.([A-Za-z0-9_-]{4,4000}))?"
)

LINE_END = "\n"
"""What ends each line of the streams (and, doubled, each event). The SSE standard allows
``\r\n`` too (sse-starlette's default), but the official AG-UI client
(``@ag-ui/client``'s ``HttpAgent``) splits events at ``\n\n`` only: with ``\r\n`` it
reads the whole stream as one event, and fails."""


def sse(data: str, event_id: str | None = None) -> ServerSentEvent:
    """One event of a stream: its data and SSE id, its lines ended with ``LINE_END``."""
    return ServerSentEvent(data, id=event_id, sep=LINE_END)


# -- where an event leaves its client ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventPlace:
    """Where an event leaves its client: inside an item (see the module docstring).

    Attributes:
        start: The position of the item's first event in its run.
        digest: The CRC-32 of the data of the item's events so far, as the run logs them.
        kind: ``"text"`` (a text message), ``"call"`` (a call's input, AG-UI), ``"output"``
            (a tool's output, AG-UI), ``"input"`` (a call's input, AI SDK).
        names: The item's ids, as its client knows them: a text message's id; a call's id
            (and, AI SDK, its tool's name); a tool output's nested run and message ids.
    """

    start: int
    digest: int
    kind: str
    names: tuple[str, ...]

    def renamed_names(self) -> tuple[str, ...]:
        """The names that a resend renames (never a call's id: its result and approval use it)."""
        return tuple(name for name in self.names if name) if self.kind in _RENAMED_KINDS else ()

    def with_names(self, mapping: Mapping[str, str]) -> EventPlace:
        """The place, its names mapped (a name not in ``mapping`` kept)."""
        if not mapping:
            return self
        names = tuple(mapping.get(name, name) for name in self.names)
        return EventPlace(self.start, self.digest, self.kind, names)


@dataclass(frozen=True, slots=True)
class Rename:
    """A client's names for the item that began at ``start``: the log's, each with ``~tag``."""

    tag: str
    start: int

    def of(self, name: str) -> str:
        """The client's name for the log's ``name``."""
        return f"{name}~{self.tag}"


@dataclass(frozen=True, slots=True)
class SeenPlace:
    """A client's ``Last-Event-ID`` read: its last event's position, rename and place."""

    position: int
    rename: Rename | None
    place: EventPlace | None


def event_id(position: int, rename: Rename | None, place: EventPlace | None) -> str:
    """The SSE id of the event at ``position`` of a durable app's run, for its client."""
    found = str(position)
    if rename is not None:
        found += f"~{rename.tag}@{rename.start}"
    if place is not None:
        found += f".{place.start}.{place.digest:08x}.{_encoded(place.kind, place.names)}"
    return found


@functools.lru_cache(maxsize=256)
def _encoded(kind: str, names: tuple[str, ...]) -> str:
    """An item's kind and names as the last field of an SSE id (the same for all its events)."""
    listed = json.dumps([kind, *names], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(listed.encode("utf-8", "replace")).decode().rstrip("=")


def parse_event_id(value: str) -> SeenPlace | None:
    """The place an :func:`event_id` says (``None``: it is not one)."""
    matched = _EVENT_ID.fullmatch(value)
    if matched is None:
        return None
    position, tag, renamed, start, digest, encoded = matched.groups()
    rename = Rename(tag, int(renamed)) if tag is not None else None
    if start is None:
        return SeenPlace(int(position), rename, None)
    try:
        names = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # (nested past what JSON reads)
        return None
    valid = isinstance(names, list) and len(names) >= 2 and names[0] in _KINDS
    if not valid or not all(isinstance(name, str) for name in names):
        return None
    place = EventPlace(int(start), int(digest, 16), names[0], tuple(names[1:]))
    if place.start > int(position):
        return None
    return SeenPlace(int(position), rename, place)


class EventPlaces:
    """The places of one log's events, as they are logged; how a client's item is ended.

    Each event's data is read (its JSON) for what it opens, goes on with, or ends (the
    protocol says which: :meth:`~._protocol.WebProtocol.item`): an item opens with its
    first event and ends with the first event that is not its own (its end, made once its
    message is whole: a whole message is a recorded one, replayed the same after a restart).
    """

    __slots__ = ("_open", "protocol")

    def __init__(self, protocol: WebProtocol) -> None:
        self.protocol = protocol
        self._open: EventPlace | None = None

    def place(self, position: int, data: str) -> EventPlace | None:
        """The place of the event ``data``, logged at ``position`` (``None``: between items)."""
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):  # (the AI SDK's [DONE]; nested past what JSON reads)
            event = None
        opened = self._open
        item = (
            self.protocol.item(event, None if opened is None else opened.names)
            if isinstance(event, dict)
            else None
        )
        if item == "same" and opened is None:
            item = None
        if item is None:
            self._open = None
        elif item == "same":
            if opened is not None:
                digest = zlib.crc32(data.encode(), opened.digest)
                self._open = EventPlace(opened.start, digest, opened.kind, opened.names)
        else:
            kind, names, goes_on = item
            if goes_on and opened is not None:  # (an AG-UI tool output's text message)
                digest = zlib.crc32(data.encode(), opened.digest)
                self._open = EventPlace(opened.start, digest, kind, names)
            else:
                self._open = EventPlace(position, zlib.crc32(data.encode()), kind, names)
        return self._open

    def closing(self, place: EventPlace) -> list[str]:
        """The events that end a client's item at ``place``, as the protocol ends one."""
        return self.protocol.closing(place.kind, place.names)

    def renamed(self, data: str, mapping: Mapping[str, str]) -> str:
        """The event ``data`` with the ids in ``mapping`` renamed (the same if it has none)."""
        if not any(name in data for name in mapping):
            return data
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):  # (not JSON, or nested past what JSON reads)
            return data
        if not isinstance(event, dict):
            return data
        changed = False
        for key in self.protocol.renamed_keys(event):
            value = event.get(key)
            if isinstance(value, str) and value in mapping:
                event[key] = mapping[value]
                changed = True
        return json_text(event, compact=self.protocol.compact) if changed else data


# -- the log -------------------------------------------------------------------------------------


class ResumePoint(int):
    """Where a client of a durable agent's run resumes: the position of its next event.

    Attributes:
        prelude: The events sent first, which end the client's item that the run does not
            hold as the client saw it (the last has the SSE id ``prelude_id``).
        prelude_id: The SSE id of the prelude's last event.
        rename: The client's names of an item of the run (see ``Rename``), if any.
    """

    prelude: tuple[str, ...]
    prelude_id: str | None
    rename: Rename | None

    def __new__(
        cls,
        position: int,
        rename: Rename | None = None,
        prelude: tuple[str, ...] = (),
        prelude_id: str | None = None,
    ) -> ResumePoint:
        """The point ``position``, with its ``rename`` and ``prelude``."""
        point = super().__new__(cls, position)
        point.rename = rename
        point.prelude = prelude
        point.prelude_id = prelude_id
        return point


class EventLog:
    """The events of one run (SSE data, in order) and, for a durable run, their places.

    ``key`` is the run's id (as its client names it). A *recovered* log is a durable run's,
    made again after a restart: it is refilled from the first event by the durable run's
    replay. ``tag`` names this log's renames.
    """

    __slots__ = (
        "_changed",
        "_tracker",
        "done",
        "ended_at",
        "events",
        "key",
        "places",
        "recovered",
        "size",
        "tag",
    )

    def __init__(
        self, key: str, places: EventPlaces | None, tag: str, *, recovered: bool = False
    ) -> None:
        self.key = key
        self.recovered = recovered
        self.tag = tag
        self.events: list[str] = []
        self.size = 0  # the bytes of its events (UTF-8), counted as they come
        self.done = False
        self.ended_at: float | None = None
        self._changed = asyncio.Event()
        self._tracker = places
        self.places: list[EventPlace | None] | None = None if places is None else []

    def append(self, data: str) -> None:
        """Log one more event (its id is its position; a durable run's says its place too).

        The event is measured (and placed) before it is kept: one that is not text (a
        protocol's bug) raises its ``TypeError`` and leaves the log as it was.
        """
        size = len(data) if str.isascii(data) else len(data.encode())  # (text, or TypeError)
        if self._tracker is not None and self.places is not None:
            self.places.append(self._tracker.place(len(self.events), data))
        self.events.append(data)
        self.size += size
        self._notify()

    def end(self) -> None:
        """The log ends here (its followers' responses end after its last event)."""
        if not self.done:
            self.done = True
            self.ended_at = asyncio.get_running_loop().time()
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def areached(self, count: int) -> None:
        """Wait until the log holds ``count`` events, or has ended."""
        while len(self.events) < count and not self.done:
            await self._changed.wait()

    async def areached_place(self, seen: SeenPlace) -> None:
        """Wait until the log can tell whether it holds the client's place ``seen``.

        That is once it holds the event after it, or has ended; for an event inside an
        item, also once the log's item at that start has ended before it (an item made
        again that said less).
        """
        wanted = seen.position + 1
        place = seen.place
        while len(self.events) < wanted and not self.done:
            if place is not None and self._ended_before(place.start):
                return
            await self._changed.wait()

    def _ended_before(self, start: int) -> bool:
        places = self.places
        if places is None or len(places) <= start:
            return False
        return any(place is None or place.start != start for place in places[start:])

    def unknown_event(self, last: str) -> JSONResponse:
        """The 400 of a ``Last-Event-ID`` that is no event of this log."""
        return error_response(
            400,
            "unknown_event_id",
            f"The Last-Event-ID {last!r} is not an event of the run {self.key!r} (its events "
            f"are numbered from 0 to {len(self.events) - 1}); reconnect without it to "
            "follow the run from its start.",
        )

    def resume_point(self, last: str) -> ResumePoint | JSONResponse:
        """Where the client whose last event had the SSE id ``last`` resumes (durable runs).

        After its event, if the log holds the client's place as the client saw it: between
        items, or inside an item the log holds with the same start, names and events (a
        replayed call's, or the same log's). Otherwise the client's item was made again
        (after a restart) and the log's says something else: the point's prelude ends the
        client's item, and the client gets the log's item again from its start, renamed
        with the log's tag (a new message for the page), then the rest.
        """
        seen = parse_event_id(last)
        tracker, places = self._tracker, self.places
        if seen is None or tracker is None or places is None:
            return self.unknown_event(last)
        position, client = seen.position, seen.place
        logged = places[position] if position < len(places) else None
        prelude: tuple[str, ...] = ()
        if client is None:  # between items, as the client saw the run
            if position >= len(places):
                return self.unknown_event(last)
            if logged is None or not self.recovered:
                return ResumePoint(position + 1, seen.rename)
            # inside an item of a log made again, though the client's id names none (a
            # bare position): that item again, whole and renamed; nothing to end
            start = logged.start
        else:
            mapping = self._mapping(seen.rename, client.start, position + 1)
            if (
                logged is not None
                and (logged.start, logged.digest, logged.kind)
                == (client.start, client.digest, client.kind)
                and logged.with_names(mapping).names == client.names
            ):
                return ResumePoint(position + 1, seen.rename)
            start, prelude = min(client.start, len(places)), tuple(tracker.closing(client))
        while (
            start < len(places) and (opened := places[start]) is not None and opened.start < start
        ):
            start = opened.start  # (never mid-item: the client gets the log's item whole)
        rename = Rename(self.tag, start)
        prelude_id = event_id(start - 1, rename, None) if start > 0 and prelude else None
        return ResumePoint(start, rename, prelude, prelude_id)

    def id_of(self, position: int) -> str:
        """The SSE id of the event at ``position`` (for a client that keeps the log's names)."""
        if self.places is None:
            return str(position)
        return event_id(position, None, self.places[position])

    def _mapping(self, rename: Rename | None, start: int, end: int) -> dict[str, str]:
        """The renames of the client's ``rename`` known from the log's events before ``end``."""
        mapping: dict[str, str] = {}
        places = self.places
        if rename is None or rename.start != start or places is None:
            return mapping
        for place in places[rename.start : end]:
            if place is None or place.start != rename.start:
                break
            for name in place.renamed_names():
                mapping[name] = rename.of(name)
        return mapping

    async def follow(self, start: int) -> AsyncIterator[ServerSentEvent]:
        """The events from ``start`` on: those logged, then each new one, to the log's end."""
        if self._tracker is not None:
            async for event in self._follow_places(start, self._tracker):
                yield event
            return
        position = start
        while True:
            changed = self._changed
            while position < len(self.events):
                yield sse(self.events[position], str(position))
                position += 1
            if self.done:
                return
            await changed.wait()

    async def _follow_places(
        self, start: int, tracker: EventPlaces
    ) -> AsyncIterator[ServerSentEvent]:
        """:meth:`follow` of a durable run: ids with places, the client's renames applied."""
        rename = start.rename if isinstance(start, ResumePoint) else None
        if isinstance(start, ResumePoint) and start.prelude:
            *first, last = start.prelude
            for data in first:
                yield sse(data)
            yield sse(last, start.prelude_id)
        position = int(start)
        mapping = {} if rename is None else self._mapping(rename, rename.start, position)
        places = self.places
        assert places is not None
        while True:
            changed = self._changed
            while position < len(self.events):
                data, place = self.events[position], places[position]
                if rename is not None:
                    if place is not None and place.start == rename.start:
                        for name in place.renamed_names():
                            mapping[name] = rename.of(name)
                    if mapping:
                        data = tracker.renamed(data, mapping)
                        place = None if place is None else place.with_names(mapping)
                yield sse(data, event_id(position, rename, place))
                position += 1
            if self.done:
                return
            await changed.wait()


def start_position(request: Request, log: EventLog) -> int | JSONResponse:
    """Where a client resumes: after its ``Last-Event-ID`` (from the start without one).

    In a durable agent's run, the position may be a :class:`ResumePoint` (see
    :meth:`EventLog.resume_point`).
    """
    last = request.headers.get("last-event-id")
    if last is None or last == "":
        return 0
    if log.places is not None:
        return log.resume_point(last)
    if _POSITION.fullmatch(last) is None or int(last) >= len(log.events):
        return log.unknown_event(last)
    return int(last) + 1


async def astart_position(request: Request, log: EventLog) -> int | JSONResponse:
    """:func:`start_position`, which in a recovered log waits for the log to hold the event.

    A log recovered after a restart replays its events from the first: the position is
    checked once the log has it (or the run has ended without it; or, for an event inside
    an item, once the log's item has ended before it).
    """
    last = request.headers.get("last-event-id")
    if log.recovered and last is not None:
        if log.places is not None:
            seen = parse_event_id(last)
            if seen is not None:
                await log.areached_place(seen)
        elif _POSITION.fullmatch(last) is not None:
            await log.areached(int(last) + 1)
    return start_position(request, log)
