"""Runs served over SSE: each run's event log, its followers, resuming, pausing, cancelling.

A *job* is an agent's reply being turned into protocol events by a task of its own. Its
events go to a *run*: one SSE stream whose every event is kept, in order, in the run's log;
its SSE ``id`` is its position in the log. A client follows a run from any position: it
gets the events logged after it, then each new one as it comes, so any number of clients
follow one run (and one LLM call), and a client that reconnects with ``Last-Event-ID``
misses nothing and gets nothing twice.

A job whose reply waits for a person's approval may *pause* (the protocols' own approval
flows): its run ends there, as the protocol says a run that waits ends, and the job waits
(no LLM call open, no thread blocked) until the protocol's resume request decides the
calls; the job's next events then go to a new run, the response to that request. A paused
job that nobody resumes within ``keep_for`` seconds is cancelled.

The run of a durable agent's job (see :mod:`miniagents.ext.web._durable`) also notes where
each event leaves its client (:class:`~miniagents.ext.web._durable.EventPlace`), in the
event's SSE id: after a restart, a client that comes back inside a message the run made
again otherwise gets that message ended, then the run's one from its start (under new
ids), never a splice of the two (:meth:`Run.resume_point`).

When the last client leaves a live run and none comes back within the grace period, the
job is cancelled (which gives up on the reply: its LLM calls are cancelled and their HTTP
streams closed). A run that has ended stays in memory ``keep_for`` seconds for late
readers, then goes. At most ``max_live`` jobs run (or wait paused) at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.errors import ToolApprovalError
from miniagents.ext.web._durable import (
    DurableJobs,
    EventPlace,
    EventPlaces,
    Rename,
    SeenPlace,
    event_id,
    parse_event_id,
)
from miniagents.miniagents.context import MiniAgents
from miniagents.promising.lowlevel import spawn

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_LIVE_RUNS",
    "ApprovalDecision",
    "ApprovalFlow",
    "Job",
    "Pause",
    "ResumePoint",
    "Run",
    "RunStore",
    "astart_position",
    "decide",
    "error_response",
    "invalid_arguments",
    "not_pending",
    "problems",
    "read_json",
    "runs_app",
    "start_position",
    "too_many_runs",
    "unknown_run",
    "unnamable_run",
]

DEFAULT_MAX_BODY_BYTES = 1_000_000
"""The largest request body the apps read (a bigger one is a 413)."""

DEFAULT_MAX_LIVE_RUNS = 100
"""The most runs an app runs at once (one more is a 503 until one ends)."""

ApprovalFlow: TypeAlias = Literal["protocol", "in_stream"]
"""How a run asks for approvals: ``"protocol"``, the protocol's own flow (the stream ends
where the run must wait, and the protocol's resume request decides); ``"in_stream"``, the
stream stays open and waits for a decision at the app's approvals URL."""

_EVENT_ID = re.compile(r"\d{1,18}")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """A JSON error: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def unnamable_run(key: str, field: str, code: str) -> JSONResponse | None:
    """A 422 if ``key``, the client's id of a run, cannot be a segment of the run's URLs.

    The run is followed and decided on at URLs that hold its id as one path segment, so an
    empty id, or one with a ``/``, would start a run that no later request can reach.

    Args:
        key: The id the client sent.
        field: The id's name in the body (``runId``, ``id``), for the message.
        code: The app's error code for a body it refuses.
    """
    if key and "/" not in key:
        return None
    why = "is empty" if not key else f"holds a '/' ({key!r})"
    return error_response(
        422,
        code,
        f"The body's {field} {why}, so the run could not be followed or decided on at its "
        f"URLs; send an id that is not empty and has no '/' (a UUID, say).",
    )


async def read_json(request: Request, max_bytes: int) -> object | JSONResponse:
    """The request's body parsed as JSON, or the error response that says why it is not.

    The body is read in chunks and refused (413) as soon as it is over ``max_bytes``, so a
    large body is never held in memory; a body that is not JSON is a 400.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return _too_large(max_bytes)
        chunks.append(chunk)
    try:
        parsed: object = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as error:
        return error_response(400, "invalid_json", f"The request body is not valid JSON: {error}.")
    except RecursionError:  # (a body of many brackets within the size limit)
        return error_response(
            400, "invalid_json", "The request body is JSON nested too deeply to be read."
        )
    return parsed


