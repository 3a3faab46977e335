"""Runs served over SSE: each run's event log, its followers, resuming and cancellation.

A run is an agent's reply being turned into protocol events by a task of its own. Every
event is kept, in order, in the run's log; its SSE ``id`` is its position in the log. A
client follows the run from any position: it gets the events logged after it, then each
new one as it comes, so any number of clients follow one run (and one LLM call), and a
client that reconnects with ``Last-Event-ID`` misses nothing and gets nothing twice.

When the last client leaves a live run and none comes back within the grace period, the
run's task is cancelled (which gives up on the reply: its LLM calls are cancelled and their
HTTP streams closed). A run that has ended stays in memory ``keep_for`` seconds for late
readers, then goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from pydantic import BaseModel, ConfigDict, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.promising.lowlevel import spawn

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ApprovalDecision",
    "Run",
    "RunStore",
    "decide",
    "error_response",
    "problems",
    "read_json",
    "runs_app",
    "start_position",
]

DEFAULT_MAX_BODY_BYTES = 1_000_000
"""The largest request body the apps read (a bigger one is a 413)."""

_EVENT_ID = re.compile(r"\d{1,18}")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """A JSON error: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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
    return parsed


def _too_large(max_bytes: int) -> JSONResponse:
    return error_response(
        413,
        "body_too_large",
        f"The request body is over the limit of {max_bytes} bytes; send a shorter "
        "conversation (or raise max_body_bytes).",
    )


def start_position(request: Request, run: Run) -> int | JSONResponse:
    """Where a client resumes: after its ``Last-Event-ID`` (from the start without one)."""
    last = request.headers.get("last-event-id")
    if last is None or last == "":
        return 0
    if _EVENT_ID.fullmatch(last) is None or int(last) >= len(run.events):
        return error_response(
            400,
            "unknown_event_id",
            f"The Last-Event-ID {last!r} is not an event of the run {run.key!r} (its events "
            f"are numbered from 0 to {len(run.events) - 1}); reconnect without it to "
            "follow the run from its start.",
        )
    return int(last) + 1


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


async def decide(request: Request, run: Run | None, call_id: str, max_bytes: int) -> Response:
    """Approve or deny the pending call ``call_id`` of ``run`` (the body says which)."""
    if run is None:
        return error_response(
            404,
            "unknown_run",
            "There is no such run: it never started here, or it ended and was forgotten.",
        )
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
    asked = run.approvals.get(call_id)
    if asked is None:
        return error_response(
            404,
            "unknown_approval",
            f"The run {run.key!r} asked for no approval of a call {call_id!r}.",
        )
    if not asked.pending or run.done:
        return error_response(
            409,
            "not_pending",
            f"The call {call_id!r} of {asked.tool_name} is not waiting for a decision any more "
            "(it was decided already, or its run ended or was cancelled); a call is decided "
            "once.",
        )
    if decision.approved:
        asked.approve(decision.arguments)
    else:
        asked.deny(decision.reason)
    return JSONResponse({"toolCallId": call_id, "approved": decision.approved})


class Run:
    """One run: the log of its events (SSE data), the task producing them, its followers."""

    __slots__ = (
        "_changed",
        "_grace",
        "_grace_timer",
        "_on_cancel",
        "approvals",
        "done",
        "ended_at",
        "events",
        "followers",
        "key",
        "task",
    )

    def __init__(
        self,
        key: str,
        events: AsyncIterator[str],
        *,
        grace: float,
        on_cancel: Sequence[str],
        approvals: dict[str, ToolApprovalRequest],
    ) -> None:
        self.key = key
        self.approvals = approvals  # the approval requests of the reply, by call id
        self.events: list[str] = []
        self.done = False
        self.ended_at: float | None = None
        self.followers = 0
        self._changed = asyncio.Event()
        self._grace = grace
        self._grace_timer: asyncio.TimerHandle | None = None
        self._on_cancel = tuple(on_cancel)
        self.task = spawn(self._produce(events), f"web run {key}")

    async def _produce(self, events: AsyncIterator[str]) -> None:
        try:
            async for data in events:
                self._append(data)
        except asyncio.CancelledError:
            for data in self._on_cancel:
                self._append(data)
            raise
        finally:
            self.done = True
            self.ended_at = asyncio.get_running_loop().time()
            self._notify()

    def _append(self, data: str) -> None:
        self.events.append(data)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, start: int) -> AsyncIterator[ServerSentEvent]:
        """The events from ``start`` on: those logged, then each new one, to the run's end."""
        position = start
        while True:
            changed = self._changed
            while position < len(self.events):
                yield ServerSentEvent(self.events[position], id=str(position))
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
            self.task.cancel()

    def cancel(self) -> None:
        """Cancel the run now (it logs its cancellation events for late readers)."""
        if not self.done:
            self.task.cancel()

    def response(self, start: int, headers: Mapping[str, str]) -> EventSourceResponse:
        """An SSE response that follows the run from ``start`` while the client stays."""
        return _RunResponse(self, start, headers)


class _RunResponse(EventSourceResponse):
    def __init__(self, run: Run, start: int, headers: Mapping[str, str]) -> None:
        super().__init__(run.follow(start), headers=headers, ping=15)
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._run.attach()
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.detach()


class RunStore:
    """The runs of one app, by key, each kept ``keep_for`` seconds after it ends."""

    __slots__ = ("_runs", "grace", "keep_for")

    def __init__(self, *, keep_for: float, grace: float) -> None:
        self.keep_for = keep_for
        self.grace = grace
        self._runs: dict[str, Run] = {}

    def get(self, key: str) -> Run | None:
        """The run of ``key``, unless there is none or it ended over ``keep_for`` ago."""
        self._forget_expired()
        return self._runs.get(key)

    def start(
        self,
        key: str,
        events: AsyncIterator[str],
        on_cancel: Sequence[str],
        approvals: dict[str, ToolApprovalRequest],
    ) -> Run:
        """Start a run of ``events`` under ``key`` (a run already there is cancelled).

        ``approvals`` is where ``events`` puts the reply's approval requests, by call id.
        """
        previous = self._runs.pop(key, None)
        if previous is not None:
            previous.cancel()
        run = Run(key, events, grace=self.grace, on_cancel=on_cancel, approvals=approvals)
        self._runs[key] = run
        return run

    def _forget_expired(self) -> None:
        now = asyncio.get_running_loop().time()
        expired = [
            key
            for key, run in self._runs.items()
            if run.ended_at is not None and now - run.ended_at >= self.keep_for
        ]
        for key in expired:
            del self._runs[key]

    async def aclose(self) -> None:
        """Cancel every live run and wait for their tasks (the app is shutting down)."""
        runs = list(self._runs.values())
        self._runs.clear()
        for run in runs:
            run.cancel()
        for run in runs:
            with contextlib.suppress(asyncio.CancelledError):
                await run.task


def runs_app(
    store: RunStore,
    start_run: Callable[[Request], Awaitable[Response]],
    resume_run: Callable[[Request], Awaitable[Response]],
    *,
    run_key: str,
    resume_path: str,
    approvals_path: str,
    max_body_bytes: int,
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
    """

    async def decide_call(request: Request) -> Response:
        run = store.get(request.path_params[run_key])
        return await decide(request, run, request.path_params["call_id"], max_body_bytes)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()

    app = Starlette(
        routes=[
            Route("/", start_run, methods=["POST"]),
            Route(resume_path, resume_run, methods=["GET"]),
            Route(approvals_path, decide_call, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.runs = store
    return app
