"""The runs of a durable agent's app: found again, and replayed, after the app restarts.

When the served agent is durable (``durable(agent)`` of ``miniagents.ext.dbos``), each job
the app starts is a durable run whose workflow id names the job: the protocol, then the
job's key (the AG-UI run id, the AI SDK chat id) and its group (the AG-UI thread, the AI
SDK message id), as a JSON list, so that the key can be found by the id's prefix::

    ag-ui:["r1","t1"]          the run r1 of the thread t1
    ai-sdk:["chat-7","msg-0a"] the assistant message msg-0a of the chat chat-7

After a restart, a request for a job the app does not know finds its run by the key (or
the thread), and the job is made again from the run's replay: the same events, in the same
order, so a client's ``Last-Event-ID`` keeps its place. Where a job paused for approvals
and was resumed, the app notes with the run, before the decisions are given, where the
pause was and the run the job went on in (``web.pause.<n>``, see :class:`PausePoint`):
the replay pauses there too and goes on at once in that run, so each run (the paused one,
the one that resumed it) has its events numbered as they were. The AG-UI run that resumed
a job is recorded as a name of the durable run (``ag-ui:<runId>``), so that it is found
by its own id. The app launches DBOS at its start
in a ``MiniAgents`` context of its own, in which the runs that the restart stopped are
recovered (not in the first request's); at its end, those nobody came back for are
cancelled (they stay recorded, and are recovered again at the next start).

**Where a client is, after a restart.** A run made again from its replay has its finished
calls replayed (the same events, at the same positions) but its unfinished ones made again,
live: their events may differ from those a client saw before the restart. So each event of
a durable app's run has an SSE id that says where it leaves its client (an
:class:`EventPlace`): between messages (the id is the position, as in any app), or inside
an *item* (a text message, a call's streaming input, a tool's streaming output), which
began at ``start``, is named ``names`` and whose events so far hash to ``digest``::

    4                                   between messages: the rest follows event 4 exactly
    4.1.1f0a3b9c.WyJ0ZXh0IiwicjEtMCJd   inside the text message r1-0 (since event 1)

A client that comes back inside an item that the run's log holds the same way (the same
start, names and digest: a replayed call, or the same log) goes on after its event. One
whose item the log does not hold so (a call made again, which said something else) gets
its item ended, as the protocol ends one (:meth:`EventPlaces.closing`), then the log's
item again from its start, renamed (``~<tag>``: the job's tag, new for each log) so that
the page keeps the two apart, then the rest: never a message of two calls spliced. The
rename stays with that client's ids (``~<tag>@<start>``), so a later reconnect renames
alike.

``miniagents.ext.dbos`` is imported only for a durable agent (which it made).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import functools
import json
import re
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ag_ui.core import BaseEvent, SubagentFinishedEvent, TextMessageEndEvent, ToolCallEndEvent

from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.promising.lowlevel import spawn

__all__ = [
    "DurableJobs",
    "EventPlace",
    "EventPlaces",
    "FoundRun",
    "PausePoint",
    "Rename",
    "SeenPlace",
    "WebProtocol",
    "event_id",
    "parse_event_id",
]

WebProtocol: TypeAlias = Literal["ag-ui", "ai-sdk"]
"""The protocol an app speaks."""

_PAUSE_NOTE = "web.pause."


@dataclass(frozen=True)
class PausePoint:
    """Where a job paused (at the call ``at``, ``waiting`` listed) and the run it went on in."""

    run: str
    at: str
    waiting: tuple[str, ...]

    def note(self) -> dict[str, object]:
        """The point as a JSON note."""
        return {"run": self.run, "at": self.at, "waiting": list(self.waiting)}

    @classmethod
    def of_note(cls, note: object) -> PausePoint | None:
        """The point a note holds (``None`` if it holds none)."""
        if not isinstance(note, dict):
            return None
        run, at, waiting = note.get("run"), note.get("at"), note.get("waiting")
        if not (isinstance(run, str) and isinstance(at, str) and isinstance(waiting, list)):
            return None
        return cls(run, at, tuple(str(call) for call in waiting))


@dataclass(frozen=True)
class FoundRun:
    """A job's durable run, found by its key or group."""

    workflow_id: str
    key: str
    group: str
    ended: bool
    decided: frozenset[str]  # the calls whose decisions are recorded (replayed, never asked)
    pauses: tuple[PausePoint, ...] = ()  # the pauses it was resumed from, in order
    cancelled: bool = False  # given up on (its replay stops where it was cancelled)