def _too_large(max_bytes: int) -> JSONResponse:
    return error_response(
        413,
        "body_too_large",
        f"The request body is over the limit of {max_bytes} bytes; send a shorter "
        "conversation (or raise max_body_bytes).",
    )


def start_position(request: Request, run: Run) -> int | JSONResponse:
    """Where a client resumes: after its ``Last-Event-ID`` (from the start without one).

    In a durable agent's run, the position may be a :class:`ResumePoint` (see
    :meth:`Run.resume_point`).
    """
    last = request.headers.get("last-event-id")
    if last is None or last == "":
        return 0
    if run.places is not None:
        return run.resume_point(last)
    return _after(last, run)


async def astart_position(request: Request, run: Run) -> int | JSONResponse:
    """:func:`start_position`, which in a recovered run waits for the log to hold the event.

    A run recovered after a restart replays its events from the first: the position is
    checked once the log has it (or the run has ended without it; or, for an event inside
    an item, once the log's item has ended before it).
    """
    last = request.headers.get("last-event-id")
    if run.recovered and last is not None:
        if run.places is not None:
            seen = parse_event_id(last)
            if seen is not None:
                await run.areached_place(seen)
        elif _EVENT_ID.fullmatch(last) is not None:
            await run.areached(int(last) + 1)
    return start_position(request, run)


def _after(last: str, run: Run) -> int | JSONResponse:
    if _EVENT_ID.fullmatch(last) is None or int(last) >= len(run.events):
        return _unknown_event(last, run)
    return int(last) + 1


def _unknown_event(last: str, run: Run) -> JSONResponse:
    return error_response(
        400,
        "unknown_event_id",
        f"The Last-Event-ID {last!r} is not an event of the run {run.key!r} (its events "
        f"are numbered from 0 to {len(run.events) - 1}); reconnect without it to "
        "follow the run from its start.",
    )


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


def problems(error: ValidationError) -> str:
    """The first few problems pydantic found, each with where it is."""
    found = [
        f"{'.'.join(str(place) for place in problem['loc']) or 'the body'}: {problem['msg']}"
        for problem in error.errors()[:5]
    ]
    return "; ".join(found)


