"""``agui_app``: an agent served in the AG-UI protocol (see :mod:`miniagents.ext.web`)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias

from ag_ui.core import (
    AssistantMessage as AGUIAssistantMessage,
)
from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    Interrupt,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunStartedEvent,
    SubagentFinishedEvent,
    SubagentStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.core import (
    DeveloperMessage as AGUIDeveloperMessage,
)
from ag_ui.core import (
    SystemMessage as AGUISystemMessage,
)
from ag_ui.core import (
    ToolMessage as AGUIToolMessage,
)
from ag_ui.core import (
    UserMessage as AGUIUserMessage,
)
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, UserMessage
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.web import _reply_parts as parts
from miniagents.ext.web._durable import DurableJobs, FoundRun, PausePoint
from miniagents.ext.web._runs import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_LIVE_RUNS,
    ApprovalDecision,
    ApprovalFlow,
    Job,
    Pause,
    Run,
    RunStore,
    astart_position,
    error_response,
    invalid_arguments,
    not_pending,
    problems,
    read_json,
    runs_app,
    too_many_runs,
    unnamable_run,
)
from miniagents.messages.message import Message
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents

__all__ = [
    "AGUI_HEADERS",
    "APPROVAL_EVENT",
    "AGUIInput",
    "ApprovalFlow",
    "agui_app",
    "agui_input_messages",
]

AGUI_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Sent with every AG-UI stream (``Content-Type: text/event-stream`` besides)."""

APPROVAL_EVENT = "tool_approval_request"
"""The name of the ``CUSTOM`` event that asks the page to approve a tool call, in the
``"in_stream"`` approval flow (its value is an AG-UI ``Interrupt``: ``id`` and
``toolCallId`` the call's id, ``reason`` ``"tool_approval"``, ``responseSchema`` the
decision's schema)."""

_DECISION_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "arguments": {"type": ["object", "null"]},
        "reason": {"type": ["string", "null"]},
    },
    "required": ["approved"],
    "additionalProperties": False,
}


AGUIInput: TypeAlias = Literal["state", "tools", "context", "forwarded_props"]
"""A field of the ``RunAgentInput`` that ``agui_app(inputs=...)`` gives the agent."""