def _pauses(notes: Mapping[str, object]) -> tuple[PausePoint, ...]:
    """The pause points noted with a run, in order (up to the first one missing)."""
    found: list[PausePoint] = []
    while (point := PausePoint.of_note(notes.get(f"{_PAUSE_NOTE}{len(found)}"))) is not None:
        found.append(point)
    return tuple(found)


class _AppStopped(Exception):
    """Ends the app's recovery context with its recovered runs cancelled, not awaited."""


class DurableJobs:
    """The durable runs of one app's jobs (see the module docstring)."""

    __slots__ = ("_agent", "_launched", "_owner", "_prefix", "_ready", "protocol")

    def __init__(self, agent: MiniAgent[..., Message], protocol: WebProtocol) -> None:
        self._agent = agent
        self.protocol: WebProtocol = protocol
        self._prefix = f"{protocol}:"
        self._launched = False  # in the app's context (its lifespan's, or its own task's)
        self._owner: asyncio.Task[None] | None = None  # that task, for a mounted app
        self._ready: asyncio.Future[None] | None = None

    @classmethod
    def of(cls, agent: MiniAgent[..., Message], protocol: WebProtocol) -> DurableJobs | None:
        """The durable runs of ``agent``'s jobs, or ``None`` if it is not durable."""
        if "miniagents.ext.dbos" not in sys.modules:  # only it makes durable agents
            return None
        from miniagents.ext.dbos import is_durable

        return cls(agent, protocol) if is_durable(agent) else None

    def places(self) -> EventPlaces:
        """A new tracker of the places of one run's events (see the module docstring)."""
        return EventPlaces(self.protocol)

    def workflow_id(self, key: str, group: str) -> str:
        """The workflow id of the job ``key`` of ``group``."""
        return self._prefix + json.dumps([key, group])

    def _parsed(self, workflow_id: str) -> tuple[str, str] | None:
        try:
            parts = json.loads(workflow_id.removeprefix(self._prefix))
        except ValueError:
            return None
        if isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts):
            return parts[0], parts[1]
        return None

    def started(
        self, workflow_id: str, messages: list[Message], kwargs: Mapping[str, object]
    ) -> MessageSequencePromise[Message]:
        """A new job's reply: the agent's durable run named ``workflow_id``."""
        from miniagents.ext.dbos import workflow_id as named

        with named(workflow_id):
            return self._agent.inquire(messages, **kwargs)

    def replayed(self, workflow_id: str) -> MessageSequencePromise[Message]:
        """A found job's reply again, from its first token (see ``miniagents.ext.dbos.replay``)."""
        from miniagents.ext.dbos import replay

        return replay(self._agent, workflow_id)

    def abandon(self, workflow_id: str) -> None:
        """Cancel the run of a job given up on: the next start does not recover it."""
        from miniagents.ext.dbos import acancel_run

        spawn(acancel_run(self._agent, workflow_id), f"cancel the durable run {workflow_id}")

    async def afind(
        self, *, key: str | None = None, group: str | None = None, running_only: bool = False
    ) -> FoundRun | None:
        """The newest job's run of ``key`` (and of ``group``, if given), if there is one."""
        from miniagents.ext.dbos import afind_runs

        prefix = self._prefix + (json.dumps([key])[:-1] + "," if key is not None else "")
        found = await afind_runs(self._agent, prefix, running_only=running_only)
        for run in found:
            parsed = self._parsed(run.workflow_id)
            if parsed is not None and (group is None or parsed[1] == group):
                return FoundRun(
                    run.workflow_id,
                    parsed[0],
                    parsed[1],
                    run.ended,
                    run.decided,
                    _pauses(run.notes),
                    run.cancelled,
                )
        return None

    async def afind_named(self, name: str) -> FoundRun | None:
        """The run of the job that went on in the run ``name`` after a pause, if recorded."""
        from miniagents.ext.dbos import arun_named

        workflow_id = await arun_named(self._agent, self._prefix + name)
        parsed = None if workflow_id is None else self._parsed(workflow_id)
        if parsed is None:
            return None
        found = await self.afind(key=parsed[0], group=parsed[1])
        return found if found is not None and found.workflow_id == workflow_id else None

    async def anote_pause(
        self, workflow_id: str, index: int, point: PausePoint, *, named: bool
    ) -> None:
        """Note that the job paused (its ``index``-th pause) at ``point``, and goes on.

        ``named``: the run it goes on in is recorded as a name of the durable run too.
        """
        from miniagents.ext.dbos import aname_run, anote_run

        await anote_run(self._agent, workflow_id, {f"{_PAUSE_NOTE}{index}": point.note()})
        if named:
            await aname_run(self._agent, self._prefix + point.run, workflow_id)

    @staticmethod
    def stopped_there(error: Exception) -> bool:
        """Whether ``error`` is a replay's, where the run's record stops (it was cancelled)."""
        from miniagents.ext.dbos import DurableError

        return type(error) is DurableError

    @asynccontextmanager
    async def recovering(
        self, context: Callable[[], MiniAgents], before_stop: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[None]:
        """The app's life: DBOS launched in a context of the app's own, which ends with it.

        ``before_stop`` runs first at the end (the app's jobs are cancelled).
        """
        from miniagents.ext.dbos import arecover

        try:
            async with context():
                await arecover(self._agent)
                self._launched = True
                try:
                    yield
                finally:
                    self._launched = False
                await before_stop()
                raise _AppStopped
        except _AppStopped:
            pass

    async def aready(
        self, context: Callable[[], MiniAgents], before_stop: Callable[[], Awaitable[None]]
    ) -> None:
        """(For each request.) DBOS launched in the app's context, by the first if need be.

        A mounted app's first request launches it, as :meth:`recovering` does, in a task of
        the app's own (see the module docstring).

        Raises:
            DurableDatabaseError: if DBOS cannot be launched (the next request tries again).
        """
        if self._launched:
            return
        if self._owner is None or self._ready is None:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def own() -> None:
                async with self.recovering(context, before_stop):
                    ready.set_result(None)
                    await asyncio.get_running_loop().create_future()  # until the loop ends

            what = f"the durable runs of the mounted {self._prefix[:-1]} app"
            self._owner = contextvars.Context().run(spawn, own(), what)  # (no request's)
            self._ready = ready
        owner, ready = self._owner, self._ready
        await asyncio.wait({owner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():  # the launch failed: the next request tries again
            self._owner = self._ready = None
            await owner  # its error


# -- where an event leaves its client (see the module docstring) -------------------------------

_RENAMED_KINDS = frozenset({"text", "output"})  # a call's id names its result and approval
_KINDS = frozenset({"text", "call", "output", "input"})
_EVENT_ID = re.compile(
    r"(\d{1,18})(?:~([0-9a-f]{1,32})@(\d{1,18}))?(?:\.(\d{1,18})\.([0-9a-f]{8})\.([A-Za-z0-9_-]{4,4000}))?"
)
_AGUI_NAMED = ("messageId", "parentMessageId", "subagentRunId")
_RESTARTED = (
    "The server restarted while the model wrote this call; the model was asked again, and "
    "its new answer follows."
)


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
    return base64.urlsafe_b64encode(listed.encode()).decode().rstrip("=")


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
    except (ValueError, binascii.Error):
        return None
    valid = isinstance(names, list) and len(names) >= 2 and names[0] in _KINDS
    if not valid or not all(isinstance(name, str) for name in names):
        return None
    place = EventPlace(int(start), int(digest, 16), names[0], tuple(names[1:]))
    if place.start > int(position):
        return None
    return SeenPlace(int(position), rename, place)


class EventPlaces:
    """The places of one run's events, as they are logged; how a client's item is ended.

    Each event's data is read (its JSON) for what it opens, goes on with, or ends: an item
    opens with its first event (``TEXT_MESSAGE_START``, ``TOOL_CALL_START``,
    ``SUBAGENT_STARTED``; ``text-start``, ``tool-input-start``) and ends with the first
    event that is not its own (its end, made once its message is whole: a whole message is
    a recorded one, replayed the same after a restart).
    """

    __slots__ = ("_open", "_protocol")

    def __init__(self, protocol: WebProtocol) -> None:
        self._protocol = protocol
        self._open: EventPlace | None = None

    def place(self, position: int, data: str) -> EventPlace | None:
        """The place of the event ``data``, logged at ``position`` (``None``: between items)."""
        try:
            event = json.loads(data)
        except ValueError:  # (the AI SDK's [DONE])
            event = None
        opened = self._open
        item = self._item(event, opened) if isinstance(event, dict) else None
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

    def _item(
        self, event: dict[str, object], opened: EventPlace | None
    ) -> tuple[str, tuple[str, ...], bool] | Literal["same"] | None:
        """What ``event`` does to the open item: opens one (its kind, names, whether it goes
        on with the open one), goes on with it (``"same"``), or is not an item's (``None``)."""
        kind = event.get("type")

        def text(key: str) -> str:
            value = event.get(key)
            return value if isinstance(value, str) else ""

        if self._protocol == "ag-ui":
            if kind == "TEXT_MESSAGE_START":
                nested = text("subagentRunId")
                if nested and opened is not None and opened.names[:1] == (nested,):
                    return "output", (nested, text("messageId")), True
                return "text", (text("messageId"),), False
            if kind == "TOOL_CALL_START":
                return "call", (text("toolCallId"),), False
            if kind == "SUBAGENT_STARTED":
                return "output", (text("subagentRunId"), ""), False
            same = kind in ("TEXT_MESSAGE_CONTENT", "TOOL_CALL_ARGS")
        else:
            if kind == "text-start":
                return "text", (text("id"),), False
            if kind == "tool-input-start":
                return "input", (text("toolCallId"), text("toolName")), False
            same = kind in ("text-delta", "tool-input-delta")
        return "same" if same and opened is not None else None

    def closing(self, place: EventPlace) -> list[str]:
        """The events that end a client's item at ``place``, as the protocol ends one.

        AG-UI: ``TEXT_MESSAGE_END`` (a tool output's, then ``SUBAGENT_FINISHED``),
        ``TOOL_CALL_END``; AI SDK: ``text-end``, ``tool-input-error`` (the call's input
        was never whole).
        """
        names = place.names
        if self._protocol == "ag-ui":
            events: list[BaseEvent] = []
            if place.kind == "text":
                events.append(TextMessageEndEvent(message_id=names[0]))
            elif place.kind == "call":
                events.append(ToolCallEndEvent(tool_call_id=names[0]))
            elif place.kind == "output":
                if len(names) > 1 and names[1]:
                    events.append(
                        TextMessageEndEvent(message_id=names[1], subagent_run_id=names[0])
                    )
                events.append(SubagentFinishedEvent(subagent_run_id=names[0]))
            return [event.model_dump_json(by_alias=True, exclude_none=True) for event in events]
        if place.kind == "text":
            return [json.dumps({"type": "text-end", "id": names[0]}, ensure_ascii=False)]
        if place.kind == "input":
            ended = {
                "type": "tool-input-error",
                "toolCallId": names[0],
                "toolName": names[1] if len(names) > 1 else "",
                "input": {},
                "errorText": _RESTARTED,
            }
            return [json.dumps(ended, ensure_ascii=False)]
        return []

    def renamed(self, data: str, mapping: Mapping[str, str]) -> str:
        """The event ``data`` with the ids in ``mapping`` renamed (the same if it has none)."""
        if not any(name in data for name in mapping):
            return data
        try:
            event = json.loads(data)
        except ValueError:
            return data
        if not isinstance(event, dict):
            return data
        if self._protocol == "ag-ui":
            keys: tuple[str, ...] = _AGUI_NAMED
        else:
            kind = event.get("type")
            keys = ("id",) if isinstance(kind, str) and kind.startswith("text-") else ()
        changed = False
        for key in keys:
            value = event.get(key)
            if isinstance(value, str) and value in mapping:
                event[key] = mapping[value]
                changed = True
        if not changed:
            return data
        if self._protocol == "ag-ui":
            return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        return json.dumps(event, ensure_ascii=False)