class ApprovalDecision(BaseModel):
    """A person's decision on a tool call: ``{"approved": bool, "arguments"?, "reason"?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    approved: bool
    arguments: dict[str, object] | None = None
    reason: str | None = None

    def refusal(self, request: ToolApprovalRequest) -> str | None:
        """Why the tool of ``request`` refuses the edited arguments (``None``: it does not).

        Checked before anything is decided, so a refused edit leaves the call waiting.
        """
        if not self.approved or self.arguments is None:
            return None
        try:
            request.check_arguments(self.arguments)
        except ToolApprovalError as error:
            return str(error)
        return None

    def apply(self, request: ToolApprovalRequest) -> None:
        """Approve (with the edited arguments, if any) or deny ``request``, which is pending."""
        if self.approved:
            request.approve(self.arguments)
        else:
            request.deny(self.reason)


def unknown_run() -> JSONResponse:
    """The 404 of a run that is not here."""
    return error_response(
        404,
        "unknown_run",
        "There is no such run: it never started here, or it ended and was forgotten.",
    )


def invalid_arguments(where: str, why: str) -> JSONResponse:
    """The 422 of a decision whose edited arguments the tool refuses (``where``: their place).

    Nothing was decided: the call still waits, and the person may answer again.
    """
    return error_response(422, "invalid_arguments", f"{where}: {why}")


def not_pending(call_id: str, tool_name: str) -> JSONResponse:
    """The 409 of a decision for a call that waits for none (any more)."""
    return error_response(
        409,
        "not_pending",
        f"The call {call_id!r} of {tool_name} is not waiting for a decision any more (it was "
        "decided already, or its run ended or was cancelled); a call is decided once.",
    )


async def decide(
    request: Request, run: Run | None, call_id: str, max_bytes: int, paused_hint: str
) -> Response:
    """Approve or deny the pending call ``call_id`` of ``run`` (the body says which).

    ``paused_hint`` says how to decide the calls of a job that paused at them (the
    protocol's resume request): this URL decides only the calls of a job still streaming.
    """
    if run is None:
        return unknown_run()
    body = await read_json(request, max_bytes)
    if isinstance(body, Response):
        return body
    try:
        decision = ApprovalDecision.model_validate(body)
    except ValidationError as error:
        return error_response(
            422,
            "invalid_decision",
            'The body is not a decision ({"approved": true or false, "arguments": {...} '
            f'or null, "reason": "..." or null}}): {problems(error)}.',
        )
    job = run.job
    asked = job.approvals.get(call_id)
    if asked is None:
        return error_response(
            404,
            "unknown_approval",
            f"The run {run.key!r} asked for no approval of a call {call_id!r}.",
        )
    if not asked.pending or job.done:
        return not_pending(call_id, asked.tool_name)
    if job.paused:
        return error_response(
            409,
            "paused",
            f"The run {run.key!r} has paused at the call {call_id!r} and ended its stream, as "
            f"the protocol's approval flow does: {paused_hint}",
        )
    if (why := decision.refusal(asked)) is not None:
        return invalid_arguments("arguments", why)
    decision.apply(asked)
    return JSONResponse({"toolCallId": call_id, "approved": decision.approved})


def too_many_runs(max_live: int) -> JSONResponse:
    """The 503 of a run refused because ``max_live`` runs run already."""
    response = error_response(
        503,
        "too_many_runs",
        f"The app is running {max_live} runs, its limit (max_live_runs={max_live}; a run "
        "waiting for its approvals counts until it is resumed or expires); try again when "
        "one has ended, or make the app with a higher max_live_runs.",
    )
    response.headers["Retry-After"] = "1"
    return response


class Pause:
    """What a job's events yield where the run ends and the job waits to be resumed.

    ``at``: the call it waits at, ``waiting`` the calls it asks for. ``into``: a pause
    that was resumed before (a replay's, after a restart): the job goes on at once in a
    new run under that key, as it went on then.
    """

    __slots__ = ("at", "into", "waiting")

    def __init__(self, at: str, waiting: Sequence[str], *, into: str | None = None) -> None:
        self.at = at
        self.waiting = tuple(waiting)
        self.into = into


class Run:
    """One SSE stream of a job: the log of its events (SSE data), its followers.

    A *recovered* run is a durable run's, made again after a restart: its log is refilled
    from the first event by the durable run's replay.
    """

    __slots__ = (
        "_changed",
        "_grace",
        "_grace_timer",
        "_tracker",
        "done",
        "ended_at",
        "events",
        "followers",
        "job",
        "key",
        "places",
        "recovered",
    )

    def __init__(self, key: str, job: Job, grace: float, *, recovered: bool = False) -> None:
        self.key = key
        self.recovered = recovered
        self.job = job
        self.events: list[str] = []
        self.done = False
        self.ended_at: float | None = None
        self.followers = 0
        self._changed = asyncio.Event()
        self._grace = grace
        self._grace_timer: asyncio.TimerHandle | None = None
        # a durable agent's run: where each event leaves its client (its SSE id says it)
        self._tracker: EventPlaces | None = job.new_places()
        self.places: list[EventPlace | None] | None = None if self._tracker is None else []

    def append(self, data: str) -> None:
        """Log one more event (its id is its position; a durable run's says its place too)."""
        if self._tracker is not None and self.places is not None:
            self.places.append(self._tracker.place(len(self.events), data))
        self.events.append(data)
        self._notify()

    def end(self) -> None:
        """The stream ends here (its followers' responses end after its last event)."""
        if not self.done:
            self.done = True
            self.ended_at = asyncio.get_running_loop().time()
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def areached(self, count: int) -> None:
        """Wait until the log holds ``count`` events, or the run has ended."""
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

    def resume_point(self, last: str) -> ResumePoint | JSONResponse:
        """Where the client whose last event had the SSE id ``last`` resumes (durable runs).

        After its event, if the log holds the client's place as the client saw it: between
        items, or inside an item the log holds with the same start, names and events (a
        replayed call's, or the same log's). Otherwise the client's item was made again
        (after a restart) and the log's says something else: the point's prelude ends the
        client's item, and the client gets the log's item again from its start, renamed
        with the job's tag (a new message for the page), then the rest.
        """
        seen = parse_event_id(last)
        tracker = self._tracker
        places = self.places
        prelude: tuple[str, ...]
        if seen is None or tracker is None or places is None:
            return _unknown_event(last, self)
        position = seen.position
        logged = places[position] if position < len(places) else None
        client = seen.place
        if client is None:  # between items, as the client saw the run
            if position >= len(places):
                return _unknown_event(last, self)
            if logged is None or not self.recovered:
                return ResumePoint(position + 1, seen.rename)
            # inside an item of a log made again, though the client's id names none (a
            # bare position): that item again, whole and renamed; nothing to end
            start, prelude = logged.start, ()
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
        rename = Rename(self.job.tag, start)
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
        """The events from ``start`` on: those logged, then each new one, to the run's end."""
        if self._tracker is not None:
            async for event in self._follow_places(start, self._tracker):
                yield event
            return
        position = start
        while True:
            changed = self._changed
            while position < len(self.events):
                yield _sse(self.events[position], str(position))
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
                yield _sse(data)
            yield _sse(last, start.prelude_id)
        position = int(start)
        mapping = {} if rename is None else self._mapping(rename, rename.start, position)
        places = self.places
        assert places is not None
        while True:
            changed = self._changed
            while position < len(self.events):
                data = self.events[position]
                if rename is None:
                    yield _sse(data, event_id(position, None, places[position]))
                else:
                    place = places[position]
                    if place is not None and place.start == rename.start:
                        for name in place.renamed_names():
                            mapping[name] = rename.of(name)
                    if mapping:
                        data = tracker.renamed(data, mapping)
                        place = None if place is None else place.with_names(mapping)
                    yield _sse(data, event_id(position, rename, place))
                position += 1
            if self.done:
                return
            await changed.wait()

    def attach(self) -> None:
        """A client follows the run (a pending cancellation is called off)."""
        self.followers += 1
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def detach(self) -> None:
        """A client left; the last one to leave a live run starts the grace period."""
        self.followers -= 1
        if self.followers == 0 and not self.done:
            loop = asyncio.get_running_loop()
            self._grace_timer = loop.call_later(self._grace, self._abandon)

    def _abandon(self) -> None:
        self._grace_timer = None
        if self.followers == 0 and not self.done:
            self.job.cancel()

    def response(self, start: int, headers: Mapping[str, str]) -> EventSourceResponse:
        """An SSE response that follows the run from ``start`` while the client stays."""
        return _RunResponse(self, start, headers)


_LINE_END = "\n"
"""What ends each line of the streams (and, doubled, each event). The SSE standard allows
``\r\n`` too (sse-starlette's default), but the official AG-UI client
(``@ag-ui/client``'s ``HttpAgent``) splits events at ``\n\n`` only: with ``\r\n`` it
reads the whole stream as one event, and fails."""


def _sse(data: str, event_id: str | None = None) -> ServerSentEvent:
    """One event of a stream: its data and SSE id, its lines ended with ``_LINE_END``."""
    return ServerSentEvent(data, id=event_id, sep=_LINE_END)


class _RunResponse(EventSourceResponse):
    def __init__(self, run: Run, start: int, headers: Mapping[str, str]) -> None:
        super().__init__(run.follow(start), headers=headers, ping=15, sep=_LINE_END)
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._run.attach()
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.detach()


class Job:
    """One agent reply turned into events by a task of its own, streamed to one run at a time.

    Its events (made by ``make_events(job)``) go to its current run; where they yield a
    :class:`Pause`, the run ends and the job waits (:meth:`aresumed`) until :meth:`resume`
    gives it a new run, or ``keep_for`` seconds pass and it is cancelled. ``workflow_id``:
    the durable run of its reply, if any.
    """

    __slots__ = (
        "_expiry",
        "_moved",
        "_on_abandon",
        "_on_cancel",
        "_resumed",
        "_settled",
        "_store",
        "approvals",
        "cancelling",
        "current",
        "last_pause",
        "pause_key",
        "pauses",
        "tag",
        "task",
        "workflow_id",
    )

    def __init__(
        self,
        store: RunStore,
        run_key: str,
        pause_key: str,
        make_events: Callable[[Job], AsyncIterator[str | Pause]],
        on_cancel: Callable[[], Sequence[str]],
        *,
        recovered: bool = False,
        on_abandon: Callable[[], None] | None = None,
        workflow_id: str | None = None,
    ) -> None:
        self._store = store
        self._on_abandon = on_abandon
        self.workflow_id = workflow_id
        self.tag = secrets.token_hex(4)  # this job's renames (see Run.resume_point)
        self.pauses = 0  # how many times it paused (a replay's resumed pauses too)
        self.last_pause: Pause | None = None
        self._moved = asyncio.Event()  # set when it goes to a new run, pauses or ends
        self.pause_key = pause_key
        self.approvals: dict[str, ToolApprovalRequest] = {}  # the reply's requests, by call id
        self.cancelling = False
        self.current = Run(run_key, self, store.grace, recovered=recovered)
        self._on_cancel = on_cancel
        self._resumed: asyncio.Future[object] | None = None
        self._settled = asyncio.Event()  # set where the job pauses, and when it ends
        self._expiry: asyncio.TimerHandle | None = None
        self.task = spawn(self._produce(make_events(self)), f"web run {run_key}")

    def new_places(self) -> EventPlaces | None:
        """A tracker of a new run's event places: for a durable agent's job only."""
        durable = self._store.durable
        if durable is None or self.workflow_id is None:
            return None
        return durable.places()

    @property
    def done(self) -> bool:
        """Whether the job has ended (its reply read whole, failed or cancelled)."""
        return self.task.done()

    @property
    def paused(self) -> bool:
        """Whether the job waits to be resumed (its last run has ended)."""
        return self._resumed is not None and not self._resumed.done() and not self.done

    async def _produce(self, events: AsyncIterator[str | Pause]) -> None:
        try:
            async for item in events:
                if isinstance(item, Pause):
                    self.pauses += 1
                    self.last_pause = item
                    if item.into is None:
                        self._pause()
                    else:
                        self._go_on(item.into)
                else:
                    self.current.append(item)
        except asyncio.CancelledError:
            if not self.current.done:
                for data in self._on_cancel():
                    self.current.append(data)
            raise
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            self.current.end()
            self._store.forget_job(self)
            self._settled.set()
            self._notify_moved()

    def _pause(self) -> None:
        self.current.end()
        loop = asyncio.get_running_loop()
        self._resumed = loop.create_future()
        self._expiry = loop.call_later(self._store.keep_for, self.cancel)
        self._store.paused_at(self)
        self._settled.set()
        self._notify_moved()

    def _go_on(self, run_key: str) -> None:
        """A replayed pause: the run ends here, the job goes on at once under ``run_key``."""
        self.current.end()
        self.current = Run(run_key, self, self._store.grace, recovered=True)
        self._store.moved(self, run_key)
        self._notify_moved()

    def _notify_moved(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    async def arun_after(self, pauses: int) -> Run:
        """The run the job streams to once it has paused ``pauses`` times (or settled)."""
        while self.pauses < pauses and not self.done and not self.paused:
            await self._moved.wait()
        return self.current

    async def asettled(self) -> None:
        """Wait until the job pauses (its run waits to be resumed) or ends."""
        await self._settled.wait()

    async def aresumed(self) -> object:
        """(For the job's events, after a :class:`Pause`.) Wait for the resume; its value."""
        if self._resumed is None:  # pragma: no cover - the pause made it
            self._resumed = asyncio.get_running_loop().create_future()
        return await self._resumed

    def resume(self, run_key: str, value: object) -> Run:
        """Go on in a new run (``value`` is what :meth:`aresumed` returns); return the run."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.current = Run(run_key, self, self._store.grace)
        self._settled = asyncio.Event()
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(value)
        self._notify_moved()
        return self.current

    def cancel(self, *, abandoned: bool = True) -> None:
        """Cancel the job now (its run logs the cancellation events for late readers).

        ``abandoned``: nobody wants its reply any more (its clients left, its wait expired,
        a new job replaced it), which ``on_abandon`` is told; not so when the app stops.
        """
        if not self.task.done():
            self.cancelling = True
            self.task.cancel()
            if abandoned and self._on_abandon is not None:
                self._on_abandon()


class RunStore:
    """The runs of one app, by key, each kept ``keep_for`` seconds after it ends; their jobs."""

    __slots__ = ("_jobs", "_paused", "_runs", "durable", "grace", "keep_for", "max_live")

    def __init__(self, *, keep_for: float, grace: float, max_live: int) -> None:
        self.keep_for = keep_for
        self.grace = grace
        self.max_live = max_live
        self.durable: DurableJobs | None = None  # the app's durable runs (set by runs_app)
        self._runs: dict[str, Run] = {}
        self._jobs: set[Job] = set()
        self._paused: dict[str, Job] = {}

    @property
    def live(self) -> int:
        """How many jobs run (or wait paused) now."""
        return len(self._jobs)

    def get(self, key: str) -> Run | None:
        """The run of ``key``, unless there is none or it ended over ``keep_for`` ago."""
        self._forget_expired()
        return self._runs.get(key)

    def paused(self, pause_key: str) -> Job | None:
        """The job paused under ``pause_key`` (a thread, a chat), if one waits there."""
        job = self._paused.get(pause_key)
        return job if job is not None and job.paused else None

    def has_room(self, key: str, pause_key: str) -> bool:
        """Whether a new job may start under ``key`` (counting those it would replace)."""
        replaced = set(self._replaced(key, pause_key))
        live = [job for job in self._jobs if not job.cancelling and job not in replaced]
        return len(live) < self.max_live

    def _replaced(self, key: str, pause_key: str) -> list[Job]:
        previous = self._runs.get(key)
        found = [previous.job] if previous is not None and not previous.job.done else []
        paused = self.paused(pause_key)
        return [*found, paused] if paused is not None else found

    def start(
        self,
        key: str,
        pause_key: str,
        make_events: Callable[[Job], AsyncIterator[str | Pause]],
        on_cancel: Callable[[], Sequence[str]],
        *,
        recovered: bool = False,
        on_abandon: Callable[[], None] | None = None,
        workflow_id: str | None = None,
    ) -> Run:
        """Start a job under ``key`` and return its run (``recovered``: see :class:`Run`).

        ``on_abandon`` is called if the job is given up on (see :meth:`Job.cancel`);
        ``workflow_id`` is its durable run's.

        A job still running under ``key``, and one paused under ``pause_key`` (a new turn of
        its thread or chat), are cancelled.
        """
        for job in self._replaced(key, pause_key):
            job.cancel()
        job = Job(
            self,
            key,
            pause_key,
            make_events,
            on_cancel,
            recovered=recovered,
            on_abandon=on_abandon,
            workflow_id=workflow_id,
        )
        self._jobs.add(job)
        self._runs[key] = job.current
        return job.current

    def resume(self, job: Job, key: str, value: object) -> Run:
        """Resume the paused ``job`` in a new run under ``key``; return the run."""
        if self._paused.get(job.pause_key) is job:
            del self._paused[job.pause_key]
        run = job.resume(key, value)
        self._runs[key] = run
        return run

    def moved(self, job: Job, key: str) -> None:
        """(For a job.) ``job`` went on in its new run under ``key``, as it was resumed."""
        self._runs[key] = job.current

    def paused_at(self, job: Job) -> None:
        """(For a job.) ``job`` has paused under its pause key."""
        self._paused[job.pause_key] = job

    def forget_job(self, job: Job) -> None:
        """(For a job.) ``job`` has ended."""
        self._jobs.discard(job)
        if self._paused.get(job.pause_key) is job:
            del self._paused[job.pause_key]

    def _forget_expired(self) -> None:
        now = asyncio.get_running_loop().time()
        expired = [
            key
            for key, run in self._runs.items()
            if run.ended_at is not None
            and now - run.ended_at >= self.keep_for
            and not (run.job.paused and run.job.current is run)
        ]
        for key in expired:
            del self._runs[key]

    async def aclose(self) -> None:
        """Cancel every live job and wait for their tasks (the app is shutting down)."""
        jobs = list(self._jobs)
        self._runs.clear()
        self._paused.clear()
        for job in jobs:
            job.cancel(abandoned=False)
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job.task


def runs_app(
    store: RunStore,
    start_run: Callable[[Request], Awaitable[Response]],
    resume_run: Callable[[Request], Awaitable[Response]],
    *,
    run_key: str,
    resume_path: str,
    approvals_path: str,
    max_body_bytes: int,
    paused_hint: str,
    durable: DurableJobs | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
) -> Starlette:
    """The ASGI app of a protocol: start a run, resume it, decide its pending approvals.

    Args:
        store: The runs, closed when the app shuts down.
        start_run: ``POST /``: the protocol's run input.
        resume_run: ``GET resume_path``: the run's events after ``Last-Event-ID``.
        run_key: The path parameter that names a run (``run_id``, ``chat_id``).
        resume_path: The path of ``resume_run``.
        approvals_path: The path of a call's approval (it names ``run_key`` and ``call_id``).
        max_body_bytes: The largest approval body read.
        paused_hint: How the calls of a paused job are decided (in the 409 that says so).
        durable: The durable runs of the jobs, when the agent is durable (DBOS is launched
            at the app's start, in a ``context()`` of the app's own; at its first request
            if it is mounted, its lifespan not run).
        context: Makes that context.
    """

    async def decide_call(request: Request) -> Response:
        run = store.get(request.path_params[run_key])
        call_id = request.path_params["call_id"]
        return await decide(request, run, call_id, max_body_bytes, paused_hint)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if durable is None:
            yield
            await store.aclose()
            return
        async with durable.recovering(context, store.aclose):
            yield

    def launched(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if durable is not None:  # (a mounted app: its lifespan did not launch DBOS)
                await durable.aready(context, store.aclose)
            return await handler(request)

        return handle

    store.durable = durable
    app = Starlette(
        routes=[
            Route("/", launched(start_run), methods=["POST"]),
            Route(resume_path, launched(resume_run), methods=["GET"]),
            Route(approvals_path, launched(decide_call), methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.runs = store
    return app