def agui_app(
    agent: MiniAgent[..., Message],
    *,
    inputs: Collection[AGUIInput] = (),
    arguments: Callable[[RunAgentInput], Mapping[str, object]] | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
    approval_flow: ApprovalFlow = "protocol",
    grace_period: float = 10.0,
    keep_runs_for: float = 300.0,
    max_live_runs: int = DEFAULT_MAX_LIVE_RUNS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """An ASGI app that runs ``agent`` for each AG-UI ``RunAgentInput`` and streams its reply.

    Routes (relative to where the app is mounted):

    - ``POST /``: the run input (``RunAgentInput`` JSON); the response is the run's events
      (``text/event-stream``), each with an SSE ``id``. An input with ``resume`` entries
      resumes the run of its thread that paused at those interrupts (see below).
    - ``GET /runs/{runId}``: the same run's events again, after the one named by the
      ``Last-Event-ID`` header (all of them without it), then the live rest: a client that
      lost its connection resumes, and any number of clients may follow one run.
    - ``POST /runs/{runId}/approvals/{toolCallId}``: a person's decision on a call that
      waits for approval (``{"approved": true, "arguments": {...}}`` or
      ``{"approved": false, "reason": "..."}``), while the run still streams.

    **Approvals, AG-UI's way** (``approval_flow="protocol"``, the default): when the reply
    can go no further until a call is decided, the run ends with ``RUN_FINISHED`` whose
    ``outcome`` is ``{"type": "interrupt", "interrupts": [...]}``, an ``Interrupt`` per
    call that waits (``id`` and ``toolCallId`` the call's id, ``reason``
    ``"tool_approval"``, ``responseSchema`` the decision's schema, ``expiresAt`` when the
    wait ends). The agent waits meanwhile, its state in memory (no LLM call open). The
    client answers with a new run of the same thread (a new ``runId``) whose ``resume``
    holds an entry per interrupt: ``{"interruptId": ..., "status": "resolved", "payload":
    {"approved": true, "arguments": {...}}}`` (or ``"approved": false, "reason": ...``), or
    ``"status": "cancelled"`` (a denial); that run's stream goes on from where the first
    stopped (its ``messages`` are not read again: the agent has them). A new run of the
    thread without ``resume`` abandons the waiting one (it is cancelled); a paused run
    that nobody resumes within ``keep_runs_for`` seconds is cancelled. With
    ``approval_flow="in_stream"``, the stream stays open instead: a ``CUSTOM`` event
    ``"tool_approval_request"`` asks (its value an ``Interrupt``) and the decision comes to
    the approvals URL above (which decides a call of a run still streaming in either flow).

    The input's messages become the agent's input messages (see
    :func:`agui_input_messages`). The fields of the input named in ``inputs`` are given to
    the agent as keyword arguments of the same names: ``state`` (the client's state, any
    JSON value, ``None`` when absent), ``tools`` (the client's tools, a
    ``list[ag_ui.core.Tool]``, empty when absent), ``context`` (a
    ``list[ag_ui.core.Context]``, empty when absent), ``forwarded_props`` (any JSON value,
    ``None`` when absent); the agent must take them. ``arguments(run_input)`` gives more
    keyword arguments (a name in both is taken from ``arguments``).

    **A durable agent** (``durable(agent)``): its runs survive a restart of the server (see
    the package docstring); the app launches DBOS in its lifespan, in a ``context()`` of
    its own where the runs a crash stopped are recovered.

    Args:
        agent: The agent to run.
        inputs: The fields of the run input the agent takes as keyword arguments.
        arguments: More keyword arguments of the agent for a run input (none by default).
        context: Makes the ``MiniAgents`` context each run runs in.
        approval_flow: ``"protocol"`` (interrupt and resume) or ``"in_stream"``.
        grace_period: Seconds a run goes on after its last client left before it is
            cancelled (its LLM calls with it); 0 cancels it at once.
        keep_runs_for: Seconds an ended run stays for clients that resume it (and a paused
            run waits for its resume).
        max_live_runs: The most runs running (or paused) at once; a run input over it is
            a 503 (``too_many_runs``) and starts nothing.
        max_body_bytes: The largest request body taken (a bigger one is a 413).
    """
    store = RunStore(keep_for=keep_runs_for, grace=grace_period, max_live=max_live_runs)
    durable = DurableJobs.of(agent, "ag-ui")

    def start_job(
        ids: _RunIds,
        reply: Callable[[], MessageSequencePromise[Message]],
        pause_key: str,
        *,
        found: FoundRun | None = None,
    ) -> Run:
        mapper = _Mapper(ids.run, asks_in_stream=approval_flow == "in_stream")

        def make_events(job: Job) -> AsyncIterator[str | Pause]:
            flow, keep = approval_flow, keep_runs_for
            return _run_events(reply, ids, context, job, flow, keep, found, durable, mapper)

        def cancelled() -> list[str]:
            return [_encode(event) for event in _cancelled(ids, mapper)]

        abandon = workflow = None
        if durable is not None:  # a run given up on is not recovered at the next start
            workflow = durable.workflow_id(ids.run, ids.thread)
            abandon = functools.partial(durable.abandon, workflow)
        return store.start(
            ids.run,
            pause_key,
            make_events,
            cancelled,
            recovered=found is not None,
            on_abandon=abandon,
            workflow_id=workflow,
        )

    def recover(found: FoundRun, pause_key: str) -> Run:
        """Make the job of a durable run found after a restart again, from its replay."""
        assert durable is not None
        ids = _RunIds(found.group, found.key)
        return start_job(ids, lambda: durable.replayed(found.workflow_id), pause_key, found=found)

    def here_or_recovered(found: FoundRun, pause_key: str) -> Run | Response:
        """The job's first run if it is here, else its job made again (a 503: no room)."""
        run = store.get(found.key)
        if run is not None:
            return run
        if not store.has_room(found.key, pause_key):
            return too_many_runs(max_live_runs)
        return recover(found, pause_key)

    async def start_run(request: Request) -> Response:
        body = await read_json(request, max_body_bytes)
        if isinstance(body, Response):
            return body
        try:
            run_input = RunAgentInput.model_validate(body)
        except ValidationError as error:
            return error_response(
                422,
                "invalid_run_input",
                f"The body is not an AG-UI RunAgentInput: {problems(error)}.",
            )
        if (refused := unnamable_run(run_input.run_id, "runId", "invalid_run_input")) is not None:
            return refused
        exists = store.get(run_input.run_id) is not None
        if durable is not None and not exists:
            named = await durable.afind_named(run_input.run_id)
            # (a resume sent again after a crash that came before its decision was given)
            again = bool(run_input.resume) and named is not None and not named.ended
            exists = await durable.afind(key=run_input.run_id) is not None or (
                named is not None and not (again and named.group == run_input.thread_id)
            )
        if exists:
            return error_response(
                409,
                "run_exists",
                f"A run with the id {run_input.run_id!r} exists already; follow it with GET "
                f"runs/{run_input.run_id}, or start a new run with a new runId.",
            )
        if run_input.resume:
            thread = run_input.thread_id
            if durable is not None and store.paused(thread) is None:
                waiting = await durable.afind(group=thread, running_only=True)
                if waiting is not None and store.paused(thread) is None:
                    recovered = here_or_recovered(waiting, thread)
                    if isinstance(recovered, Response):
                        return recovered
                    await recovered.job.asettled()  # replayed to where it waits again
            return await _aresume(store, run_input, durable)
        if not store.has_room(run_input.run_id, run_input.thread_id):
            return too_many_runs(max_live_runs)
        messages = agui_input_messages(run_input.messages)
        kwargs = {**_input_arguments(run_input, inputs)}
        if arguments is not None:
            kwargs.update(arguments(run_input))
        ids = _RunIds(run_input.thread_id, run_input.run_id)
        if durable is None:

            def reply() -> MessageSequencePromise[Message]:
                return agent.inquire(messages, **kwargs)

        else:
            workflow = durable.workflow_id(ids.run, ids.thread)

            def reply() -> MessageSequencePromise[Message]:
                assert durable is not None
                return durable.started(workflow, messages, kwargs)

        return start_job(ids, reply, run_input.thread_id).response(0, AGUI_HEADERS)

    async def arecovered(run_id: str) -> Run | Response | None:
        """The run ``run_id`` of a durable agent, made again after a restart (if found).

        The run that resumed a paused job is found by its name: the job is made again
        (if it is not here) and replayed up to it.
        """
        if durable is None:
            return None
        found = await durable.afind(key=run_id) or await durable.afind_named(run_id)
        if found is None:
            return None
        run = store.get(run_id)
        if run is not None:
            return run  # made again meanwhile by another request
        paused = store.paused(found.group) is not None  # (the thread's: not replaced)
        first = here_or_recovered(found, f"{found.group}\n{found.key}" if paused else found.group)
        if isinstance(first, Response):
            return first
        if found.key == run_id:
            return first
        runs = [point.run for point in found.pauses]
        if run_id in runs:  # replayed up to the pause it resumed
            await first.job.arun_after(runs.index(run_id) + 1)
        return store.get(run_id)

    async def resume_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = store.get(run_id) or await arecovered(run_id)
        if isinstance(run, Response):
            return run
        if run is None:
            return error_response(
                404,
                "unknown_run",
                f"There is no run {run_id!r}: it never started here, or it ended more than "
                f"{keep_runs_for:g} seconds ago.",
            )
        start = await astart_position(request, run)
        if isinstance(start, Response):
            return start
        return run.response(start, AGUI_HEADERS)

    return runs_app(
        store,
        start_run,
        resume_run,
        run_key="run_id",
        resume_path="/runs/{run_id}",
        approvals_path="/runs/{run_id}/approvals/{call_id}",
        max_body_bytes=max_body_bytes,
        paused_hint=(
            "answer its interrupt with a new run of the thread whose resume holds "
            '{"interruptId": the call id, "status": "resolved", "payload": {"approved": ...}}.'
        ),
        durable=durable,
        context=context,
    )


def _input_arguments(run_input: RunAgentInput, inputs: Collection[AGUIInput]) -> dict[str, object]:
    values: dict[str, object] = {
        "state": run_input.state,
        "tools": list(run_input.tools or ()),
        "context": list(run_input.context or ()),
        "forwarded_props": run_input.forwarded_props,
    }
    return {name: values[name] for name in inputs}


async def _aresume(
    store: RunStore, run_input: RunAgentInput, durable: DurableJobs | None
) -> Response:
    """Resume the thread's paused run with the input's answers to its interrupts.

    A durable run notes first where it paused and the run it goes on in (kept with it,
    named after that run), so that after a restart its replay pauses there too.
    """
    entries = run_input.resume or []
    named = ", ".join(repr(entry.interrupt_id) for entry in entries)
    job = store.paused(run_input.thread_id)
    if job is None:
        return error_response(
            404,
            "unknown_interrupt",
            f"No run of the thread {run_input.thread_id!r} waits for the interrupts {named}: "
            "it was never asked, or its run ended (or waited longer than keep_runs_for). "
            "Start a new run without resume.",
        )
    decisions: list[tuple[ToolApprovalRequest, ApprovalDecision]] = []
    for place, entry in enumerate(entries):
        asked = job.approvals.get(entry.interrupt_id)
        if asked is None:
            return error_response(
                404,
                "unknown_interrupt",
                f"resume.{place}: the paused run of the thread {run_input.thread_id!r} has "
                f"no interrupt {entry.interrupt_id!r}; answer the ids of its RUN_FINISHED "
                "outcome's interrupts.",
            )
        if not asked.pending or any(asked is earlier for earlier, _ in decisions):
            return not_pending(entry.interrupt_id, asked.tool_name)
        if entry.status == "cancelled":
            decisions.append((asked, ApprovalDecision(approved=False)))
            continue
        try:
            decision = ApprovalDecision.model_validate(entry.payload)
        except ValidationError as error:
            return error_response(
                422,
                "invalid_resume",
                f'resume.{place}.payload is not a decision ({{"approved": true or false, '
                f'"arguments": {{...}} or null, "reason": "..." or null}}): {problems(error)}.',
            )
        if (why := decision.refusal(asked)) is not None:  # checked before any is decided
            return invalid_arguments(f"resume.{place}.payload.arguments", why)
        decisions.append((asked, decision))
    pause = job.last_pause
    if durable is not None and job.workflow_id is not None and pause is not None:
        point = PausePoint(run_input.run_id, pause.at, pause.waiting)
        await durable.anote_pause(job.workflow_id, job.pauses - 1, point, named=True)
        if store.paused(run_input.thread_id) is not job or job.last_pause is not pause:
            return _resume_gone(run_input)  # resumed (or ended) meanwhile
        for asked, _ in decisions:
            if not asked.pending:
                return not_pending(asked.call_id, asked.tool_name)
    for asked, decision in decisions:
        decision.apply(asked)
    run = store.resume(job, run_input.run_id, _RunIds(run_input.thread_id, run_input.run_id))
    return run.response(0, AGUI_HEADERS)


def _resume_gone(run_input: RunAgentInput) -> Response:
    return error_response(
        409,
        "not_pending",
        f"The paused run of the thread {run_input.thread_id!r} was resumed by another "
        "request (or ended) meanwhile; its interrupts are decided once.",
    )


def agui_input_messages(messages: Sequence[object]) -> list[Message]:
    """The AG-UI messages of a run input as MiniAgents messages, for the agent's input.

    ``user`` -> ``UserMessage`` (its text parts joined); ``system`` and ``developer`` ->
    ``SystemMessage``; ``assistant`` -> an ``AssistantMessage`` with its text (if any) and a
    ``ToolCallMessage`` per tool call; ``tool`` -> a ``ToolResultMessage`` (``is_error``
    when it has an ``error``). Other messages (reasoning, activity) are left out. A tool
    message that answers no call before it is kept (the LLM agents leave such a result out
    of their prompts).
    """
    converted: list[Message] = []
    tool_names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, AGUIUserMessage):
            converted.append(UserMessage(text=_text_of(message.content)))
        elif isinstance(message, AGUISystemMessage | AGUIDeveloperMessage):
            converted.append(SystemMessage(text=message.content))
        elif isinstance(message, AGUIAssistantMessage):
            if message.content:
                converted.append(AssistantMessage(text=message.content))
            for call in message.tool_calls or ():
                tool_names[call.id] = call.function.name
                converted.append(
                    ToolCallMessage(
                        tool_name=call.function.name,
                        text=call.function.arguments,
                        call_id=call.id,
                    )
                )
        elif isinstance(message, AGUIToolMessage):
            converted.append(
                ToolResultMessage(
                    tool_name=tool_names.get(message.tool_call_id, ""),
                    call_id=message.tool_call_id,
                    text=message.error or _text_of(message.content),
                    is_error=message.error is not None,
                )
            )
    return converted


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    texts = [getattr(part, "text", None) for part in content] if isinstance(content, list) else []
    return "\n".join(text for text in texts if isinstance(text, str))


