"""The run manager: the runs of one app, whatever its protocol; started, streamed, resumed, ended.

A *job* is an agent's reply turned into a protocol's events (by the protocol's
:class:`~._protocol.Encoder`) by a task of its own. Its events go to a *run*: one SSE stream,
whose every event is kept in the run's :class:`~._event_log.EventLog`, so that any number of
clients follow it and a client that reconnects with ``Last-Event-ID`` misses nothing.

A job whose reply waits for a person's approval may *pause* (the protocols' own approval
flows): its run ends there, as the protocol says a run that waits ends, and the job waits
(no LLM call open, no thread blocked) until the protocol's resume request decides the
calls; the job's next events then go to a new run, the response to that request. So does
a job whose agent asks its caller a question (an ``InputRequest``), for a protocol whose
clients answer (``WebProtocol.takes_answers``: A2A's next message to the task is the
answer, :meth:`RunManager.answer`); for the others the question is withdrawn (the agent's
wait for its answer raises) and sent as a text. A paused job that nobody resumes within
``keep_runs_for`` seconds is cancelled.

The manager reads its limits from the app's :class:`~miniagents.ext.web.settings.WebSettings`,
by their names there. When the last client leaves a live run and none comes back within
the ``grace_period``, the job is cancelled (which gives up on the reply: its LLM calls are
cancelled and their HTTP streams closed); with an infinite one (A2A's tasks, which outlive
their connections), it runs on. A run that has ended stays ``keep_runs_for`` seconds for
late readers, then is forgotten (whether anyone read it again or not); a job is found by
the key of its first run (:meth:`RunManager.job`) while it runs or waits, and
``keep_runs_for`` seconds after it ended; an ended job keeps what its protocol answers
about it (its encoder's: A2A's task), not its runs, each of which is kept as long as the
manager keeps that run (see :meth:`Job.last_run`). At most ``max_live_runs`` jobs run (or
wait paused) at once, and at most ``max_ended_runs`` ended runs (and as many ended jobs)
are kept (:class:`EndedRuns`): past it, the oldest ended run of the principal who has the
most kept is forgotten before its time, so one principal's burst pushes out their own (a
paused job's run, which its job waits on, is live: never forgotten so); so is the oldest
ended of the principal who keeps the most bytes while the ended runs' events and jobs'
records keep over ``max_ended_run_bytes``. At most
``max_streams`` event streams are sent at once (``max_streams_per_principal`` of one
principal's): a stream's slot is taken as its response starts, and freed as it closes.

Runs belong to the principal that started them (``owner``, ``None`` when the app knows
nobody: then every request is that one principal's, for the limits too): every lookup
names the owner, so a run of another principal is not found (the same key names a
different run for each principal).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
import secrets
import signal
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

import anyio
from pydantic import BaseModel, ConfigDict
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from miniagents.arguments import a_class, refused_argument
from miniagents.ext.caller_counts import CallerCounts
from miniagents.ext.errors import (
    InputRequestError,
    WebConfigurationError,
    WebRunTooLargeError,
    WebServerStoppedError,
)
from miniagents.ext.input_requests import InputRequest, quoted_question, withdraw_input_request
from miniagents.ext.llm.usage import charged_to
from miniagents.ext.told_errors import ToldError, told_error
from miniagents.ext.tools.approval import MemoryApprovals, ToolApprovalRequest, ToolDecision
from miniagents.ext.tools.errors import ToolApprovalError
from miniagents.ext.web import _reply_parts as parts
from miniagents.ext.web._durable import DurableJobs, FoundRun, PausePoint
from miniagents.ext.web._event_log import LINE_END, EventLog, EventPlaces, astart_position, sse
from miniagents.ext.web._http import (
    error_response,
    invalid_arguments,
    not_pending,
    read_model,
    shown_id,
    unknown_run,
)
from miniagents.ext.web._keeping import Kept
from miniagents.ext.web._protocol import ApprovalFlow, Encoder, JobIds, WebProtocol
from miniagents.ext.web._usage import JobUsage
from miniagents.ext.web.serving import server_stop
from miniagents.ext.web.settings import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MAX_ENDED_RUNS,
    DEFAULT_MAX_LIVE_RUNS,
    DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL,
    WebSettings,
)
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.promising.lowlevel import spawn

__all__ = [
    "DEFAULT_MAX_ENDED_RUNS",
    "DEFAULT_MAX_LIVE_RUNS",
    "DEFAULT_MAX_LIVE_RUNS_PER_PRINCIPAL",
    "ApprovalDecision",
    "EndedRuns",
    "Job",
    "NoRoom",
    "Pause",
    "Run",
    "RunManager",
    "arecovered",
    "astart_turn",
    "check_agent",
]


class ApprovalDecision(BaseModel):
    """A person's decision on a tool call: ``{"approved": bool, "arguments"?, "reason"?}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    approved: bool
    arguments: dict[str, object] | None = None
    reason: str | None = None

    def refusal(self, request: ToolApprovalRequest, where: str, *, edits: bool) -> Response | None:
        """The 422 of edited arguments the tool refuses, or that may not be given (``edits``).

        Checked before anything is decided, so a refused edit leaves the call waiting.
        ``where``: the arguments' place in the request body, for the message.
        """
        if not self.approved or self.arguments is None:
            return None
        if not edits:
            return error_response(
                422,
                "edits_not_allowed",
                f"{where}: this app takes no edited arguments (it was made with "
                "approval_edits=False): approve the call as the model made it (no "
                "arguments), or deny it.",
            )
        try:
            request.check_arguments(self.arguments)
        except ToolApprovalError as error:
            return invalid_arguments(where, str(error), error.problems)
        return None

    def apply(self, request: ToolApprovalRequest, by: str | None) -> None:
        """Decide ``request``, which is pending, as this says (``by``: who decided)."""
        arguments = self.arguments if self.approved else None
        request.decide(ToolDecision(self.approved, arguments, self.reason, decided_by=by))


@dataclass(frozen=True)
class NoRoom:
    """Why a new job or stream was refused: the limit it would pass, named by its setting.

    Attributes:
        setting: The setting whose limit it is: ``"max_live_runs"`` or ``"max_streams"``
            (the app's: a 503), ``"max_live_runs_per_principal"`` or
            ``"max_streams_per_principal"`` (the principal's: a 429).
        limit: Its value.
    """

    setting: str
    limit: int

    @property
    def status(self) -> int:
        """The HTTP status of the refusal: 429 for a principal's limit, else 503."""
        return 429 if self.setting.endswith("_per_principal") else 503

    @property
    def code(self) -> str:
        """The error's code (``too_many_runs``, ``too_many_streams_of_yours``, ...)."""
        what = "streams" if self.setting.startswith("max_streams") else "runs"
        return f"too_many_{what}_of_yours" if self.status == 429 else f"too_many_{what}"

    @property
    def message(self) -> str:
        """The refusal, as a sentence that says when to try again."""
        setting, limit = f"{self.setting}={self.limit}", self.limit
        if self.setting == "max_live_runs":
            return (
                f"The app is running {limit} runs, its limit ({setting}; a run waiting for its "
                "approvals counts until it is resumed or expires); try again when one has "
                "ended, or make the app with a higher max_live_runs."
            )
        if self.setting == "max_live_runs_per_principal":
            return (
                f"You are running {limit} runs, the most one user may run at once ({setting}; "
                "a run waiting for its approvals counts until it is resumed or expires); try "
                "again when one of yours has ended."
            )
        if self.setting == "max_streams":
            return (
                f"The app is sending {limit} event streams, its limit ({setting}); try again "
                "when one has closed, or make the app with a higher max_streams."
            )
        return (
            f"You have {limit} event streams open, the most one user may have at once "
            f"({setting}: each client that follows a run counts); close one and try again."
        )

    def response(self) -> Response:
        """The refusal as the web apps answer it (a JSON error, with ``Retry-After``)."""
        response = error_response(self.status, self.code, self.message)
        response.headers["Retry-After"] = "1"
        return response


class StreamSlots:
    """The event streams an app sends at once, counted as a whole and by principal.

    A stream's response takes its slot as it starts (:meth:`take`) and frees it as it
    closes (:meth:`free`); a request that will answer with a stream asks :meth:`room` first.
    The limits are the run manager's settings as they stand, given at each look (its
    ``settings``, their one owner: replaced, they hold at once).
    """

    __slots__ = ("_by_owner", "open")

    def __init__(self) -> None:
        self.open = 0
        """The event streams sent now."""
        self._by_owner = CallerCounts()  # (the same streams, by principal)

    def room(self, owner: str | None, limits: WebSettings) -> NoRoom | None:
        """Why ``owner`` may not open one more event stream now (``None``: they may).

        ``limits``: the app's settings now (``max_streams``, ``max_streams_per_principal``).
        """
        if self.open >= limits.max_streams:
            return NoRoom("max_streams", limits.max_streams)
        if self._by_owner[owner] >= limits.max_streams_per_principal:
            return NoRoom("max_streams_per_principal", limits.max_streams_per_principal)
        return None

    def take(self, owner: str | None, limits: WebSettings) -> NoRoom | None:
        """Take a stream's slot for ``owner`` (:meth:`free` frees it), or say why not."""
        refused = self.room(owner, limits)
        if refused is None:
            self.open += 1
            self._by_owner.add(owner)
        return refused

    def free(self, owner: str | None) -> None:
        """Free a stream's slot of ``owner`` (its stream has closed)."""
        self.open -= 1
        self._by_owner.remove(owner)


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


class Ending:
    """What a job's events yield for a run's last events: its finish, failure or cancellation,
    or those that end it at a pause or at a question.

    They are logged whole, never cut by ``max_live_run_bytes`` (a cut after them would end
    the run a second time, after its client was told it ended): a run whose ending takes it
    over the bound ends as it says.
    """

    __slots__ = ("events",)

    def __init__(self, events: list[str]) -> None:
        self.events = events


# -- a run: a job's stream, and who follows it ---------------------------------------------------


