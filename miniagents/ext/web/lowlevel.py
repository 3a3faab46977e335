"""The low level of the web apps: the run manager and what a protocol gives it, for other packages.

**Who should use it.** The authors of a protocol served from another package than this one
(``miniagents.ext.a2a`` serves A2A with it). A protocol inside this package uses the same
names from their own modules; application code needs none of it: ``agui_app``,
``ai_sdk_app`` and ``a2a_app`` are the API.

**What is stable.** Every name in ``__all__`` keeps its name and meaning.

A protocol is one module of encoding (and its requests) over the :class:`RunManager`, which
runs the agents, keeps their runs (an event log each, followed by any number of clients),
their owners, limits, approvals and pauses:

- :class:`WebProtocol` says how a job is named (:class:`JobIds`), gives an
  :class:`Encoder` per job that writes the reply's parts (:data:`Part`: texts, tool calls,
  approvals asked, tool results, read in order by the manager) as the protocol's events
  (JSON text, :func:`json_text`), with the meter of the job's reply (:class:`JobUsage`:
  what its LLM calls spent, in each run and in all), and, for durable agents, which events
  make an item;
- its requests read the protocol's bodies (within bounds: :func:`aread_bounded`, by the
  deadline the :class:`Door` started as the request arrived, its seconds
  :func:`body_seconds_of`) and parse them as JSON is written (:func:`loads_json`), ask the
  manager for room (:meth:`RunManager.ano_room`: a job's, and its stream's), start jobs
  (:meth:`RunManager.start_new`), find them (:meth:`RunManager.job`,
  :meth:`RunManager.paused`), resume them with decisions
  (:meth:`RunManager.aresume_run`, :class:`ApprovalDecision`) and answer with a run's
  stream (:meth:`Run.response`, which may frame each event for its request and send a
  prelude first), or with a job's state as it stands, then its events from there on
  (:func:`follow_from_now`: how a client that lost its stream gets nothing twice; across
  the job's pauses, to its end: :func:`follow_to_end`);
- :func:`protocol_app` makes the ASGI app of its routes (:class:`ProtocolRoute`), behind
  the :class:`Door` (the hosts, who asks, CORS, the security headers), with the trace
  context of each request (:data:`TRACE_HEADERS`) continued by the runs it starts.

The manager and the door take the app's
:class:`~miniagents.ext.web.settings.WebSettings` (public in :mod:`miniagents.ext.web`) and
read each limit by its name there; a protocol's app takes ``authentication`` and
``settings`` as the other apps do, and passes them on.

An app of another kind (the voice page of :mod:`miniagents.ext.realtime.web`, over a
WebSocket) uses the :class:`Door` directly, :class:`SecurityHeaders` and
:func:`page_policy` (the Content-Security-Policy of a page of one file), and answers a
method a route does not serve as the apps do (:func:`amethod_not_allowed`, its 405 handler).

What a client is told of an agent's error, an A2A task's or a voice session's, is
:func:`told_error`'s (a :class:`ToldError`): unless the app's settings say
``WebSettings(error_texts=True)``, a sentence naming the error's class and a reference, the
error logged whole under it; of a tool's exception in its result, :class:`ToldResult`'s. A
protocol that says what failed in words of its own ends them with :func:`told_reference`'s
sentence, so that its client reads where the log has the error in the words every server
tells it with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from sse_starlette import EventSourceResponse, ServerSentEvent

from miniagents.ext.told_errors import ToldError as ToldError
from miniagents.ext.told_errors import ToldResult as ToldResult
from miniagents.ext.told_errors import told_error as told_error
from miniagents.ext.told_errors import told_reference as told_reference
from miniagents.ext.web._app import TRACE_HEADERS as TRACE_HEADERS
from miniagents.ext.web._app import Handler as Handler
from miniagents.ext.web._app import ProtocolRoute as ProtocolRoute
from miniagents.ext.web._app import protocol_app as protocol_app
from miniagents.ext.web._event_log import sse
from miniagents.ext.web._guard import Door as Door
from miniagents.ext.web._guard import SecurityHeaders as SecurityHeaders
from miniagents.ext.web._guard import page_policy as page_policy
from miniagents.ext.web._http import amethod_not_allowed as amethod_not_allowed
from miniagents.ext.web._http import aread_bounded as aread_bounded
from miniagents.ext.web._http import body_seconds_of as body_seconds_of
from miniagents.ext.web._http import loads_json as loads_json
from miniagents.ext.web._protocol import ApprovalFlow as ApprovalFlow
from miniagents.ext.web._protocol import Encoder as Encoder
from miniagents.ext.web._protocol import Item as Item
from miniagents.ext.web._protocol import JobIds as JobIds
from miniagents.ext.web._protocol import WebProtocol as WebProtocol
from miniagents.ext.web._protocol import json_text as json_text
from miniagents.ext.web._reply_parts import ApprovalAsked as ApprovalAsked
from miniagents.ext.web._reply_parts import AwaitingApproval as AwaitingApproval
from miniagents.ext.web._reply_parts import CallDelta as CallDelta
from miniagents.ext.web._reply_parts import CallEnd as CallEnd
from miniagents.ext.web._reply_parts import CallStart as CallStart
from miniagents.ext.web._reply_parts import Part as Part
from miniagents.ext.web._reply_parts import ResultDelta as ResultDelta
from miniagents.ext.web._reply_parts import ResultEnd as ResultEnd
from miniagents.ext.web._reply_parts import ResultStart as ResultStart
from miniagents.ext.web._reply_parts import TextDelta as TextDelta
from miniagents.ext.web._reply_parts import TextEnd as TextEnd
from miniagents.ext.web._reply_parts import TextStart as TextStart
from miniagents.ext.web._runs import ApprovalDecision as ApprovalDecision
from miniagents.ext.web._runs import Job as Job
from miniagents.ext.web._runs import NoRoom as NoRoom
from miniagents.ext.web._runs import Run as Run
from miniagents.ext.web._runs import RunManager as RunManager
from miniagents.ext.web._usage import JobUsage as JobUsage
from miniagents.ext.web.settings import DEFAULT_MAX_BODY_BYTES as DEFAULT_MAX_BODY_BYTES
from miniagents.ext.web.settings import DEFAULT_MAX_BODY_VALUES as DEFAULT_MAX_BODY_VALUES
from miniagents.ext.web.settings import DEFAULT_MAX_ENDED_RUNS as DEFAULT_MAX_ENDED_RUNS
from miniagents.ext.web.settings import DEFAULT_MAX_LIVE_RUNS as DEFAULT_MAX_LIVE_RUNS
from miniagents.ext.web.settings import (
    DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL as DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL,
)
from miniagents.frozen.model import plain as plain

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_BODY_VALUES",
    "DEFAULT_MAX_ENDED_RUNS",
    "DEFAULT_MAX_LIVE_RUNS",
    "DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL",
    "TRACE_HEADERS",
    "ApprovalAsked",
    "ApprovalDecision",
    "ApprovalFlow",
    "AwaitingApproval",
    "CallDelta",
    "CallEnd",
    "CallStart",
    "Door",
    "Encoder",
    "Handler",
    "Item",
    "Job",
    "JobIds",
    "JobUsage",
    "NoRoom",
    "Part",
    "ProtocolRoute",
    "ResultDelta",
    "ResultEnd",
    "ResultStart",
    "Run",
    "RunManager",
    "SecurityHeaders",
    "TextDelta",
    "TextEnd",
    "TextStart",
    "ToldError",
    "ToldResult",
    "WebProtocol",
    "amethod_not_allowed",
    "aread_bounded",
    "body_seconds_of",
    "follow_from_now",
    "follow_to_end",
    "json_text",
    "loads_json",
    "page_policy",
    "plain",
    "protocol_app",
    "told_error",
    "told_reference",
]


def follow_from_now(
    job: Job,
    snapshot: Callable[[], str],
    frame: Callable[[str], str] | None = None,
    *,
    slot_held: bool = False,
) -> EventSourceResponse:
    """An SSE response of ``job`` from now: its state first, then each event that comes after.

    ``snapshot()`` is the protocol's event of what the job holds so far (A2A's task: its
    status and its artifacts whole), made from the events its runs have logged; it is made,
    and the position in the job's current run taken, in one step (no event can be logged
    between the two), so a client that lost its stream gets each event once: in the
    snapshot, or after it. ``frame``: what each event's data becomes in this response (the
    snapshot's too). A job that waits, or has ended, sends the snapshot alone.
    ``slot_held``: the caller took the stream's slot of the job's owner (as it checked the
    room, before it started the job) and hands it to the response (see :meth:`Run.response`).
    """
    run = job.last_run()
    first = snapshot()
    prelude = [first if frame is None else frame(first)]
    return run.response(len(run.events), frame=frame, prelude=prelude, slot_held=slot_held)


def follow_to_end(
    job: Job,
    snapshot: Callable[[], str],
    frame: Callable[[str], str] | None = None,
    ending: Callable[[], Sequence[str]] | None = None,
    *,
    slot_held: bool = False,
) -> EventSourceResponse:
    """As :func:`follow_from_now`, but across the job's pauses: its events to its very end.

    Where the job pauses (its run ends, and it waits to be resumed), the stream waits with
    it, and goes on with the events of the run it is resumed in, each from its first; it
    ends where the job ends. ``ending()``: the events that say how the job ended when no
    run logged it (a job cancelled where it waited), sent last; ``frame`` frames them too.
    ``slot_held``: as :func:`follow_from_now`'s (the caller took the slot as it checked it).
    """
    run = job.last_run()
    first = snapshot()
    start = len(run.events)

    def framed(data: str, event_id: str | None = None) -> ServerSentEvent:
        return sse(data if frame is None else frame(data), event_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield framed(first)
        following: Run | None = run
        position = start
        while following is not None:
            following.attach()
            try:
                async for event in following.follow(position):
                    yield framed(str(event.data), event.id)
            finally:
                following.detach()
            ended = following
            following, position = await job.anext_run(ended), 0
        for data in ending() if ending is not None else ():
            yield framed(data)

    return job.response(events(), slot_held=slot_held)  # (a slot of its owner, as any stream)