def _encode(event: BaseEvent) -> str:
    return event.model_dump_json(by_alias=True, exclude_none=True)


class _RunIds:
    """The thread and run a job streams to now (a resumed job streams to a new run)."""

    __slots__ = ("run", "thread")

    def __init__(self, thread: str, run: str) -> None:
        self.thread = thread
        self.run = run


def _interrupt(request: ToolApprovalRequest, expires_in: float) -> Interrupt:
    arguments = parts.plain(request.arguments)
    expires = datetime.now(UTC) + timedelta(seconds=expires_in)
    return Interrupt(
        id=request.call_id,
        reason="tool_approval",
        message=str(request),
        tool_call_id=request.call_id,
        response_schema=_DECISION_SCHEMA,
        expires_at=expires.isoformat(timespec="seconds"),
        metadata={"toolName": request.tool_name, "arguments": arguments},
    )


async def _run_events(
    make_reply: Callable[[], MessageSequencePromise[Message]],
    ids: _RunIds,
    context: Callable[[], MiniAgents],
    job: Job,
    approval_flow: ApprovalFlow,
    keep_for: float,
    found: FoundRun | None,
    durable: DurableJobs | None,
    mapper: _Mapper,
) -> AsyncIterator[str | Pause]:
    """The events of a job; ``found``: the durable run it replays, after a restart.

    ``mapper`` makes them from the reply's parts (and knows what they left open).
    """
    decided = found.decided if found is not None else frozenset()
    replayed = list(found.pauses) if found is not None else []  # its pauses, resumed then
    yield _encode(RunStartedEvent(thread_id=ids.thread, run_id=ids.run))

    def paused(waiting: list[ToolApprovalRequest]) -> str:
        outcome = RunFinishedInterruptOutcome(
            interrupts=[_interrupt(asked, keep_for) for asked in waiting]
        )
        return _encode(RunFinishedEvent(thread_id=ids.thread, run_id=ids.run, outcome=outcome))

    try:
        async with context():
            reply = make_reply()
            async for part in parts.reply_parts(reply, ids.run):
                if isinstance(part, parts.ApprovalAsked):
                    job.approvals[part.call_id] = part.request
                elif approval_flow == "protocol" and isinstance(
                    part, parts.AwaitingApproval | parts.ResultStart
                ):
                    while replayed and replayed[0].at == part.call_id:  # paused here, resumed
                        point = replayed.pop(0)
                        asked_then = [job.approvals[c] for c in point.waiting if c in job.approvals]
                        yield paused(asked_then)
                        yield Pause(point.at, point.waiting, into=point.run)
                        ids.run = point.run
                        yield _encode(RunStartedEvent(thread_id=ids.thread, run_id=ids.run))
                    if isinstance(part, parts.AwaitingApproval) and part.call_id not in decided:
                        while part.request.pending:  # (a resume may answer other calls first)
                            waiting = [asked for asked in job.approvals.values() if asked.pending]
                            yield paused(waiting)
                            yield Pause(part.call_id, [asked.call_id for asked in waiting])
                            resumed = await job.aresumed()
                            if isinstance(resumed, _RunIds):
                                ids.thread, ids.run = resumed.thread, resumed.run
                            yield _encode(RunStartedEvent(thread_id=ids.thread, run_id=ids.run))
                for event in mapper.events(part):
                    yield _encode(event)
    except Exception as error:  # the agent's failure ends the run with it
        given_up = found is not None and found.cancelled and durable is not None
        if given_up and DurableJobs.stopped_there(error):  # it ends as it ended then
            for event in _cancelled(ids, mapper):
                yield _encode(event)
            return
        yield _encode(RunErrorEvent(message=str(error) or repr(error), code=type(error).__name__))
        return
    yield _encode(RunFinishedEvent(thread_id=ids.thread, run_id=ids.run))