class Run(EventLog):
    """One SSE stream of a job: its event log, and the clients that follow it."""

    __slots__ = ("__weakref__", "_grace_timer", "_manager", "followers", "job", "successor")

    def __init__(self, key: str, job: Job, *, recovered: bool = False) -> None:
        super().__init__(key, job.new_places(), job.tag, recovered=recovered)
        self.job = job
        self._manager = job.manager
        self.followers = 0
        self._grace_timer: asyncio.TimerHandle | None = None
        self.successor: Run | None = None  # the run its job went on in after it

    def end(self) -> None:
        """The stream ends here; the run is forgotten ``keep_runs_for`` seconds later."""
        if not self.done:
            super().end()
            self._manager.ended.forget_later(self)

    def blank(self) -> Run:
        """An ended run of no events under this run's key, of its job (no manager keeps it)."""
        blank = Run(self.key, self.job)
        EventLog.end(blank)  # (not Run.end: nothing is kept for late readers)
        return blank

    def attach(self) -> None:
        """A client follows the run (a pending cancellation is called off)."""
        self.followers += 1
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def detach(self) -> None:
        """A client left; the last one to leave a live run starts the grace period (if any)."""
        self.followers -= 1
        self.unfollowed()

    def unfollowed(self) -> None:
        """If nobody follows the live run, its grace period starts (unless it has already)."""
        if self.followers > 0 or self.done or self._grace_timer is not None:
            return
        grace = self._manager.settings.grace_period
        if grace is None:
            grace = DEFAULT_GRACE_PERIOD
        if math.isfinite(grace):
            self._grace_timer = asyncio.get_running_loop().call_later(grace, self._abandon)

    def _abandon(self) -> None:
        self._grace_timer = None
        if self.followers == 0 and not self.done:
            self.job.cancel()

    def response(
        self,
        start: int,
        *,
        frame: Callable[[str], str] | None = None,
        prelude: Sequence[str] = (),
        slot_held: bool = False,
    ) -> EventSourceResponse:
        """An SSE response that follows the run from ``start`` while the client stays.

        ``frame``: what each event's data becomes in this response (a protocol that wraps
        each event for its request: A2A's JSON-RPC envelope, which names the request's id);
        ``prelude``: events (already framed, without ids) sent before the run's (A2A's
        snapshot of the task, which a resubscribing client gets first); ``slot_held``: the
        caller took the stream's slot of the job's owner and hands it to the response
        (which frees it as it closes), so that the client never holds two.
        """
        events = self.follow(start)
        if frame is not None or prelude:
            events = _framed(events, frame, prelude)
        headers = self._manager.protocol.headers
        return _RunResponse(self.job, events, headers, self, slot_held=slot_held)

    async def aresponse_after(self, request: Request) -> Response:
        """The response of a client that follows the run after its ``Last-Event-ID`` (all of
        it without one), or the 400 of an id that is not the run's.

        A recovered run may keep the client waiting until its replay reaches the id: the
        client holds a stream's slot while it waits (refused without one), so the waiting
        are bounded as the streams are; its stream then holds that slot, handed over (not
        freed and taken again, which another client could take in between).
        """
        manager, owner = self.job.manager, self.job.owner
        refused = manager.streams.take(owner, manager.settings)
        if refused is not None:
            self.unfollowed()  # (a run made again for this request, now followed by nobody)
            return refused.response()
        try:
            start = await astart_position(request, self)
        except BaseException:
            manager.streams.free(owner)
            raise
        if isinstance(start, Response):
            manager.streams.free(owner)
            return start
        return self.response(start, slot_held=True)


async def _framed(
    events: AsyncIterator[ServerSentEvent],
    frame: Callable[[str], str] | None,
    prelude: Sequence[str],
) -> AsyncIterator[ServerSentEvent]:
    for data in prelude:
        yield sse(data)
    async for event in events:
        if frame is None:
            yield event
        else:
            yield sse(frame(str(event.data)), event.id)


_STOP_GRACE = 5.0
"""Seconds a stream has, once its server stops, to send its run's ending (then it is closed)."""


class _RunResponse(EventSourceResponse):
    """A stream of ``job``'s events, which holds a stream's slot of its owner while it is
    sent (refused without one); ``run``: the run it follows (``None``: its events follow
    the runs themselves); ``slot_held``: the slot was taken for it already (handed over).

    When the server stops, the stream stops its job (:meth:`Job.stop`): its run logs its
    ending, which the stream sends before it closes (within ``_STOP_GRACE`` seconds), so
    that no client is left with a run that ends nowhere. Under a server of
    :func:`~miniagents.ext.web.serving.server_config`, the stop is that server's own
    (:func:`~miniagents.ext.web.serving.server_stop`); under another uvicorn server, the stop
    of the one the thread's SIGTERM handler names as the stream starts, unless that one has
    stopped already (:func:`_uvicorn_serving`); with none (an app called in-process), no stop.
    """

    def __init__(
        self,
        job: Job,
        events: AsyncIterator[ServerSentEvent],
        headers: Mapping[str, str],
        run: Run | None = None,
        *,
        slot_held: bool = False,
    ) -> None:
        self._stopping = anyio.Event()
        super().__init__(
            events,
            headers=headers,
            ping=15,
            sep=LINE_END,
            shutdown_event=self._stopping,
            shutdown_grace_period=_STOP_GRACE,
        )
        self._job = job
        self._run = run
        self._slot_held = slot_held
        self._server_stop: asyncio.Event | None = None
        self._uvicorn: object | None = None  # (under another server: see _uvicorn_serving)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run = self._run
        manager, owner = self._job.manager, self._job.owner
        refused = None
        if not self._slot_held:
            refused = manager.streams.take(owner, manager.settings)  # (no await: look and take)
        if refused is not None:
            if run is not None:
                run.unfollowed()  # (a run started for this response, now followed by nobody)
            await refused.response()(scope, receive, send)
            return
        if run is not None:
            run.attach()
        self._server_stop = server_stop()  # (read in this request's task, which knows it)
        if self._server_stop is None:
            self._uvicorn = _uvicorn_serving()
        watch = _astop_at(self._stopping, self._job)
        # (owned by the manager, ended by this stream: never a MiniAgents block's task, whose
        # exit would wait for a watch that only its server's stop ends)
        stops = spawn(watch, "a web stream's watch of its server's stop", manager.tasks)
        try:
            await super().__call__(scope, receive, send)
        finally:
            stops.cancel()  # (it runs its cancellation a pass later: it holds no part of this)
            if run is not None:
                run.detach()
            manager.streams.free(owner)

    async def _listen_for_exit_signal_with_grace(self) -> None:
        # (sse-starlette's watch of the stop, replaced: it reads whichever server the signal
        # handler names at each look, a server stopped long ago too, which closes every
        # stream of the thread from then on)
        stop, server = self._server_stop, self._uvicorn
        if stop is not None:
            await stop.wait()
        elif server is None:
            await anyio.sleep_forever()  # (cancelled as the stream ends)
        else:
            # (uvicorn's stop is a flag, which nothing tells: polled, as sse-starlette does)
            while not getattr(server, "should_exit", True):  # noqa: ASYNC110
                await anyio.sleep(0.5)
        self._stopping.set()
        await anyio.sleep(_STOP_GRACE)  # (cancelled as the stream ends: its run's ending sent)