def _cancelled(ids: _RunIds, mapper: _Mapper) -> list[BaseEvent]:
    """The end of a run given up on: what it left open ended, then ``RUN_FINISHED``.

    A client's verifier (``@ag-ui/client``'s) refuses a ``RUN_FINISHED`` while a text
    message, a tool call or a nested run is still open.
    """
    outcome = RunFinishedCancelledOutcome()
    finished = RunFinishedEvent(thread_id=ids.thread, run_id=ids.run, outcome=outcome)
    return [*mapper.closing(), finished]


_ROLES: Mapping[str, Literal["developer", "system", "assistant", "user"]] = {
    "developer": "developer",
    "system": "system",
    "user": "user",
}


class _Mapper:
    """Parts of a reply as AG-UI events (the mapping is drawn in the package docstring)."""

    def __init__(self, run_id: str, *, asks_in_stream: bool) -> None:
        self._run_id = run_id
        self._asks_in_stream = asks_in_stream
        self._turn_message_id: str | None = None  # the assistant message calls belong to
        self._open: dict[str, BaseEvent] = {}  # the event that ends each open item, in order

    def closing(self) -> list[BaseEvent]:
        """The events that end the items still open (the last opened ends first)."""
        return list(reversed(self._open.values()))

    def events(self, part: parts.Part) -> Iterator[BaseEvent]:
        """The events of ``part`` (noting the items they open and end)."""
        for event in self._events(part):
            if isinstance(event, TextMessageStartEvent):
                self._open[f"text {event.message_id}"] = TextMessageEndEvent(
                    message_id=event.message_id, subagent_run_id=event.subagent_run_id
                )
            elif isinstance(event, ToolCallStartEvent):
                self._open[f"call {event.tool_call_id}"] = ToolCallEndEvent(
                    tool_call_id=event.tool_call_id
                )
            elif isinstance(event, SubagentStartedEvent):
                self._open[f"run {event.subagent_run_id}"] = SubagentFinishedEvent(
                    subagent_run_id=event.subagent_run_id
                )
            elif isinstance(event, TextMessageEndEvent):
                self._open.pop(f"text {event.message_id}", None)
            elif isinstance(event, ToolCallEndEvent):
                self._open.pop(f"call {event.tool_call_id}", None)
            elif isinstance(event, SubagentFinishedEvent):
                self._open.pop(f"run {event.subagent_run_id}", None)
            yield event

    def _events(self, part: parts.Part) -> Iterator[BaseEvent]:
        if isinstance(part, parts.TextStart):
            self._turn_message_id = part.message_id
            role = _ROLES.get(part.role, "assistant")
            metadata = {"agentAlias": part.agent_alias} if part.agent_alias else None
            yield TextMessageStartEvent(message_id=part.message_id, role=role, metadata=metadata)
        elif isinstance(part, parts.TextDelta):
            yield TextMessageContentEvent(message_id=part.message_id, delta=part.delta)
        elif isinstance(part, parts.TextEnd):
            yield TextMessageEndEvent(message_id=part.message_id)
        elif isinstance(part, parts.CallStart):
            if self._turn_message_id is None:
                self._turn_message_id = f"{self._run_id}-turn-{part.call_id}"
            yield ToolCallStartEvent(
                tool_call_id=part.call_id,
                tool_call_name=part.tool_name,
                parent_message_id=self._turn_message_id,
            )
        elif isinstance(part, parts.CallDelta):
            yield ToolCallArgsEvent(tool_call_id=part.call_id, delta=part.delta)
        elif isinstance(part, parts.CallEnd):
            yield ToolCallEndEvent(tool_call_id=part.call_id)
        elif isinstance(part, parts.AwaitingApproval):
            pass  # the run waits here (and, in AG-UI's own flow, has paused)
        elif isinstance(part, parts.ApprovalAsked):
            if not self._asks_in_stream:
                return  # asked in RUN_FINISHED's interrupts, where the run pauses
            interrupt = Interrupt(
                id=part.call_id,
                reason="tool_approval",
                message=str(part.request),
                tool_call_id=part.call_id,
                response_schema=_DECISION_SCHEMA,
                metadata={"toolName": part.tool_name, "arguments": part.arguments},
            )
            yield CustomEvent(
                name=APPROVAL_EVENT,
                value=interrupt.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
        else:
            yield from self._result_events(part)

    def _result_events(
        self, part: parts.ResultStart | parts.ResultDelta | parts.ResultEnd
    ) -> Iterator[BaseEvent]:
        self._turn_message_id = None  # the model's next text is a new turn
        nested = f"{part.call_id}-run"
        if isinstance(part, parts.ResultStart):
            yield SubagentStartedEvent(
                subagent_run_id=nested,
                name=part.tool_name,
                parent_tool_call_id=part.call_id,
            )
            yield TextMessageStartEvent(
                message_id=f"{part.message_id}-output", role="assistant", subagent_run_id=nested
            )
        elif isinstance(part, parts.ResultDelta):
            yield TextMessageContentEvent(
                message_id=f"{part.message_id}-output", delta=part.delta, subagent_run_id=nested
            )
        else:
            yield TextMessageEndEvent(
                message_id=f"{part.message_id}-output", subagent_run_id=nested
            )
            yield SubagentFinishedEvent(subagent_run_id=nested)
            yield ToolCallResultEvent(
                message_id=part.message_id,
                tool_call_id=part.call_id,
                content=part.text,
                role="tool",
                metadata=({"isError": True, "denied": part.denied} if part.is_error else None),
            )