def _uvicorn_serving() -> object | None:
    """The uvicorn server that serves this thread's streams, if any (not one of server_config).

    The one the SIGTERM handler names (uvicorn's, in the main thread), unless its stop has
    begun: when two servers of the thread end in another order than they started, the one
    that ends last puts back the handler it found, the first's, whose server has stopped
    (sse-starlette's watch then closed every stream of the thread, of any server and of an
    app called in-process alike, with ``WebServerStoppedError``, until the process ended).
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return server if getattr(server, "should_exit", True) is False else None


async def _astop_at(stopping: anyio.Event, job: Job) -> None:
    """A stream's watch of its server's stop: ``job`` is stopped once ``stopping`` is set.

    Only the stream's job: sse-starlette tells every stream of the thread, whichever of the
    thread's servers stops, and would close this one as well. It holds the event and the job
    alone (the manager's while it lives, let go of its runs once it has ended), never the
    stream's response: cancelled as the stream ends, it runs its cancellation a pass of the
    loop after the stream has freed its slot, and a response it held would keep its run's
    events until then.
    """
    await stopping.wait()
    job.stop()


def _paused_elsewhere(pause_key: str) -> Response:
    """The 409 of a resume of a durable run that waits for its decisions on another server."""
    return error_response(
        409,
        "paused_elsewhere",
        f"The run of {pause_key!r} waits for its decisions on another server sharing the "
        "database of durable runs (another DBOS executor, DBOS__VMID): send the resume to "
        "that server. If that server is gone, start it again with the same DBOS__VMID (its "
        "runs are recovered at its start) and resume there, or start a new run without "
        "resume, which gives the paused one up.",
    )


def _decided_already(
    job: Job, decisions: Sequence[tuple[ToolApprovalRequest, ApprovalDecision]]
) -> Response | None:
    """The refusal of a resume of ``job`` whose ``decisions`` decide a call decided already
    (elsewhere: the calls still waiting are named), if one does; ``None`` for a job whose
    run went on (its resume gets the rest, its decisions unsent)."""
    if job.went_on:
        return None
    for asked, _ in decisions:
        if not asked.pending:
            return not_pending(asked.call_id, asked.tool_name, [a for a, _ in decisions])
    return None


# -- a job: a reply turned into events, streamed to one run at a time ------------------------------


class Job:
    """One agent reply turned into events by a task of its own, streamed to one run at a time.

    Its events go to its current run; where they yield a :class:`Pause`, the run ends and
    the job waits (:meth:`aresumed`) until :meth:`resume` gives it a new run, or
    ``keep_runs_for`` seconds pass and it is cancelled (see :meth:`_expire`).
    ``workflow_id``: the durable run of its reply, if any; ``owner``: the principal who
    started it; ``key``: the key of its first run; ``runs``: while it lives, every run it
    streamed to, in order (the last is ``current``). Once it has ended, its encoder keeps
    what the protocol answers about it
    (:meth:`WebProtocol.ended <miniagents.ext.web._protocol.WebProtocol.ended>`) and it lets go of
    its runs: ``runs`` is empty, ``current`` an empty ended run, and :meth:`last_run` its
    last run while anything else keeps that (the manager, for late readers).
    """

    __slots__ = (
        "_cut_ending",
        "_expired_taken",
        "_expiry",
        "_last",
        "_moved",
        "_on_abandon",
        "_resumed",
        "_settled",
        "_taken",
        "approvals",
        "cancelling",
        "current",
        "cut",
        "encoder",
        "held_bytes",
        "kept_bytes",
        "key",
        "last_pause",
        "lost_pauses",
        "manager",
        "owner",
        "pause_key",
        "pauses",
        "question",
        "runs",
        "stopped",
        "tag",
        "task",
        "usage",
        "workflow_id",
    )

    def __init__(
        self,
        manager: RunManager,
        owner: str | None,
        ids: JobIds,
        encoder: Encoder,
        *,
        recovered: bool = False,
        on_abandon: Callable[[], None] | None = None,
        workflow_id: str | None = None,
        usage: JobUsage | None = None,
    ) -> None:
        self.manager = manager
        self.usage = JobUsage() if usage is None else usage  # (its reply's meter: its encoder's)
        self.owner = owner
        self.encoder = encoder
        self._on_abandon = on_abandon
        self.workflow_id = workflow_id
        self.tag = secrets.token_hex(4)  # its logs' renames (see EventLog.resume_point)
        self.pauses = 0  # how many times it paused (a replay's resumed pauses too)
        self.lost_pauses = 0  # its replay's pauses whose notes were lost (FoundRun's)
        self.last_pause: Pause | None = None
        self.question: InputRequest | None = None  # the question it waits on, paused there
        self._moved = asyncio.Event()  # set when it goes to a new run, pauses or ends
        self.pause_key = ids.pause_key
        self.approvals = MemoryApprovals()  # the reply's requests (its run: the job's key)
        self.cancelling = False
        self.stopped = False  # cancelled as its server stops (see stop)
        self.key = ids.key
        self.current = Run(ids.key, self, recovered=recovered)
        self.runs = [self.current]
        self._last: weakref.ref[Run] | None = None  # (once it has ended)
        self._resumed: asyncio.Future[str] | None = None
        self._settled = asyncio.Event()  # set where the job pauses, and when it ends
        self._expiry: asyncio.TimerHandle | None = None
        self._taken = False  # its pause taken by a resume that notes it (see take)
        self._expired_taken = False  # its expiry came while taken (see give_back)
        self.task: asyncio.Task[None] | None = None
        self.kept_bytes = 0  # what its encoder keeps once it has ended (its protocol's count)
        self.cut: WebRunTooLargeError | None = None  # why it was cut, if it was
        self.held_bytes = 0  # what it held before its current run (its protocol's count)
        self._cut_ending: list[str] = []  # the events that end it, as it stood when cut

    def ask(self, request: ToolApprovalRequest) -> None:
        """Keep ``request``, a call of the job's reply that asked for approval."""
        self.approvals.add(self.pause_key, request)

    def asked(self, call_id: str) -> ToolApprovalRequest | None:
        """The request of the call ``call_id``, if the job's reply asked for its approval."""
        return self.approvals.get(self.pause_key, call_id)

    @property
    def went_on(self) -> bool:
        """Whether its run went on without it while it was paused: no call it paused at
        waits any more. Each was decided elsewhere (``aapprove``/``adeny`` of another
        process, DBOS's API: the first decision holds) or withdrawn undecided (its agent
        was stopped: its durable run was cancelled by a new run of its thread on another
        server, say)."""
        asked = self.waiting(self.last_pause.waiting) if self.last_pause is not None else []
        return bool(asked) and not any(request.pending for request in asked)

    async def aapprovals_open(self) -> None:
        """A durable job's run waits on the calls it asks for: once their approvals are in
        its database (a new run of its thread on another server sees it wait, and replaces
        it), so that its client is told only then."""
        durable, workflow_id = self.manager.durable, self.workflow_id
        if durable is not None and workflow_id is not None:
            await durable.aapprovals_open(workflow_id, self.waiting(), self.manager.protocol.logger)

    def waiting(self, call_ids: Sequence[str] | None = None) -> list[ToolApprovalRequest]:
        """The requests still pending (of ``call_ids``, if given), in the order they came."""
        asked = self.approvals.of(self.pause_key)
        if call_ids is None:
            return [request for request in asked if request.pending]
        return [request for request in asked if request.call_id in call_ids]

    def response(
        self, events: AsyncIterator[ServerSentEvent], *, slot_held: bool = False
    ) -> EventSourceResponse:
        """An SSE response of ``events`` (of the job's runs), which holds a stream's slot of
        the job's owner while it is sent, as a run's own does (refused without one).

        ``slot_held``: the caller took that slot (:meth:`StreamSlots.take`) and hands it to
        the response, which frees it as it closes (see :meth:`Run.response`).
        """
        headers = self.manager.protocol.headers
        return _RunResponse(self, events, headers, slot_held=slot_held)

    def start(self, events: AsyncGenerator[list[str] | Ending | Pause, None]) -> None:
        """Start streaming ``events`` (the job's own, see :func:`_job_events`).

        Its task is its manager's (never the ``MiniAgents`` block current as it starts,
        whose exit would wait for a job that outlives its request by design: resumed,
        replayed, or ended by its server's stop or its expiry).
        """
        self.task = spawn(self._produce(events), f"web run {self.current.key}", self.manager.tasks)
        self.task.add_done_callback(_drop_cancellation)

    def new_places(self) -> EventPlaces | None:
        """A tracker of a new run's event places: for a durable agent's job only."""
        if self.manager.durable is None or self.workflow_id is None:
            return None
        return EventPlaces(self.manager.protocol)

    @property
    def done(self) -> bool:
        """Whether the job has ended (its reply read whole, failed or cancelled)."""
        return self.task is not None and self.task.done()

    @property
    def paused(self) -> bool:
        """Whether the job waits to be resumed (its last run has ended)."""
        return self._resumed is not None and not self._resumed.done() and not self.done

    async def _produce(self, events: AsyncGenerator[list[str] | Ending | Pause, None]) -> None:
        """Log ``events`` in the job's runs until they end, then end the job (closing them)."""
        try:
            async for item in events:
                if self.cut is not None:
                    continue  # (cut: nothing more is kept until its cancellation lands)
                if isinstance(item, Ending):
                    for data in item.events:
                        self.current.append(data)
                    continue
                if not isinstance(item, Pause):
                    for index, data in enumerate(item):
                        self.current.append(data)
                        if self._check_size(item[index + 1 :]):
                            break
                    continue
                self.pauses += 1
                self.last_pause = item
                if item.into is None:
                    self._pause()
                else:
                    self._go_on(item.into)
        except asyncio.CancelledError:
            if not self.current.done and self.cut is None:
                for data in self._cancelled_ending():
                    self.current.append(data)
            raise
        except Exception as error:  # (a step of its own: was logged by asyncio alone, untold)
            await self._astep_failed(error)
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            if self.cut is not None and not self.current.done:
                for data in self._cut_ending:
                    self.current.append(data)
            self.current.end()
            try:
                # (left open where a step above failed: its reply and agents are let go of
                # here, in the job's task, once its clients are told the run has ended and
                # before its waiters, who wake to an ended job; else it does not wait)
                await events.aclose()
            except Exception as error:  # (raised closing them: its run has ended)
                await self._astep_failed(error)
            finally:
                self._ended()

    async def _astep_failed(self, error: Exception) -> None:
        """A step of the job's own failed with ``error`` (its protocol's encoder, say).

        Its run, if it has not ended, ends with its protocol's error events, which tell its
        client that the server failed (the error's class and the reference the log has it
        under; its text with ``error_texts``), the error logged once, here (the job's task
        ends without it); an error after the run's end is only logged. A durable job's
        failure is told as its agent's is (see :func:`_afailed`): under the reference noted
        with its run when its step failed so first (read again after a restart, its replay
        fails the same step), else under a new one, noted. A job cancelled while it waits on
        its database so (its server stops, say) still ends its run with the error events,
        under the reference logged (a new one, not noted), before its cancellation goes on.
        """
        protocol, run = self.manager.protocol, self.current
        if run.done or self.cut is not None:
            protocol.logger.error(
                "The %s run %r failed with %s after it had ended.",
                protocol.name,
                run.key,
                type(error).__name__,
                exc_info=error,
            )
            return
        told: ToldError | None = None  # (what its client is told: its encoder's own, if None)
        if protocol.tells_errors:
            told_of = functools.partial(self._told_step, error)

            def cancelled(told: ToldError | None) -> None:  # (a new reference, if none yet)
                self._end_failed(error, told or told_of(""))

            told = await _atold_noted(self, error, told_of, cancelled)
        self._end_failed(error, told)

    def _told_step(self, error: Exception, logged: str) -> ToldError:
        """What a client is told of the job's own failed step (``logged``: its reference, if
        the log has it already): the server failed, not the agent."""
        protocol = self.manager.protocol
        return told_error(
            error,
            protocol.logger,
            f"The {protocol.name} run {self.current.key!r}",
            error_texts=self.manager.settings.error_texts,
            logged=logged,
            who="The server, streaming the run,",
            operator="the server's operator",
        )

    def _end_failed(self, error: Exception, told: ToldError | None) -> None:
        """End the run with the protocol's events of ``error`` (its agent's, or the job's own
        failed step's), ``told`` (``None``: its encoder tells its own, logging it once)."""
        protocol, run = self.manager.protocol, self.current
        try:
            if told is not None:
                ending = protocol.failed(self.encoder, error, told)
            else:
                ending = self.encoder.failed(error)
            for data in ending:
                run.append(data)
        except Exception:  # (its protocol's failed events failed too: the run ends untold)
            protocol.logger.exception(
                "The %s protocol could not end the run %r with the error of its failed step "
                "(%s); the run ends without it. Fix the protocol's encoder.",
                protocol.name,
                run.key,
                type(error).__name__,
            )

    def _ended(self) -> None:
        """The job's last steps: it lets go of its runs, and is an ended job to its waiters."""
        try:
            self._let_go()  # (first: the manager counts what its encoder keeps)
        finally:
            self.manager.forget_job(self)
            self._settled.set()
            self._notify_moved()  # (its waiters wake after this step)

    def _cancelled_ending(self) -> list[str]:
        """The events that end the run cancelled: given up on, or stopped with its server.

        Stopped so, it fails with a :class:`WebServerStoppedError` where its protocol
        :attr:`~._protocol.WebProtocol.fails_stopped_runs`, which says whether it can be
        read again (a durable agent's run goes on after a restart).
        """
        if not (self.stopped and self.manager.protocol.fails_stopped_runs):
            return self.encoder.cancelled()
        key = self.current.key
        if self.workflow_id is not None:
            stopped = WebServerStoppedError(
                f"The server stopped while the run {key!r} streamed; the run goes on (it is "
                "durable) once the server starts again, or on another server sharing its "
                "database of durable runs: read it again then, with the Last-Event-ID of "
                "the last event you got, to get the rest."
            )
        else:
            stopped = WebServerStoppedError(
                f"The server stopped while the run {key!r} streamed, and the run stopped "
                "with it: it cannot be read again. Ask again in a new run once the server "
                "is back."
            )
        return self.encoder.failed(stopped)

    def _check_size(self, unlogged: Sequence[str]) -> bool:
        """Cut the run if it makes its job hold over ``max_live_run_bytes``; whether it was cut.

        What the job holds: its run's events, with :attr:`held_bytes` (what its protocol
        counts it held as the run started: an A2A task's earlier turns and its client's
        messages). Only where its protocol :attr:`~._protocol.WebProtocol.cuts_live_runs`:
        its job is cancelled, and its run ends with the protocol's error events.

        ``unlogged``: the events of the same part after the last one logged, which are not
        (a cut between two events of a part ends what the run opened, as the client saw it).
        """
        run, bound, held = self.current, self.manager.settings.max_live_run_bytes, self.held_bytes
        if held + run.size <= bound or not self.manager.protocol.cuts_live_runs:
            return False
        size, earlier, new_turn = held + run.size, "", ""
        if held:  # (A2A's task: its earlier turns)
            earlier = f" (with its job's earlier turns' events and messages, {held})"
            new_turn = "start a new task for a new turn, "
        self.cut = WebRunTooLargeError(
            f"The run {run.key!r} was cut: its events grew to {size} bytes{earlier}, over the "
            f"app's max_live_run_bytes ({bound}). Ask for a shorter reply (bound the model's "
            f"output, its max_tokens say), {new_turn}or make the app with a higher "
            "max_live_run_bytes."
        )
        # (ended now: the events its reply writes until its cancellation lands are dropped,
        # and what they open or end must not change how it ends)
        protocol = self.manager.protocol
        try:
            self._cut_ending = protocol.cut(self.encoder, self.cut, unlogged)
        except Exception:  # (a protocol's own bug: the run still ends, cut, with its error)
            protocol.logger.exception(
                "The %s protocol's cut() failed on the run %r; the run ends with its "
                "encoder's failed() events instead. Fix the protocol's cut().",
                protocol.name,
                run.key,
            )
            self._cut_ending = self.encoder.failed(self.cut)
        self.cancel()
        return True

    def _let_go(self) -> None:
        """The job has ended: its encoder keeps what answers for it, and it lets go of its runs."""
        self.kept_bytes = self.manager.protocol.ended(
            self.encoder, [run.events for run in self.runs]
        )
        last = self.current
        self._last = weakref.ref(last)
        self.current = last.blank()
        self.runs = []

    def last_run(self) -> Run:
        """The run it streams to; once it has ended, its last run while anything keeps that
        (the manager, for late readers, or a client that follows it), else an empty one."""
        last = self._last() if self._last is not None else None
        return last if last is not None else self.current

    def _pause(self) -> None:
        loop = asyncio.get_running_loop()
        self._resumed = loop.create_future()
        self._expiry = loop.call_later(self.manager.settings.keep_runs_for, self._expire)
        self.manager.paused_at(self)
        self.current.end()  # (paused first: the manager keeps the run its job waits on)
        self._settled.set()
        self._notify_moved()

    @property
    def pause_index(self) -> int:
        """The index its last pause is noted under (``web.pause.<n>``: see ``_durable``).

        Past the indices of its replay's pauses whose notes were lost, so that a pause after
        the replay is never noted over a pause of it.
        """
        return self.pauses - 1 + self.lost_pauses

    def take(self) -> bool:
        """Take the paused job's pause for a resume that writes before it goes on (a durable
        job's note of its pause); ``False`` if another took it already.

        Until :meth:`resume` or :meth:`give_back`, its expiry waits (see :meth:`give_back`)
        and nobody else takes it: one note of the pause, by the one that goes on from it.
        """
        if self._taken:
            return False
        self._taken = True
        return True

    def give_back(self) -> None:
        """Give back the pause :meth:`take` took, if the job was not resumed (the note
        failed, or was cancelled and then withdrawn, or the resume was refused after it): the
        job waits to be resumed again, or, its ``keep_runs_for`` past meanwhile, expires now."""
        if not self._taken:
            return
        self._taken = False
        if self._expired_taken:
            self._expired_taken = False
            if self.paused:
                self._expire()

    def _expire(self) -> None:
        """Nobody resumed the pause within ``keep_runs_for``: the job is cancelled, its
        reply's run given up on. Unless that run went on without it (:attr:`went_on`): the
        run is its durable engine's then, and runs on; the job goes on, unread, to its end.
        A pause taken (:meth:`take`) expires only if it is given back."""
        self._expiry = None
        if self._taken:
            self._expired_taken = True
            return
        if not self.went_on:
            self.cancel()
            return
        self.manager.unpaused(self)  # (its new run: nobody reads it, nor finds it by its key)
        durable, pause = self.manager.durable, self.last_pause
        unread = f"{self.current.key} (unread)"
        if durable is not None and self.workflow_id is not None and pause is not None:
            # (noted as a resume's pause is: the replay pauses here too, and goes on in it)
            point = PausePoint(unread, pause.at, pause.waiting)
            durable.note_pause_later(self.owner, self.workflow_id, self.pause_index, point)
        self.resume(unread)

    def _go_on(self, run_key: str) -> None:
        """A replayed pause: the run ends here, the job goes on at once under ``run_key``."""
        self.current.end()
        following = Run(run_key, self, recovered=True)
        self.current.successor = following
        self.current = following
        self.runs.append(self.current)
        self.manager.moved(self)
        self._notify_moved()

    def _notify_moved(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    async def arun_after(self, pauses: int) -> Run:
        """The run the job streams to once it has paused ``pauses`` times (or settled)."""
        while self.pauses < pauses and not self.done and not self.paused:
            await self._moved.wait()
        return self.last_run()

    async def asettled(self) -> None:
        """Wait until the job pauses (its run waits to be resumed) or ends."""
        await self._settled.wait()

    async def anext_run(self, run: Run) -> Run | None:
        """The run the job goes on in after its ``run``, once it does; ``None`` if it ends first.

        (A job paused at ``run`` goes on in a new run when it is resumed.)
        """
        while run.successor is None and not self.done:
            await self._moved.wait()
        return run.successor

    async def aresumed(self) -> str:
        """(For the job's events, after a :class:`Pause`.) The new run's key, once resumed."""
        if self._resumed is None:  # pragma: no cover - the pause made it
            self._resumed = asyncio.get_running_loop().create_future()
        return await self._resumed

    def resume(self, run_key: str) -> Run:
        """Go on in a new run under ``run_key``; return the run."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._taken = self._expired_taken = False
        following = Run(run_key, self)
        self.current.successor = following
        self.current = following
        self.runs.append(following)
        self._settled = asyncio.Event()
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(run_key)
        self._notify_moved()
        return self.current

    def cancel(self, *, abandoned: bool = True) -> None:
        """Cancel the job now (its run logs the cancellation events for late readers).

        ``abandoned``: nobody wants its reply any more (its clients left, its wait expired,
        a new job replaced it), which ``on_abandon`` is told; not so when the app stops.
        """
        if self.task is not None and not self.task.done():
            self.cancelling = True
            self.task.cancel()
            if abandoned and self._on_abandon is not None:
                self._on_abandon()

    def stop(self) -> None:
        """Cancel the job as its server stops: its run ends saying so (not given up on)."""
        self.stopped = True
        self.cancel(abandoned=False)


def _drop_cancellation(task: asyncio.Task[None]) -> None:
    """A job's ``task`` has ended: cancelled, it lets go of the ``CancelledError`` it kept.

    That error's traceback holds the stopped frames of the job's events: its reply, its
    question and what its agent's wait held, for as long as the job is kept
    (``keep_runs_for``). The task still says it was cancelled; awaited, it raises a new one.
    """
    if task.cancelled():
        with contextlib.suppress(asyncio.CancelledError):
            task.result()  # (hands the kept error over, once: it is dropped here)


async def _job_events(
    job: Job,
    make_reply: Callable[[], MessageSequencePromise[Message]],
    ids: JobIds,
    found: FoundRun | None,
) -> AsyncGenerator[list[str] | Ending | Pause, None]:
    """The events of a job, made by its encoder; ``found``: the durable run it replays."""
    manager, encoder = job.manager, job.encoder
    yield encoder.opening()
    # (set while it waits at a yield: closed there, what the close raises, in the reply or
    # the agent, is raised on, as no event can be yielded any more)
    at_yield = False
    made: MessageSequencePromise[Message] | None = None
    try:
        async with manager.context():
            protocol = manager.protocol
            with charged_to(job.usage.meter):  # (every call the reply causes, its agent tools')
                made = make_reply()
            reply = parts.reply_parts(
                made,
                ids.prefix,
                approvals_last=protocol.approvals_last,
                error_texts=manager.settings.error_texts,
            )
            pauses = _Pauses(job, found)
            # (each closed as the events end any way: cancelled while paused, or closed at
            # a question's pause, it was left open until collected)
            async with contextlib.aclosing(reply):
                async for part in reply:
                    if isinstance(part, parts.InputAsked):
                        async with contextlib.aclosing(_asking(job, part)) as asking:
                            async for asked in asking:
                                at_yield = True
                                yield asked
                                at_yield = False
                        continue
                    if isinstance(part, parts.ApprovalAsked):
                        job.ask(part.request)
                    elif manager.approval_flow == "protocol" and isinstance(
                        part, parts.AwaitingApproval | parts.ResultStart
                    ):
                        async with contextlib.aclosing(pauses.at(part)) as pausing:
                            async for paused in pausing:
                                at_yield = True
                                yield paused
                                at_yield = False
                    events = encoder.events(part)
                    at_yield = True
                    yield events
                    at_yield = False
    except Exception as error:  # the agent's failure ends the run with it
        if at_yield:  # (an error of the close, not the agent's failure)
            raise
        if job.workflow_id is not None and DurableJobs.cancelled_there(error, found, made):
            yield Ending(encoder.cancelled())  # (as its replay ends, after a restart)
            return
        yield Ending(await _afailed(job, error))
        return
    except BaseException as error:  # DBOS stopped the durable run underneath: it says so
        durable = manager.durable
        if (
            at_yield
            or durable is None
            or job.workflow_id is None
            or not durable.stopped_by_dbos(error)
        ):
            raise
        stopped = await durable.astopped(job.workflow_id, error, manager.protocol.logger)
        # (cancelled: as its replay ends, after a restart)
        yield Ending(encoder.failed(stopped) if stopped is not None else encoder.cancelled())
        return
    yield Ending(encoder.finished())


async def _afailed(job: Job, error: Exception) -> list[str]:
    """The events that end ``job``'s run with its agent's ``error``, as its client is told it.

    Where its protocol :attr:`~._protocol.WebProtocol.tells_errors`, the client is told what
    its :meth:`~._protocol.WebProtocol.told` says, naming the agent by its alias (*"The agent
    RESEARCHER failed with ..."*); else its encoder tells its own. A durable
    job's failure is told under the reference noted with its run when it failed, if it is
    that failure (read again: replayed after a restart), else under a new one, noted then
    before its client is told it (see :func:`_atold_noted`). A job cancelled while it reads
    that reference so ends its run as the cancellation says (given up on, or stopped with
    its server), not with the error, which is not logged; cancelled while it notes the new
    one, under which the log has the error, it ends its run with the error told under it.
    """
    manager = job.manager
    protocol = manager.protocol
    if not protocol.tells_errors:
        return job.encoder.failed(error)
    failed = f"The {protocol.name} run {job.current.key!r}"
    error_texts = manager.settings.error_texts
    who = f"The agent {manager.agent.alias}"  # (its client's sentence names it, as A2A's)

    def told_of(logged: str) -> ToldError:
        return protocol.told(error, failed, error_texts=error_texts, logged=logged, who=who)

    if protocol.told_as_written(error):  # (no reference: none is noted)
        return protocol.failed(job.encoder, error, told_of(""))

    def cancelled(told: ToldError | None) -> None:
        if told is not None:  # (logged under its reference: its client is told it, and the
            job._end_failed(error, told)  # run ends so, not as the cancellation)
            job.current.end()

    return protocol.failed(job.encoder, error, await _atold_noted(job, error, told_of, cancelled))


async def _atold_noted(
    job: Job,
    error: Exception,
    told_of: Callable[[str], ToldError],
    cancelled: Callable[[ToldError | None], None],
) -> ToldError:
    """What ``job``'s client is told of its ``error`` (its agent's, or a step's of its own).

    ``told_of``: what it is told, given the reference the log has the error under already
    (``""``: none, a new one is logged). A durable job's failure is told under the
    reference noted with its run when it failed so first (read again: its replay, after a
    restart, fails the same way), else under a new one, noted then, before its client is
    told it; a failure of the notes past those :class:`DurableJobs` tells itself is logged
    (a warning), and the error told under a new reference. Cancelled while it waits on its
    database, the cancellation goes on, ``cancelled`` told first what the client would be
    told under the reference logged (``None`` if none was read nor logged yet).
    """
    durable, workflow_id = job.manager.durable, job.workflow_id
    if durable is None or workflow_id is None:
        return told_of("")
    logger = job.manager.protocol.logger
    told: ToldError | None = None
    try:
        logged = await durable.alogged_failure(workflow_id, error)
        told = told_of(logged)
        if not logged:
            await durable.anote_failure(workflow_id, error, told.reference, logger)
    except asyncio.CancelledError:
        cancelled(told)
        raise
    except Exception as failure:  # (its database's, past those DurableJobs tells itself)
        logger.warning(
            "The reference of the run %r's failure could not be read from or noted with "
            "its durable run (%s): it is told under a new one.",
            job.current.key,
            type(failure).__name__,
            exc_info=failure,
        )
        return told or told_of("")
    return told


async def _asking(
    job: Job, part: parts.InputAsked
) -> AsyncGenerator[list[str] | Ending | Pause, None]:
    """The events of the agent's question ``part``, and the pause until it is answered.

    A protocol whose clients answer none gets the question as a text, withdrawn first (the
    agent's wait for the answer raises, saying why), so that nothing waits for nobody.
    """
    manager, encoder, request = job.manager, job.encoder, part.request
    if not manager.protocol.takes_answers:
        withdraw_input_request(
            request,
            f"The agent asked its caller a question that nobody can answer over "
            f"{manager.protocol.name}: its clients answer no input requests. Ask for what the "
            "agent needs in the request (its arguments or its first message), or serve it "
            "over A2A (a2a_app), whose clients do. The agent's question, in its own words (at "
            f"most 200 characters): {quoted_question(request)}.",
        )
        for text in parts.as_text(part):
            yield encoder.events(text)
        return
    yield Ending(manager.protocol.asking(encoder, part.message_id, request))  # (ends the run)
    if not request.pending:
        return
    job.question = request
    yield Pause(part.message_id, ())
    try:
        run_key = await job.aresumed()
    finally:
        job.question = None
    yield encoder.resuming(run_key)


class _Pauses:
    """Where a job's run pauses: at a call that waits (and, replayed, where it paused then)."""

    __slots__ = ("_decided", "_job", "_replayed")

    def __init__(self, job: Job, found: FoundRun | None) -> None:
        self._job = job
        self._decided = found.decided if found is not None else frozenset()
        self._replayed = list(found.pauses) if found is not None else []  # resumed then

    async def at(
        self, part: parts.AwaitingApproval | parts.ResultStart
    ) -> AsyncGenerator[list[str] | Ending | Pause, None]:
        """The pauses before ``part``: those replayed, then one per wait for its decision.

        The replayed points are in the order the run reached their calls: those before the
        first point at ``part``'s call were at calls this replay passed without reaching
        them (a note left by a resume that never went on, say), and are skipped, counted as
        lost (the job's next pause is noted past their indices, never over them). So are
        those left at a pause no point names (the run waits there, live): their calls come
        after it, and the run goes on from it live, in the runs its resumes name.
        """
        job, encoder = self._job, self._job.encoder
        ats = [point.at for point in self._replayed]
        if part.call_id in ats and (skipped := ats.index(part.call_id)):
            del self._replayed[:skipped]  # (was: the first point only was looked at)
            job.lost_pauses += skipped
        while self._replayed and self._replayed[0].at == part.call_id:  # paused here, resumed
            point = self._replayed.pop(0)
            yield Ending(encoder.pausing(job.waiting(point.waiting)))
            yield Pause(point.at, point.waiting, into=point.run)
            yield encoder.resuming(point.run)
        if not isinstance(part, parts.AwaitingApproval) or part.call_id in self._decided:
            return
        while part.request.pending:  # (a resume may answer other calls first)
            await job.aapprovals_open()
            if part.request.pending:  # (not decided meanwhile)
                # (was: kept, and a later call they named paused again, in a run never resumed)
                job.lost_pauses += len(self._replayed)
                self._replayed.clear()
                waiting = job.waiting()
                yield Ending(encoder.pausing(waiting))
                yield Pause(part.call_id, [asked.call_id for asked in waiting])
                run_key = await job.aresumed()
                yield encoder.resuming(run_key)


# -- the manager ----------------------------------------------------------------------------------


_APPROVAL_FLOWS: tuple[ApprovalFlow, ...] = get_args(ApprovalFlow)
"""The values ``approval_flow`` takes."""


def check_agent(agent: object, app: str) -> None:
    """Refuse, as the app ``app`` is made, an ``agent`` that is no agent (no ``MiniAgent``).

    Raises:
        WebConfigurationError: for a plain function (``@miniagent`` was left out), an agent's
            class, or anything else: each request would fail on it.
    """
    if isinstance(agent, MiniAgent):
        return
    # (was: taken, and every request failed with an AttributeError on it)
    plain = callable(agent) and not isinstance(agent, type)
    fix = (
        "Decorate the function with @miniagent (from miniagents import miniagent), or pass "
        "miniagent(function), and give the app the agent it makes."
        if plain
        else "Pass an agent: a function decorated with @miniagent, or an LLM agent."
    )
    raise refused_argument(
        agent, "agent", "an agent (a MiniAgent)", owner=app, fix=fix, error=WebConfigurationError
    )


def _check_context(context: object, app: str) -> None:
    """Refuse a ``context`` that makes no ``MiniAgents`` context: an instance, or no callable.

    Raises:
        WebConfigurationError: naming both ways to give it (was: an instance taken, and
            each run failed calling it).
    """
    if isinstance(context, MiniAgents) or not callable(context):
        raise refused_argument(
            context,
            "context",
            "a function that makes a MiniAgents context (each run enters one of its own)",
            owner=app,
            fix="Pass the class, context=MiniAgents, or a function that makes one with your "
            "settings, context=lambda: MiniAgents(...); not a MiniAgents instance.",
            error=WebConfigurationError,
        )


class _CheckedContext:
    """An app's ``context`` factory, whose every result is checked to be a ``MiniAgents``.

    The factory is called per run (and once by a durable app's lifespan), so a factory that
    makes something else (``context=lambda: None``) is found where it is called, and the run
    fails saying how to fix it (was: each run failed with a ``TypeError`` about the
    asynchronous context manager protocol, which named neither the factory nor the fix).
    """

    __slots__ = ("_app", "_context_factory")

    def __init__(self, make: Callable[[], MiniAgents], app: str) -> None:
        self._context_factory = make
        self._app = app

    def __call__(self) -> MiniAgents:
        """A context made by the factory.

        Raises:
            WebConfigurationError: if the factory made no ``MiniAgents``.
        """
        made: object = self._context_factory()  # (typed; untyped code may give any function)
        if isinstance(made, MiniAgents):
            return made
        given = "None" if made is None else a_class(type(made))
        raise WebConfigurationError(
            f"{self._app}'s context= made {given}, not a MiniAgents context, so the "
            "run could not start. Pass the class, context=MiniAgents, or a function that "
            "returns one with your settings, context=lambda: MiniAgents(...).",
            parameter="context",
        )


class RunManager:
    """The runs of one app, by owner and key, each kept ``keep_runs_for`` seconds after it ends.

    Args:
        protocol: The protocol its runs speak.
        agent: The agent each job runs.
        context: Makes the ``MiniAgents`` context each job runs in.
        approval_flow: How its runs ask for approvals.
        settings: The app's limits (checked when they were made), read by their names.
        app: The name of the app function that makes it (``"agui_app"``), said in a refusal.

    Raises:
        WebConfigurationError: if ``agent`` is no agent (a plain function, say: see
            :func:`check_agent`), ``context`` makes no context (a ``MiniAgents`` instance,
            say), or ``approval_flow`` is none of the flows.
    """

    __slots__ = (
        "_jobs",
        "_keyed",
        "_paused",
        "_resuming",
        "_runs",
        "agent",
        "approval_flow",
        "context",
        "durable",
        "ended",
        "protocol",
        "settings",
        "streams",
        "tasks",
    )

    def __init__(
        self,
        protocol: WebProtocol,
        agent: MiniAgent[..., Message],
        *,
        context: Callable[[], MiniAgents],
        approval_flow: ApprovalFlow,
        settings: WebSettings,
        app: str = "RunManager",
    ) -> None:
        check_agent(agent, app)
        _check_context(context, app)
        flow: object = approval_flow  # (typed; untyped code may give anything)
        if flow not in _APPROVAL_FLOWS:
            # (was: any other value taken, and run as "protocol")
            raise refused_argument(
                flow,
                "approval_flow",
                " or ".join(repr(allowed) for allowed in _APPROVAL_FLOWS),
                owner=app,
                fix='Pass approval_flow="protocol" (the default: the run pauses, and the '
                'protocol\'s resume decides) or approval_flow="in_stream" (the stream stays '
                "open, and the app's approvals URL decides).",
                error=WebConfigurationError,
            )
        self.protocol = protocol
        self.agent = agent
        self.context: Callable[[], MiniAgents] = _CheckedContext(context, app)
        self.approval_flow: ApprovalFlow = approval_flow
        self.settings = settings
        self.durable = DurableJobs.of(agent, protocol.name)  # a durable agent's runs
        self.streams = StreamSlots()  # the event streams sent now (limited by self.settings)
        # the tasks it owns, never a MiniAgents block's (whose exit would wait for them): its
        # jobs' (see Job.start) and its streams' watches of their server's stop
        self.tasks: set[asyncio.Task[None]] = set()
        self._runs: dict[tuple[str | None, str], Run] = {}
        self._jobs: set[Job] = set()
        self._keyed: dict[tuple[str | None, str], Job] = {}
        # the paused jobs by pause key, the latest to pause last (two runs of one AG-UI
        # thread may both pause): live jobs, so bounded by max_live_runs
        self._paused: dict[tuple[str | None, str], dict[Job, None]] = {}
        self._resuming: set[tuple[str | None, str]] = set()  # (a resume waits for its pause)
        self.ended = EndedRuns(self)  # the ended runs and jobs it keeps, within its bounds

    @property
    def live(self) -> int:
        """How many jobs run (or wait paused) now."""
        return len(self._jobs)

    @property
    def kept(self) -> int:
        """How many runs are kept now (live, or ended less than ``keep_runs_for`` ago)."""
        return len(self._runs)

    def get(self, key: str, owner: str | None = None) -> Run | None:
        """``owner``'s run ``key``, unless there is none or it ended over ``keep_runs_for`` ago."""
        self._forget_expired()
        return self._runs.get((owner, key))

    def job(self, key: str, owner: str | None = None) -> Job | None:
        """``owner``'s job whose first run is ``key``: while it lives, ``keep_runs_for`` after."""
        return self._keyed.get((owner, key))

    def jobs(self, owner: str | None = None) -> list[Job]:
        """``owner``'s jobs that :meth:`job` finds now (live, or ended within ``keep_runs_for``).

        Oldest started first; at most ``max_live_runs`` live and ``max_ended_runs`` ended ones, so
        a protocol that lists them (A2A's ``ListTasks``) lists within bounds.
        """
        return [job for (who, _), job in self._keyed.items() if who == owner]

    def paused(
        self, pause_key: str, owner: str | None = None, which: Callable[[Job], bool] | None = None
    ) -> Job | None:
        """``owner``'s job paused under ``pause_key`` (a thread, a chat), if one waits there.

        Of several (runs of one AG-UI thread that paused each), the latest to pause that
        ``which`` accepts (any, if not given).
        """
        for job in reversed(self._paused.get((owner, pause_key), {})):
            if job.paused and (which is None or which(job)):
                return job
        return None

    def _paused_jobs(self, owner: str | None, pause_key: str) -> list[Job]:
        return [job for job in self._paused.get((owner, pause_key), {}) if job.paused]

    def unpaused(self, job: Job) -> None:
        """``job`` waits under its pause key no more (resumed, or ended)."""
        jobs = self._paused.get((job.owner, job.pause_key))
        if jobs is not None:
            jobs.pop(job, None)
            if not jobs:
                del self._paused[job.owner, job.pause_key]
        self.ended.unheld(job)

    async def aroom(self, owner: str | None, key: str, pause_key: str | None) -> Response | None:
        """The refusal of ``owner``'s new job under ``key``, streamed, if there is no room for it.

        The jobs it replaces (its key's, its pause key's: none for ``None``) do not count.
        Over the app's limit it is a 503; over the principal's, a 429 (see :meth:`ano_room`).
        """
        refused = await self.ano_room(owner, key, pause_key, streamed=True)
        return None if refused is None else refused.response()

    async def ano_room(
        self, owner: str | None, key: str, pause_key: str | None, *, streamed: bool = False
    ) -> NoRoom | None:
        """:meth:`no_room`, the check of every start: if there is no room, the durable jobs
        paused here whose runs another server cancelled (a new run of their thread there
        replaced them) are let go of first (they wait for nothing, and held their places
        until they expired), and the room is counted again.

        While there is room, it asks the database nothing and does not yield to the loop.
        """
        refused = self.no_room(owner, key, pause_key, streamed=streamed)
        if refused is None or not await self._afree_cancelled():
            return refused
        return self.no_room(owner, key, pause_key, streamed=streamed)

    async def _afree_cancelled(self) -> bool:
        """Let go of the durable jobs paused here whose runs were cancelled; whether any were."""
        if self.durable is None:
            return False
        paused = {
            job.workflow_id: job
            for jobs in self._paused.values()
            for job in jobs
            if job.paused and job.workflow_id is not None
        }
        freed = False
        for workflow_id in await self.durable.acancelled(paused):
            job = paused[workflow_id]
            if job.paused:  # (still: not resumed meanwhile)
                job.cancel(abandoned=False)  # (its run is cancelled already)
                freed = True
        return freed

    def no_room(
        self, owner: str | None, key: str, pause_key: str | None, *, streamed: bool = False
    ) -> NoRoom | None:
        """Why ``owner``'s new job under ``key`` has no room (``None``: it has room).

        The count as it stands; a start asks :meth:`ano_room`, which may free places first.
        ``streamed``: its response will be a stream, so a stream's room counts too.
        """
        limits = self.settings
        replaced = set(self._replaced(owner, key, pause_key))
        live = [job for job in self._jobs if not job.cancelling and job not in replaced]
        if len(live) >= limits.max_live_runs:
            return NoRoom("max_live_runs", limits.max_live_runs)
        per_principal = limits.max_live_runs_per_principal
        if sum(job.owner == owner for job in live) >= per_principal:
            return NoRoom("max_live_runs_per_principal", per_principal)
        return self.streams.room(owner, limits) if streamed else None

    def stream_room(self, owner: str | None) -> NoRoom | None:
        """Why ``owner`` may not open one more event stream now (``None``: they may)."""
        return self.streams.room(owner, self.settings)

    @property
    def open_streams(self) -> int:
        """How many event streams the app sends now."""
        return self.streams.open

    def _replaced(self, owner: str | None, key: str, pause_key: str | None) -> list[Job]:
        previous = self._runs.get((owner, key))
        found = [previous.job] if previous is not None and not previous.job.done else []
        paused = [] if pause_key is None else self._paused_jobs(owner, pause_key)
        return [*found, *(job for job in paused if job not in found)]

    def start(
        self,
        owner: str | None,
        ids: JobIds,
        make_reply: Callable[[], MessageSequencePromise[Message]],
        *,
        found: FoundRun | None = None,
    ) -> Run:
        """Start ``owner``'s job ``ids`` whose reply ``make_reply()`` makes; return its run.

        ``found``: the durable run it replays, after a restart. A job still running under
        its key is cancelled, and so are those paused under its pause key (a new turn of
        its thread or chat), unless it is a recovered one (a run of the thread that waited
        beside them before the restart).
        """
        abandon = workflow = None
        if self.durable is not None:  # a run given up on is not recovered at the next start
            workflow = self.durable.workflow_id(owner, ids.key, ids.group)
            abandon = functools.partial(self.durable.abandon, workflow)
        for replaced in self._replaced(owner, ids.key, None if found else ids.pause_key):
            replaced.cancel()
        usage = JobUsage(from_texts=workflow is not None)  # (a durable run's replay: see there)
        encoder = self.protocol.encoder(ids, self.approval_flow, self.settings.keep_runs_for, usage)
        job = Job(
            self,
            owner,
            ids,
            encoder,
            recovered=found is not None,
            on_abandon=abandon,
            workflow_id=workflow,
            usage=usage,
        )
        if found is not None:  # (its next pause is noted past those of its replay)
            job.lost_pauses = found.lost_pauses
        self._jobs.add(job)
        self._keyed[owner, ids.key] = job
        self._runs[owner, ids.key] = job.current
        job.start(_job_events(job, make_reply, ids, found))
        return job.last_run()  # (the real one, were it to have ended already)

    def start_new(
        self, owner: str | None, ids: JobIds, messages: list[Message], kwargs: Mapping[str, object]
    ) -> Run:
        """Start ``owner``'s new job ``ids``: the agent asked ``messages`` (durably, if it is)."""
        durable = self.durable
        if durable is None:
            return self.start(owner, ids, lambda: self.agent.inquire(messages, **kwargs))
        workflow = durable.workflow_id(owner, ids.key, ids.group)
        return self.start(owner, ids, lambda: durable.started(workflow, messages, kwargs))

    def recover(self, found: FoundRun) -> Run:
        """Make the job of a durable run found after a restart again, from its replay.

        It replaces no job paused under its pause key (see :meth:`start`).
        """
        durable = self.durable
        assert durable is not None  # (found by it)
        ids = self.protocol.ids(found.key, found.group)
        replayed = functools.partial(durable.replayed, found.workflow_id)
        return self.start(found.owner, ids, replayed, found=found)

    async def ahere_or_recovered(self, found: FoundRun) -> Run | Response:
        """The found job's first run if it is here, else its job made again (a refusal: no room)."""
        run = self.get(found.key, found.owner)
        if run is not None:
            return run
        refused = await self.aroom(found.owner, found.key, None)  # (it replaces no paused job)
        if refused is not None:
            return refused
        run = self.get(found.key, found.owner)  # (made again meanwhile, if room was sought)
        return run if run is not None else self.recover(found)

    async def apaused_here(
        self,
        owner: str | None,
        pause_key: str,
        find: Callable[[DurableJobs], Awaitable[Sequence[FoundRun]]],
        which: Callable[[Job], bool] | None = None,
    ) -> Job | Response | None:
        """``owner``'s job paused under ``pause_key`` that ``which`` accepts (any, if not
        given), if one waits there (see :meth:`paused`).

        Jobs of ``pause_key`` still running here (a resume sent before its run paused, as
        soon as its client saw the call; two runs of one AG-UI thread may run at once) are
        waited for until one of them pauses or all have ended, never started again; by one
        resume at a time (another is refused with a 409 at once). The durable runs paused
        before a restart (``find`` gives them, newest first) are made again first, each up
        to where it waits, until one that ``which`` accepts waits here (see
        :meth:`ahere_or_recovered`: the refusal, if one has no room); those that wait for
        decisions on another server are not (their replay here would wait for their end):
        if none waits here, the answer is a 409 that says to resume there.
        """
        if self._running(owner, pause_key):
            resuming = (owner, pause_key)
            if resuming in self._resuming:
                return error_response(
                    409,
                    "resume_waiting",
                    f"A resume of the run {pause_key!r} waits already for it to pause; send "
                    "one resume at a time (its answer is the resumed run's stream).",
                )
            self._resuming.add(resuming)
            try:
                while self.paused(pause_key, owner, which) is None and (
                    running := self._running(owner, pause_key)
                ):
                    settling = [asyncio.ensure_future(job.asettled()) for job in running]
                    try:
                        await asyncio.wait(settling, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for settles in settling:
                            settles.cancel()
            finally:
                self._resuming.discard(resuming)
        elif self.durable is not None and self.paused(pause_key, owner, which) is None:
            elsewhere = False  # (a run that waits on another server: its replay would wait)
            for waiting in await find(self.durable):
                if self.paused(pause_key, owner, which) is not None:
                    break
                if waiting.waiting and not waiting.here:
                    elsewhere = True
                    continue
                recovered = await self.ahere_or_recovered(waiting)
                if isinstance(recovered, Response):
                    return recovered
                await recovered.job.asettled()  # replayed to where it waits again
            if elsewhere and self.paused(pause_key, owner, which) is None:
                return _paused_elsewhere(pause_key)
        return self.paused(pause_key, owner, which)

    def _running(self, owner: str | None, pause_key: str) -> list[Job]:
        """``owner``'s jobs of ``pause_key`` that run here and have not paused."""
        found = (job for job in self._jobs if (job.owner, job.pause_key) == (owner, pause_key))
        return [job for job in found if not (job.done or job.paused or job.cancelling)]

    async def aresume(
        self,
        owner: str | None,
        pause_key: str,
        find: Callable[[DurableJobs], Awaitable[Sequence[FoundRun]]],
        decide: Callable[
            [Callable[[str], ToolApprovalRequest | None]],
            Sequence[tuple[ToolApprovalRequest, ApprovalDecision]] | Response,
        ],
        *,
        run_key: str,
        named: bool,
        missing: Callable[[], Response],
        gone: Callable[[], Response],
        which: Callable[[Job], bool] | None = None,
    ) -> Response:
        """Decide the calls of the job :meth:`apaused_here` finds and resume it under ``run_key``.

        ``missing()`` answers if no job waits there; ``decide`` reads the decisions, given
        the job's ``asked`` (or gives the refusal); ``which``: the paused jobs it may be (a
        thread's run whose interrupts the resume answers). ``named`` and ``gone`` are
        :meth:`aresume_run`'s. The answer is the new run's stream, or, when its principal
        has no room for one more stream, the refusal (nothing decided). A job whose run
        went on while it was paused (:attr:`Job.went_on`) is resumed with no decision: its
        stream is the rest of the run, its calls as they were decided elsewhere, or its end
        (cancelled, for a durable run cancelled meanwhile).
        """
        job = await self.apaused_here(owner, pause_key, find, which)
        if job is None or isinstance(job, Response):
            return missing() if job is None else job
        # (was: the calls of a run that went on meanwhile, withdrawn or decided elsewhere,
        # were refused with a 409, and the rest of the run was never streamed)
        decisions = () if job.went_on else decide(job.asked)
        if isinstance(decisions, Response):
            return decisions
        # (the slot is taken before anything is decided, and handed to the run's stream: was,
        # looked at here and taken as the stream started, after a durable job's note of its
        # pause, which awaits its database; a stream opened meanwhile took the last slot,
        # and the run, its calls decided and gone on, was refused a 429 with no stream)
        return await self.astream_with_slot(
            job.owner,
            lambda: self.aresume_run(job, run_key, decisions, named=named, gone=gone),
        )

    async def astream_with_slot(
        self, owner: str | None, arun: Callable[[], Awaitable[Run | Response]]
    ) -> Response:
        """The stream of the run ``arun()`` makes, its slot taken before ``arun`` is called.

        ``owner``'s stream slot is taken first (a refusal if there is no room) and handed to
        the run's stream, or freed if ``arun`` answers a refusal or raises: a stream opened
        while ``arun`` awaits cannot leave the run started and its client refused.
        """
        streams = self.streams
        refused = streams.take(owner, self.settings)
        if refused is not None:
            return refused.response()
        run: Run | Response | None = None
        try:
            run = await arun()
        finally:
            if not isinstance(run, Run):
                streams.free(owner)  # (no stream took it over)
        return run if isinstance(run, Response) else run.response(0, slot_held=True)

    async def aresume_run(
        self,
        job: Job,
        run_key: str,
        decisions: Sequence[tuple[ToolApprovalRequest, ApprovalDecision]],
        *,
        named: bool,
        gone: Callable[[], Response],
    ) -> Run | Response:
        """Decide the paused ``job``'s calls and resume it in a new run under ``run_key``.

        A durable job notes first where it paused and the run it goes on in (``named``:
        recorded as a name of the durable run too), so that after a restart its replay
        pauses there too and its events keep their numbers. The pause is taken
        (:meth:`Job.take`) before that note's write, at once: its expiry and other resumes
        wait or are refused meanwhile, so one note of the pause is written, by the resume
        that goes on from it. ``gone()`` answers if another request took it first (or it
        ended meanwhile). A note that fails gives the pause back (:meth:`Job.give_back`): the
        job waits as it did, for a resume sent again, or expires then if its time passed; so
        does a resume refused after its note, and one cut as it notes, once its note is
        withdrawn (a write cut so may land: the withdrawal lands after it, before that
        resume's note, the database's writes being one at a time). A resume deciding a call
        decided already is refused before the note, with nothing written; one whose call is
        decided elsewhere while it notes withdraws its note (its pause still taken) before it
        is refused, so that the record names no run that never went on, and so does one
        whose job ended while it noted (``gone()``), and one cut as it notes. Each
        withdrawal is written in a task of its own (see
        :meth:`DurableJobs.withdraw_pause_later`), the pause given back once it has ended: a
        resume cut while it notes, or while it awaits the withdrawal, leaves no note behind a
        pause another resume could take meanwhile. A withdrawal that fails is logged, and the
        refusal answered all the same. The answer is the new run (or that refusal).
        """
        pause, durable, workflow = job.last_pause, self.durable, job.workflow_id
        logger = self.protocol.logger
        if durable is not None and workflow is not None and pause is not None:
            if not job.take():
                return gone()  # (another request resumes it: it notes the pause now)
            withdrawing = False
            try:
                if (refused := _decided_already(job, decisions)) is not None:
                    return refused  # (at once: nothing noted)
                point = PausePoint(run_key, pause.at, pause.waiting)
                index = job.pause_index
                try:
                    await durable.anote_pause(job.owner, workflow, index, point, named=named)
                except asyncio.CancelledError:
                    # (cut, its note may land all the same: withdrawn, and the pause given
                    # back once that has ended; was: given back at once, the note left)
                    withdrawing = True
                    durable.withdraw_pause_later(workflow, index, run_key, logger, job.give_back)
                    raise
                still = self.paused(job.pause_key, job.owner, lambda found: found is job)
                ended = still is not job or job.last_pause is not pause
                if job.went_on:  # (each call decided elsewhere meanwhile: the rest, as aresume)
                    decisions = ()
                refused = gone() if ended else _decided_already(job, decisions)
                if refused is not None:
                    # (ended meanwhile, cancelled or its server stopping, or decided elsewhere:
                    # the note withdrawn, so that the record names no run that never went on,
                    # and the pause given back only then, so that no resume notes the index
                    # before; was: given back at once if cut as the withdrawal was written)
                    withdrawing = True
                    withdrawal = durable.withdraw_pause_later(
                        workflow, index, run_key, logger, job.give_back
                    )
                    await asyncio.shield(withdrawal)
                    return refused
                return self._resumed(job, run_key, decisions)
            finally:
                if not withdrawing:  # (else, once withdrawn)
                    job.give_back()  # (resumed: nothing to give back)
        return self._resumed(job, run_key, decisions)

    def _resumed(
        self,
        job: Job,
        run_key: str,
        decisions: Sequence[tuple[ToolApprovalRequest, ApprovalDecision]],
    ) -> Run:
        """Give the paused ``job``'s ``decisions`` and resume it in a new run, ``run_key``."""
        for asked, decision in decisions:
            decision.apply(asked, job.owner)
        self.unpaused(job)
        run = job.resume(run_key)
        self._runs[job.owner, run_key] = run
        return run

    def answer(self, job: Job, run_key: str, messages: Sequence[Message]) -> Run:
        """Answer the question the paused ``job`` waits on; resume it in a new run, ``run_key``.

        The protocol checks first that the job waits on a question (``job.question``, and
        ``paused(...)`` is the job); ``messages`` are the answer the agent gets.

        Raises:
            InputRequestError: if the job's question does not wait for an answer.
        """
        request = job.question
        if request is None or not job.paused:
            raise InputRequestError(
                f"The run {job.key!r} waits for no answer to a question: answer a run that "
                "paused where its agent asked one."
            )
        request.answer(*messages)
        self.unpaused(job)
        run = job.resume(run_key)
        self._runs[job.owner, run_key] = run
        return run

    async def adecide(
        self, request: Request, owner: str | None, key: str, call_id: str
    ) -> Response:
        """Approve or deny the pending call ``call_id`` of ``owner``'s run ``key`` (the body says).

        Only the calls of a job still streaming: a paused job's calls are decided by the
        protocol's resume request (a 409 says how).
        """
        run = self.get(key, owner)
        if run is None:
            return unknown_run()
        decision = await read_model(
            request,
            self.settings,
            ApprovalDecision,
            "invalid_decision",
            'a decision ({"approved": true or false, "arguments": {...} or null, "reason": '
            '"..." or null})',
        )
        if isinstance(decision, Response):
            return decision
        job = run.job
        asked = job.asked(call_id)
        if asked is None:
            return error_response(
                404,
                "unknown_approval",
                f"The run {run.key!r} asked for no approval of a call "
                f"{shown_id(call_id, self.settings.max_id_chars)}.",
            )
        if not asked.pending or job.done:  # (decided already: the calls still waiting said)
            return not_pending(call_id, asked.tool_name, waiting=[] if job.done else job.waiting())
        if job.paused:
            return error_response(
                409,
                "paused",
                f"The run {run.key!r} has paused at the call {call_id!r} and ended its stream, "
                f"as the protocol's approval flow does: {self.protocol.paused_hint}",
            )
        edits = self.settings.approval_edits
        if (refused := decision.refusal(asked, "arguments", edits=edits)) is not None:
            return refused
        decision.apply(asked, owner)
        return JSONResponse({"toolCallId": call_id, "approved": decision.approved})

    # -- (for jobs and runs) -------------------------------------------------------------

    def moved(self, job: Job) -> None:
        """``job`` went on in its new run, as it was resumed before (a replay)."""
        self._runs[job.owner, job.current.key] = job.current

    def paused_at(self, job: Job) -> None:
        """``job`` has paused under its pause key."""
        jobs = self._paused.setdefault((job.owner, job.pause_key), {})
        jobs.pop(job, None)  # (paused again: the latest)
        jobs[job] = None

    def forget_job(self, job: Job) -> None:
        """``job`` has ended: it is found by its key ``keep_runs_for`` seconds more.

        See :meth:`EndedRuns.add_job`.
        """
        self._jobs.discard(job)
        self.unpaused(job)
        self.ended.add_job(job)

    def resize_ended(self, job: Job, change: int) -> None:
        """``job``, if ended and kept, keeps ``change`` bytes more now (e.g. a webhook set).

        Counted toward ``max_ended_run_bytes`` at once (what is over let go of); a job not
        ended yet counts what its encoder keeps as it ends.
        """
        self.ended.resize(job, change)

    def unkey(self, job: Job) -> None:
        """``job`` is found by its key no more (unless another job took the key since)."""
        if self._keyed.get((job.owner, job.key)) is job:
            del self._keyed[job.owner, job.key]

    def drop(self, run: Run) -> None:
        """``run`` is found by its key no more (unless another run took the key since)."""
        if self._runs.get((run.job.owner, run.key)) is run:
            del self._runs[run.job.owner, run.key]

    def _forget_expired(self) -> None:
        now = asyncio.get_running_loop().time()
        expired = [
            key
            for key, run in self._runs.items()
            if run.ended_at is not None
            and now - run.ended_at >= self.settings.keep_runs_for
            and not _waited_on(run)
        ]
        for key in expired:
            self.ended.unkeep(self._runs.pop(key))

    def stop(self) -> None:
        """The server stops: every live job is stopped now (:meth:`Job.stop`)."""
        for job in list(self._jobs):
            job.stop()

    async def aclose(self) -> None:
        """Cancel every live job and wait for their tasks (the app is shutting down).

        Then wait for the durable writes its jobs left going
        (:meth:`~._durable.DurableJobs.awritten`).
        """
        self.stop()
        jobs = list(self._jobs)
        self.ended.close()
        self._runs.clear()
        self._keyed.clear()
        self._paused.clear()
        for job in jobs:
            await _astopped(job)
        if self.durable is not None:  # (the cancels of runs given up on just before, ...)
            await self.durable.awritten()


class EndedRuns:
    """The ended runs and jobs of a manager, kept ``keep_runs_for`` seconds within its bounds.

    The ended runs and jobs, the oldest ended first, with the timers that forget them; the
    same, by principal with their totals, for the bounds: the ended runs (count), the ended
    jobs (count), and what is let go of at once past ``max_ended_run_bytes`` (an ended job
    with its ended runs, or an ended run of a job not kept as ended). What it lets go of,
    its manager finds by its key no more (:meth:`RunManager.drop`, :meth:`RunManager.unkey`).
    """

    __slots__ = (
        "_ended",
        "_ended_jobs",
        "_ended_of",
        "_kept_jobs",
        "_kept_runs",
        "_manager",
        "_order",
        "_waited",
        "_weighed",
    )

    def __init__(self, manager: RunManager) -> None:
        self._manager = manager
        self._ended: dict[Run, asyncio.TimerHandle] = {}
        self._ended_of: dict[Job, dict[Run, None]] = {}  # (the same runs, by their job)
        self._ended_jobs: dict[Job, asyncio.TimerHandle] = {}
        self._order = itertools.count()  # (the order they ended in)
        self._kept_runs: Kept[Run] = Kept()
        self._kept_jobs: Kept[Job] = Kept()
        self._weighed: Kept[Job | Run] = Kept()
        self._waited: dict[Job, Run] = {}  # the ended runs paused jobs wait on (held)

    def unheld(self, job: Job) -> None:
        """``job`` waits paused no more: the ended run it waited on counts again."""
        waited = self._waited.pop(job, None)
        if waited is not None:
            self._kept_runs.hold(waited, False)
            self._weighed.hold(waited, False)

    def close(self) -> None:
        """Let go of every ended run and job now, their timers cancelled (the app stops)."""
        for timer in [*self._ended.values(), *self._ended_jobs.values()]:
            timer.cancel()
        self._kept_runs, self._kept_jobs, self._weighed = Kept(), Kept(), Kept()
        for held in (self._ended, self._ended_of, self._ended_jobs, self._waited):
            held.clear()

    def add_job(self, job: Job) -> None:
        """``job`` has ended: it is found by its key ``keep_runs_for`` seconds more.

        Sooner when over ``max_ended_runs`` ended jobs are kept, each time the oldest of the
        principal who keeps the most; or when the ended jobs and runs keep over
        ``max_ended_run_bytes`` (see :meth:`_forget_over_bytes`). Its ended runs are let go
        of now where the protocol answers from what its encoder keeps
        (``answers_from_kept``), but those a client's stream still follows.
        """
        loop = asyncio.get_running_loop()
        keep_runs_for = self._manager.settings.keep_runs_for
        timer = loop.call_later(keep_runs_for, self._forget_job, job)
        self._ended_jobs[job] = timer
        if self._manager.protocol.answers_from_kept:  # (nobody reads its ended runs: let go of now)
            for run in list(self._ended_of.get(job, ())):
                if run.followers == 0:
                    self._let_go(run)
        order = next(self._order)
        self._kept_jobs.add(job, job.owner, 1, (order,))
        size = job.kept_bytes
        for run in self._ended_of.get(job, ()):  # (let go of with it, from now on)
            self._weighed.remove(run)
            size += run.size
        self._weighed.add(job, job.owner, size, (timer.when(), 0, order))
        over = self._kept_jobs.total - self._manager.settings.max_ended_runs
        for oldest in self._kept_jobs.choose(over):
            self._ended_jobs[oldest].cancel()  # (the timer lets go of it)
            self._forget_job(oldest)
        self._forget_over_bytes()

    def resize(self, job: Job, change: int) -> None:
        """``job``, if ended and kept, keeps ``change`` bytes more now (e.g. a webhook set).

        Counted toward ``max_ended_run_bytes`` at once (what is over let go of); a job not
        ended yet counts what its encoder keeps as it ends.
        """
        if job in self._weighed:
            job.kept_bytes += change
            self._weighed.resize(job, change)
            self._forget_over_bytes()

    def _forget_job(self, job: Job) -> None:
        if self._ended_jobs.pop(job, None) is not None:
            self._kept_jobs.remove(job)
            self._weighed.remove(job)
            for run in self._ended_of.get(job, ()):  # (kept on: let go of each on its own)
                self._weigh(run, held=False)
        self._manager.unkey(job)

    def forget_later(self, run: Run) -> None:
        """``run`` has ended: forget it ``keep_runs_for`` seconds from now (or sooner, when over
        ``max_ended_runs`` ended runs are kept and it is the oldest)."""
        self.unkeep(run)  # (its job still waits there: kept as long, as if ended now)
        loop = asyncio.get_running_loop()
        self._ended[run] = loop.call_later(self._manager.settings.keep_runs_for, self._forget, run)
        self._ended_of.setdefault(run.job, {})[run] = None
        held = _waited_on(run)
        if held:
            self._waited[run.job] = run
        self._kept_runs.add(run, run.job.owner, 1, (next(self._order),), held=held)
        self._weigh(run, held=held)
        self._forget_oldest()
        self._forget_over_bytes()

    def _weigh(self, run: Run, *, held: bool) -> None:
        """Count ``run``, ended, by itself toward ``max_ended_run_bytes`` (at its place)."""
        place = (self._ended[run].when(), 1, *self._kept_runs.key_of(run))
        self._weighed.add(run, run.job.owner, run.size, place, held=held)

    def unkeep(self, run: Run) -> None:
        """``run`` is kept as an ended run no more (its timer, if still to come, is cancelled)."""
        timer = self._ended.pop(run, None)
        if timer is None:
            return
        timer.cancel()
        self._kept_runs.remove(run)
        if run in self._weighed:
            self._weighed.remove(run)
        elif run.job in self._weighed:  # (an ended job's: it keeps less)
            self._weighed.resize(run.job, -run.size)
        if self._waited.get(run.job) is run:
            del self._waited[run.job]
        runs = self._ended_of[run.job]
        del runs[run]
        if not runs:
            del self._ended_of[run.job]

    def _forget_oldest(self) -> None:
        """Forget the ended runs over ``max_ended_runs``, each the oldest of the principal who
        has the most kept (a run a paused job waits on is live: neither counted nor
        forgotten)."""
        over = self._kept_runs.total - self._manager.settings.max_ended_runs
        for run in self._kept_runs.choose(over):
            self._let_go(run)  # (the timer lets go of it)

    def _forget_over_bytes(self) -> None:
        """Forget ended jobs and runs while they keep over ``max_ended_run_bytes``, each time
        the oldest of the principal who keeps the most bytes.

        What is let go of at once: an ended job, with its ended runs (its encoder's record,
        A2A's task, and their logs: they hold it), or an ended run of a job still kept
        otherwise (live, or its record forgotten); a run a paused job waits on is live:
        neither counted nor forgotten.
        """
        over = self._weighed.total - self._manager.settings.max_ended_run_bytes
        for gone in self._weighed.choose(over):  # (the oldest ended first: a job before a run)
            runs = list(self._ended_of.get(gone, ())) if isinstance(gone, Job) else [gone]
            if isinstance(gone, Job):
                self._ended_jobs[gone].cancel()  # (the timer lets go of it)
                self._forget_job(gone)
            for run in runs:
                self._let_go(run)

    def _forget(self, run: Run) -> None:
        if _waited_on(run):  # its job waits there: kept as long
            self.forget_later(run)
        else:
            self._let_go(run)

    def _let_go(self, run: Run) -> None:
        """``run`` is kept no more, and its manager finds it by its key no more."""
        self.unkeep(run)
        self._manager.drop(run)


async def _astopped(job: Job) -> None:
    """Wait for ``job``'s task, cancelled as its server stops.

    A task that ends with an error (a step of the manager's, as it let go of the job) has it
    logged, once, here, and is not raised: the server's shutdown goes on to its other jobs.
    The job's cancellation is its own (ignored), but a cancel of the wait itself (of
    :meth:`RunManager.aclose`) is raised: the shutdown was cancelled.
    """
    if job.task is None:
        return
    try:
        await job.task
    except asyncio.CancelledError:
        waiting = asyncio.current_task()
        if waiting is not None and waiting.cancelling():
            raise  # (the wait's own cancel, not the job's)
    except Exception as error:  # (its own step failed: the shutdown goes on)
        protocol = job.manager.protocol
        protocol.logger.error(
            "The %s run %r failed with %s as the server stopped; the other runs were stopped "
            "all the same.",
            protocol.name,
            job.current.key,
            type(error).__name__,
            exc_info=error,
        )


async def astart_turn(
    manager: RunManager,
    owner: str | None,
    ids: tuple[str, str],
    start: Callable[[], Run | Response],
    *,
    group: str | None = None,
) -> Response:
    """``owner``'s new turn in ``manager``: its run's stream, or the refusal of it.

    A durable agent's turn replaces the runs that have not ended of its chat (of
    ``group``, an AG-UI thread, if given; else of its key): those of this server that
    are not here (paused before a restart, not made again since) are abandoned first,
    and, if its runs' approvals are the protocol's, those paused on another server too
    (see :meth:`~._durable.DurableJobs.aabandon_all`); the room is counted again after.
    The stream's slot is taken first and handed to the run's stream (a stream opened
    while the database is asked cannot leave the run started and its client refused).

    Args:
        manager: The runs of the app.
        owner: The principal who starts the turn.
        ids: The key of its new job and its pause key, whose paused jobs it replaces
            (see :meth:`RunManager.aroom`).
        start: Starts its run (or answers why not, looked at again after the awaits).
        group: The group whose durable runs it abandons (``None``: those of its key).

    Returns:
        The run's stream, or a refusal (a 503 over the app's limit, a 429 over the
        principal's, or what ``start`` answered).
    """
    key, pause_key = ids

    async def arun() -> Run | Response:
        refused = await manager.ano_room(owner, key, pause_key)  # (its stream's slot: held)
        if refused is None and manager.durable is not None:
            here = [job.workflow_id for job in manager.jobs(owner)]  # (replaced as live ones)
            await manager.durable.aabandon_all(
                owner,
                None if group is not None else key,
                group=group,
                but=here,
                paused_elsewhere=manager.approval_flow == "protocol",
            )
            refused = await manager.ano_room(owner, key, pause_key)  # (taken meanwhile?)
        return refused.response() if refused is not None else start()

    return await manager.astream_with_slot(owner, arun)


async def arecovered(
    manager: RunManager,
    owner: str | None,
    key: str,
    find: Callable[[DurableJobs], Awaitable[FoundRun | None]],
    replay: Callable[[FoundRun, Run], Awaitable[Run | None]],
) -> Run | Response | None:
    """``owner``'s durable run ``key`` in ``manager``, made again if found.

    Without a durable agent there is none. If another request made the run again
    while it was looked for, that run is the answer; else the found job's first run (see
    :meth:`RunManager.ahere_or_recovered`), which ``replay`` takes on to the run asked for.

    Args:
        manager: The runs of the app.
        owner: The principal whose run it is.
        key: The run asked for, looked for here after ``find``.
        find: Finds the durable run that made ``key`` (``None``: there is none).
        replay: Gives the run asked for from the found run and its job's first run
            (of a job that paused and was resumed: replayed up to a later one).

    Returns:
        The run; the refusal of its job (no room to make it again); or ``None`` if
        there is no durable run of it.
    """
    durable = manager.durable
    if durable is None:
        return None
    found = await find(durable)
    if found is None:
        return None
    run = manager.get(key, owner)
    if run is not None:
        return run  # made again meanwhile by another request
    first = await manager.ahere_or_recovered(found)
    if isinstance(first, Response):
        return first
    return await replay(found, first)


def _waited_on(run: Run) -> bool:
    """Whether ``run`` is the run its paused job waits on (live, though its stream ended)."""
    return run.job.paused and run.job.current is run
