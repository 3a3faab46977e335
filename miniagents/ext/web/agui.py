"""``agui_app``: an agent served in the AG-UI protocol (see :mod:`miniagents.ext.web`).

This module is the protocol: how a ``RunAgentInput`` starts or resumes a run, and how a
reply is written as AG-UI events (:class:`_AGUIEncoder`); the runs themselves are the run
manager's (:mod:`miniagents.ext.web._runs`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias, get_args

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
    SubagentErrorEvent,
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
    TokenUsage as AGUITokenUsage,
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

from miniagents.arguments import refused_argument
from miniagents.ext.errors import WebConfigurationError
from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, TokenUsage, UserMessage
from miniagents.ext.told_errors import told_error, told_reference
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.web import _reply_parts as parts
from miniagents.ext.web._app import runs_app
from miniagents.ext.web._durable import DurableJobs, FoundRun
from miniagents.ext.web._guard import Door
from miniagents.ext.web._http import (
    StartBody,
    error_response,
    not_pending,
    problems,
    resumed_meanwhile,
    shown_id,
    too_deep,
)
from miniagents.ext.web._protocol import (
    ApprovalFlow,
    Item,
    ItemEncoder,
    ItemProtocol,
    JobIds,
    json_text,
)
from miniagents.ext.web._runs import ApprovalDecision, Run, RunManager, arecovered, astart_turn
from miniagents.ext.web._usage import JobUsage
from miniagents.ext.web.auth import Authentication
from miniagents.ext.web.settings import WebSettings
from miniagents.frozen.errors import HashKeyError
from miniagents.messages.message import Message
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

_DECISION_SCHEMA_WITHOUT_EDITS: dict[str, object] = {
    **_DECISION_SCHEMA,
    "properties": {"approved": {"type": "boolean"}, "reason": {"type": ["string", "null"]}},
}
"""The decision's schema of an app made with ``approval_edits=False`` (no ``arguments``)."""


AGUIInput: TypeAlias = Literal["state", "tools", "context", "forwarded_props"]
"""A field of the ``RunAgentInput`` that ``agui_app(inputs=...)`` gives the agent."""


def agui_app(
    agent: MiniAgent[..., Message],
    *,
    authentication: Authentication | None = None,
    settings: WebSettings = WebSettings(),
    inputs: Collection[AGUIInput] = (),
    arguments: Callable[[RunAgentInput], Mapping[str, object]] | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
    approval_flow: ApprovalFlow = "protocol",
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
      waits for approval (``{"approved": true}``, with ``"arguments": {...}`` if the
      settings allow edits, or ``{"approved": false, "reason": "..."}``), while the run
      still streams.

    **Approvals, AG-UI's way** (``approval_flow="protocol"``, the default): when the reply
    can go no further until a call is decided, the run ends with ``RUN_FINISHED`` whose
    ``outcome`` is ``{"type": "interrupt", "interrupts": [...]}``, an ``Interrupt`` per
    call that waits (``id`` and ``toolCallId`` the call's id, ``reason``
    ``"tool_approval"``, ``responseSchema`` the decision's schema, ``expiresAt`` when the
    wait ends). The agent waits meanwhile, its state in memory (no LLM call open). The
    client answers with a new run of the same thread (a new ``runId``) whose ``resume``
    holds an entry per interrupt: ``{"interruptId": ..., "status": "resolved", "payload":
    {"approved": true}}`` (or ``"approved": false, "reason": ...``), or ``"status":
    "cancelled"`` (a denial); that run's stream goes on from where the first stopped (its
    ``messages`` are not read again: the agent has them). A new run of the thread without
    ``resume`` abandons the waiting ones (they are cancelled; a durable agent's that waited
    before a restart too); a paused run that nobody
    resumes within the settings' ``keep_runs_for`` seconds is cancelled.

    **Approvals in the stream** (``approval_flow="in_stream"``): the run never pauses and
    its stream stays open. The event that means "this call waits for approval" is a
    ``CUSTOM`` event named ``"tool_approval_request"`` (:data:`APPROVAL_EVENT`), whose
    ``value`` is an AG-UI ``Interrupt`` (``toolCallId`` the call's id, ``metadata`` its
    ``toolName`` and ``arguments``); the decision comes to the approvals URL above, and
    the stream goes on with the call's result (or its denial).

    The input's messages become the agent's input messages (see
    :func:`agui_input_messages`). The fields of the input named in ``inputs`` are given to
    the agent as keyword arguments of the same names: ``state`` (the client's state, any
    JSON value, ``None`` when absent), ``tools`` (the client's tools, a
    ``list[ag_ui.core.Tool]``, empty when absent), ``context`` (a
    ``list[ag_ui.core.Context]``, empty when absent), ``forwarded_props`` (any JSON value,
    ``None`` when absent); the agent must take them. ``arguments(run_input)`` gives more
    keyword arguments (a name in both is taken from ``arguments``); a callback that raises
    is the app's own failure: the run input is answered with a 500 (``arguments_failed``)
    that names the callback and the error's class, the error logged once under the reference
    the answer tells, and no run starts.

    **Usage.** A run's ``RUN_FINISHED`` (whatever its outcome) and its ``RUN_ERROR`` carry its
    ``usage``, AG-UI's ``TokenUsage`` per model (``model``, ``inputTokens``,
    ``outputTokens``, ``totalTokens``, and the ``reasoningTokens``, ``cachedInputTokens``
    and ``cacheWriteInputTokens`` where not 0; ``inputTokens`` and ``totalTokens`` left out
    where no call said its prompt's, as a call cancelled before its count), and its
    ``metadata.costUsd`` (when a call had a price): what that run spent, metered as its
    calls ran (every call of a model the reply caused in the run: its agents called as tools
    too; a run resumed after an approval or an answer reports the calls made after it only).
    AG-UI's ``TokenUsage`` has no cost, and its ``provider`` is left out. A run that called
    no model has no ``usage``. A durable agent's run reports what its texts said instead
    (its replay after a restart makes no calls to meter: see
    :mod:`miniagents.ext.web._usage`).

    **A durable agent** (``durable(agent)``): its runs survive a restart of the server (see
    the package docstring); the app launches DBOS in its lifespan, in a ``context()`` of
    its own where the runs a crash stopped are recovered.

    Args:
        agent: The agent to run.
        authentication: Who asks, required (see :mod:`miniagents.ext.web.auth`): a
            Starlette ``AuthenticationBackend``, ``"request.user"``, or
            ``NoAuthentication()`` for local development.
        settings: The limits, hosts, origins and approval edits (:class:`WebSettings`).
        inputs: The fields of the run input the agent takes as keyword arguments.
        arguments: More keyword arguments of the agent for a run input (none by default).
        context: Makes the ``MiniAgents`` context each run runs in (``MiniAgents``, or
            ``lambda: MiniAgents(...)``; not an instance).
        approval_flow: ``"protocol"`` (interrupt and resume) or ``"in_stream"``.

    Raises:
        WebConfigurationError: if ``authentication`` is not given, ``agent`` is no agent (a
            function not decorated with ``@miniagent``), ``context`` is a ``MiniAgents``
            instance (not what makes one), or ``approval_flow`` is neither
            ``"protocol"`` nor ``"in_stream"``, or ``inputs`` holds a name none of
            :data:`AGUIInput` (or is a str, not a collection of them).
    """
    door = Door(authentication, settings, "agui_app")
    _check_inputs(inputs)
    protocol = _AGUI(edits=settings.approval_edits)
    manager = RunManager(
        protocol,
        agent,
        context=context,
        approval_flow=approval_flow,
        settings=settings,
        app="agui_app",
    )
    served = _AGUIRuns(manager, inputs, arguments)
    return runs_app(
        manager,
        door,
        served.astart,
        served.afollow,
        run_key="run_id",
        resume_path="/runs/{run_id}",
        approvals_path="/runs/{run_id}/approvals/{call_id}",
    )


# -- the requests: a run input starts or resumes a run, a GET follows one -----------------------


_RUN_INPUT = StartBody(
    RunAgentInput,
    "invalid_run_input",
    "an AG-UI RunAgentInput",
    run_key=("runId", lambda body: body.run_id),
    kept_ids=(("threadId", lambda body: body.thread_id),),
)
"""A run input: the body of ``POST /``."""


class _AGUIRuns:
    """The AG-UI requests of one app, over its run manager."""

    def __init__(
        self,
        manager: RunManager,
        inputs: Collection[AGUIInput],
        arguments: Callable[[RunAgentInput], Mapping[str, object]] | None,
    ) -> None:
        self.manager = manager
        self.inputs = inputs
        self.arguments = arguments

    async def astart(self, request: Request, owner: str | None) -> Response:
        """``POST /``: a run input, which starts a run of its thread (or resumes the paused one)."""
        manager = self.manager
        run_input = await _RUN_INPUT.aread(request, manager.settings)
        if isinstance(run_input, Response):
            return run_input
        if await self._aexists(owner, run_input):
            return _run_exists(run_input)
        if run_input.resume:
            return await self._aresume(owner, run_input)
        thread = run_input.thread_id
        refused = await manager.aroom(owner, run_input.run_id, thread)
        if refused is not None:
            return refused
        try:
            messages = agui_input_messages(run_input.messages)
        except (HashKeyError, RecursionError):  # (a call's arguments: frozen, or parsed)
            return too_deep("invalid_run_input")
        kwargs = _input_arguments(run_input, self.inputs)
        if self.arguments is not None:
            try:
                kwargs.update(self.arguments(run_input))
            except Exception as error:  # (the app's callback: its run input is refused)
                return _arguments_failed(error, run_input, manager)

        def start() -> Run | Response:
            if manager.durable is not None and manager.get(run_input.run_id, owner) is not None:
                return _run_exists(run_input)  # (started meanwhile, while the room was sought)
            ids = manager.protocol.ids(run_input.run_id, run_input.thread_id)
            return manager.start_new(owner, ids, messages, kwargs)

        # (only now the thread's durable runs paused elsewhere are abandoned: a bad request
        # above was refused first, and they stay resumable; counted again after)
        return await astart_turn(manager, owner, (run_input.run_id, thread), start, group=thread)

    async def _aexists(self, owner: str | None, run_input: RunAgentInput) -> bool:
        """Whether ``owner`` has a run of the input's id (here, or a durable one)."""
        durable, run_id = self.manager.durable, run_input.run_id
        if self.manager.get(run_id, owner) is not None:
            return True
        if durable is None:
            return False
        named = await durable.afind_named(owner, run_id)
        # (a resume sent again after a crash that came before its decision was given)
        again = bool(run_input.resume) and named is not None and not named.ended
        found = await durable.afind(owner, key=run_id) is not None or (
            named is not None and not (again and named.group == run_input.thread_id)
        )
        # (looked at again after the awaits: a start of the same id may have come in meanwhile)
        return found or self.manager.get(run_id, owner) is not None

    async def _aresume(self, owner: str | None, run_input: RunAgentInput) -> Response:
        """Resume the thread's run paused at the input's interrupts (``RunManager.aresume``)."""
        manager, thread = self.manager, run_input.thread_id
        answered = [entry.interrupt_id for entry in run_input.resume or []]
        most = manager.settings.max_id_chars
        named = ", ".join(shown_id(interrupt, most) for interrupt in answered)
        return await manager.aresume(
            owner,
            thread,
            lambda durable: durable.afind_all(owner, group=thread, running_only=True),
            lambda asked: _decisions(
                run_input, asked, edits=manager.settings.approval_edits, most_id_chars=most
            ),
            run_key=run_input.run_id,
            named=True,
            missing=lambda: error_response(
                404,
                "unknown_interrupt",
                f"No run of the thread {thread!r} waits for the interrupts {named}: it was "
                "never asked, or its run ended (or waited longer than keep_runs_for). Start "
                "a new run without resume.",
            ),
            gone=lambda: resumed_meanwhile(f"the thread {thread!r}", "interrupts"),
            which=lambda job: any(job.asked(interrupt) is not None for interrupt in answered),
        )

    async def afollow(self, request: Request, owner: str | None) -> Response:
        """``GET /runs/{runId}``: the run's events after ``Last-Event-ID``, then the live rest."""
        run_id = request.path_params["run_id"]
        run = self.manager.get(run_id, owner) or await self._arecovered(owner, run_id)
        if isinstance(run, Response):
            return run
        if run is None:
            shown = shown_id(run_id, self.manager.settings.max_id_chars)
            return error_response(
                404,
                "unknown_run",
                f"There is no run {shown}: it never started here, or it ended more than "
                f"{self.manager.settings.keep_runs_for:g} seconds ago (or before the latest "
                f"{self.manager.settings.max_ended_runs} runs that ended, max_ended_runs, "
                "or the ended runs kept more than max_ended_run_bytes).",
            )
        return await run.aresponse_after(request)

    async def _arecovered(self, owner: str | None, run_id: str) -> Run | Response | None:
        """``owner``'s run ``run_id`` of a durable agent, made again after a restart (if found).

        The run that resumed a paused job is found by its name: the job is made again
        (if it is not here) and replayed up to it.
        """
        manager = self.manager

        async def afind(durable: DurableJobs) -> FoundRun | None:
            return await durable.afind(owner, key=run_id) or await durable.afind_named(
                owner, run_id
            )

        async def areplay(found: FoundRun, first: Run) -> Run | None:
            if found.key == run_id:
                return first
            runs = [point.run for point in found.pauses]
            if run_id in runs:  # replayed up to the pause it resumed
                await first.job.arun_after(runs.index(run_id) + 1)
            return manager.get(run_id, owner)

        # (its first run, made again, replaces no paused run of its thread)
        return await arecovered(manager, owner, run_id, afind, areplay)


def _run_exists(run_input: RunAgentInput) -> Response:
    return error_response(
        409,
        "run_exists",
        f"A run with the id {run_input.run_id!r} exists already; follow it with GET "
        f"runs/{run_input.run_id}, or start a new run with a new runId.",
    )


def _check_inputs(inputs: object) -> None:
    """Refuse ``inputs`` that are not a collection of the input's fields (:data:`AGUIInput`).

    Raises:
        WebConfigurationError: naming the fields (was: taken, and every run input failed
            with a ``KeyError``, as did each letter of ``inputs="state"``).
    """
    fields = get_args(AGUIInput)
    if (
        isinstance(inputs, str | bytes)
        or not isinstance(inputs, Collection)
        or any(name not in fields for name in inputs)
    ):
        raise refused_argument(
            inputs,
            "inputs",
            "a collection of the names " + ", ".join(repr(name) for name in fields),
            owner="agui_app",
            fix='Pass e.g. inputs=["state"] (a list, even of one name; snake_case, as '
            "forwarded_props), or leave it out for none.",
            error=WebConfigurationError,
        )


def _arguments_failed(error: Exception, run_input: RunAgentInput, manager: RunManager) -> Response:
    """The 500 of a run input whose ``arguments=`` callback raised ``error`` (logged once).

    The run is not started; the client is told the callback failed, with the error's class
    and the reference the server's log has it under (and its text, with ``error_texts``).
    """
    kind = type(error).__name__
    told = told_error(
        error,
        manager.protocol.logger,
        f"The app's arguments= callback, given the AG-UI run input {run_input.run_id!r},",
        error_texts=False,
    )
    where = told_reference(told.reference, "the server's operator")
    message = (
        f"The app's arguments= callback failed with {kind} on this run input, so no run was "
        f"started. {where}"
    )
    if manager.settings.error_texts:
        message += f" Its error: {str(error) or repr(error)}"
    return error_response(500, "arguments_failed", message)  # (the app's fault, not the input's)


def _input_arguments(run_input: RunAgentInput, inputs: Collection[AGUIInput]) -> dict[str, object]:
    values: dict[str, object] = {
        "state": run_input.state,
        "tools": list(run_input.tools or ()),
        "context": list(run_input.context or ()),
        "forwarded_props": run_input.forwarded_props,
    }
    return {name: values[name] for name in inputs}


def _decisions(
    run_input: RunAgentInput,
    asked_of: Callable[[str], ToolApprovalRequest | None],
    *,
    edits: bool,
    most_id_chars: int,
) -> list[tuple[ToolApprovalRequest, ApprovalDecision]] | Response:
    """The decisions the input's resume entries give, each checked before any is decided.

    (An interrupt id it does not know is repeated within ``most_id_chars``: see
    :func:`~miniagents.ext.web._http.shown_id`.)
    """
    decisions: list[tuple[ToolApprovalRequest, ApprovalDecision]] = []
    for place, entry in enumerate(run_input.resume or []):
        asked = asked_of(entry.interrupt_id)
        if asked is None:
            return error_response(
                404,
                "unknown_interrupt",
                f"resume.{place}: the paused run of the thread {run_input.thread_id!r} has "
                f"no interrupt {shown_id(entry.interrupt_id, most_id_chars)}; answer the ids "
                "of its RUN_FINISHED outcome's interrupts.",
            )
        if not asked.pending:  # (decided elsewhere: the others, if any wait, said)
            resumed = [asked_of(each.interrupt_id) for each in run_input.resume or []]
            return not_pending(entry.interrupt_id, asked.tool_name, resumed)
        if any(asked is earlier for earlier, _ in decisions):
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
        refused = decision.refusal(asked, f"resume.{place}.payload.arguments", edits=edits)
        if refused is not None:
            return refused
        decisions.append((asked, decision))
    return decisions


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


# -- the protocol: names, events, items ------------------------------------------------------

_NAMED = ("messageId", "parentMessageId", "subagentRunId")  # the fields a rename renames


class _AGUI(ItemProtocol):
    """AG-UI, for the run manager: a job is a run (its key) of a thread (its group)."""

    name = "ag-ui"
    headers = AGUI_HEADERS
    compact = True
    cuts_live_runs = True
    tells_errors = True
    fails_stopped_runs = True
    paused_hint = (
        "answer its interrupt with a new run of the thread whose resume holds "
        '{"interruptId": the call id, "status": "resolved", "payload": {"approved": ...}}.'
    )

    def __init__(self, *, edits: bool) -> None:
        # the schema its interrupts advertise: without arguments when no edit is allowed
        self._schema = _DECISION_SCHEMA if edits else _DECISION_SCHEMA_WITHOUT_EDITS

    def ids(self, key: str, group: str) -> JobIds:
        return JobIds(key=key, group=group, pause_key=group, prefix=key)

    def encoder(
        self, ids: JobIds, approval_flow: ApprovalFlow, keep_runs_for: float, usage: JobUsage
    ) -> _AGUIEncoder:
        asks_in_stream = approval_flow == "in_stream"
        return _AGUIEncoder(
            ids,
            usage,
            asks_in_stream=asks_in_stream,
            keep_runs_for=keep_runs_for,
            schema=self._schema,
        )

    def item(self, event: Mapping[str, object], opened: tuple[str, ...] | None) -> Item:
        kind = event.get("type")
        if kind == "TEXT_MESSAGE_START":
            nested = _text(event, "subagentRunId")
            if nested and opened is not None and opened[:1] == (nested,):
                return "output", (nested, _text(event, "messageId")), True
            return "text", (_text(event, "messageId"),), False
        if kind == "TOOL_CALL_START":
            return "call", (_text(event, "toolCallId"),), False
        if kind == "SUBAGENT_STARTED":
            return "output", (_text(event, "subagentRunId"), ""), False
        return "same" if kind in ("TEXT_MESSAGE_CONTENT", "TOOL_CALL_ARGS") else None

    def closing(self, kind: str, names: tuple[str, ...]) -> list[str]:
        """``TEXT_MESSAGE_END`` (a tool output's, then ``SUBAGENT_FINISHED``), ``TOOL_CALL_END``."""
        events: list[BaseEvent] = []
        if kind == "text":
            events.append(TextMessageEndEvent(message_id=names[0]))
        elif kind == "call":
            events.append(ToolCallEndEvent(tool_call_id=names[0]))
        elif kind == "output":
            if len(names) > 1 and names[1]:
                events.append(TextMessageEndEvent(message_id=names[1], subagent_run_id=names[0]))
            events.append(SubagentFinishedEvent(subagent_run_id=names[0]))
        return [_encode(event) for event in events]

    def renamed_keys(self, event: Mapping[str, object]) -> tuple[str, ...]:
        return _NAMED


_ITEM_EVENTS: Mapping[str, type[BaseEvent]] = {
    "TEXT_MESSAGE_START": TextMessageStartEvent,
    "TEXT_MESSAGE_END": TextMessageEndEvent,
    "TOOL_CALL_START": ToolCallStartEvent,
    "TOOL_CALL_END": ToolCallEndEvent,
    "SUBAGENT_STARTED": SubagentStartedEvent,
    "SUBAGENT_FINISHED": SubagentFinishedEvent,
    "SUBAGENT_ERROR": SubagentErrorEvent,
}
"""The events that open or end an item (a text message, a tool call, a nested run), by type."""


def _item_of(event: BaseEvent) -> tuple[str, BaseEvent, bool] | None:
    """The item ``event`` opens or ends, if any: its key, the event that ends it, and which.

    The last is ``True`` where ``event`` opens the item, ``False`` where it ends it.
    """
    if isinstance(event, TextMessageStartEvent):
        nested = event.subagent_run_id
        end: BaseEvent = TextMessageEndEvent(message_id=event.message_id, subagent_run_id=nested)
        return f"text {event.message_id}", end, True
    if isinstance(event, ToolCallStartEvent):
        end = ToolCallEndEvent(tool_call_id=event.tool_call_id)
        return f"call {event.tool_call_id}", end, True
    if isinstance(event, SubagentStartedEvent):
        end = SubagentFinishedEvent(subagent_run_id=event.subagent_run_id)
        return f"run {event.subagent_run_id}", end, True
    if isinstance(event, TextMessageEndEvent):
        return f"text {event.message_id}", event, False
    if isinstance(event, ToolCallEndEvent):
        return f"call {event.tool_call_id}", event, False
    if isinstance(event, SubagentFinishedEvent | SubagentErrorEvent):
        return f"run {event.subagent_run_id}", event, False
    return None


def _text(event: Mapping[str, object], key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def _encode(event: BaseEvent) -> str:
    dumped = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json_text(dumped, compact=True)


def _interrupt(
    request: ToolApprovalRequest, expires_in: float | None, schema: dict[str, object]
) -> Interrupt:
    expires = None
    if expires_in is not None:
        at = datetime.now(UTC) + timedelta(seconds=expires_in)
        expires = at.isoformat(timespec="seconds")
    return Interrupt(
        id=request.call_id,
        reason="tool_approval",
        message=str(request),
        tool_call_id=request.call_id,
        response_schema=schema,
        expires_at=expires,
        metadata={"toolName": request.tool_name, "arguments": parts.plain(request.arguments)},
    )


def _token_usage(model: str | None, usage: TokenUsage) -> AGUITokenUsage:
    """``usage`` of ``model`` as an AG-UI ``TokenUsage`` (its totals inclusive, as ours are)."""
    known = usage.input_tokens is not None and usage.output_tokens is not None
    return AGUITokenUsage(
        model=model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=(usage.input_tokens or 0) + (usage.output_tokens or 0) if known else None,
        reasoning_tokens=usage.reasoning_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_input_tokens=usage.cache_write_tokens,
    )


_PROTOCOL_VERSION = "1.0"
"""The AG-UI version the app speaks (it sends 1.0's events: ``SUBAGENT_ERROR``, ``usage``),
declared on each ``RUN_STARTED``: ours, not the installed SDK's ``PROTOCOL_VERSION``, which
a newer ``ag-ui-protocol`` would raise without the app speaking its version."""


_ROLES: Mapping[str, Literal["developer", "system", "assistant", "user"]] = {
    "developer": "developer",
    "system": "system",
    "user": "user",
}


class _AGUIEncoder(ItemEncoder[BaseEvent]):
    """A job's reply as AG-UI events (the mapping is drawn in the package docstring).

    It knows the thread and the run it streams to now (a resumed job streams to a new run)
    and the items it left open, which a run given up on ends before its ``RUN_FINISHED``
    (``@ag-ui/client``'s verifier refuses one while a text message, a tool call or a nested
    run is open), and a failed run before its ``RUN_ERROR`` (so that a client has the text
    and the calls it had streamed as whole messages).
    """

    def __init__(
        self,
        ids: JobIds,
        usage: JobUsage,
        *,
        asks_in_stream: bool,
        keep_runs_for: float,
        schema: dict[str, object],
    ) -> None:
        super().__init__()
        self._thread = ids.group
        self._run = ids.key
        self._first_run = ids.key  # (names the turn of calls that no text came before)
        self._asks_in_stream = asks_in_stream
        self._keep_runs_for = keep_runs_for
        self._schema = schema
        self._turn_message_id: str | None = None  # the assistant message calls belong to
        self._usage = usage  # (its job's meter: each run reports what it spent)

    def opening(self) -> list[str]:
        self._usage.run_started()
        started = RunStartedEvent(
            thread_id=self._thread, run_id=self._run, protocol_version=_PROTOCOL_VERSION
        )
        return [_encode(started)]

    def pausing(self, waiting: Sequence[ToolApprovalRequest]) -> list[str]:
        interrupts = [_interrupt(asked, self._keep_runs_for, self._schema) for asked in waiting]
        outcome = RunFinishedInterruptOutcome(interrupts=interrupts)
        return [_encode(self._run_finished(outcome))]

    def resuming(self, run_key: str) -> list[str]:
        self._run = run_key
        return self.opening()

    def finished(self) -> list[str]:
        return [_encode(self._run_finished(None))]

    def _failure(self, error: Exception, text: str) -> list[str]:
        """The events that end the run with ``error``: what it left open, then its ``RUN_ERROR``.

        Its ``code`` is the error's class's name, its ``message`` ``text``, its ``usage`` what
        the run spent before the failure.
        """
        usage, metadata = self._usage_fields()
        return self._ending(
            RunErrorEvent(message=text, code=type(error).__name__, usage=usage, metadata=metadata)
        )

    def cancelled(self) -> list[str]:
        return self._ending(self._run_finished(RunFinishedCancelledOutcome()))

    def _run_finished(
        self, outcome: RunFinishedInterruptOutcome | RunFinishedCancelledOutcome | None
    ) -> RunFinishedEvent:
        """The run's ``RUN_FINISHED`` (``outcome``: ``None`` for a success), with its usage."""
        usage, metadata = self._usage_fields()
        return RunFinishedEvent(
            thread_id=self._thread,
            run_id=self._run,
            outcome=outcome,
            usage=usage,
            metadata=metadata,
        )

    def _usage_fields(self) -> tuple[list[AGUITokenUsage] | None, dict[str, object] | None]:
        """The run's ``usage`` (an entry per model) and ``metadata`` (its ``costUsd``), if any."""
        by_model = self._usage.run_usage()
        usage = [_token_usage(model or None, said) for model, said in by_model.items()]
        costs = [said.cost_usd for said in by_model.values() if said.cost_usd is not None]
        return usage or None, {"costUsd": sum(costs)} if costs else None

    def _ending(self, last: BaseEvent) -> list[str]:
        """The events that end what the run left open (the last opened first), then ``last``."""
        return [_encode(event) for event in [*self._open.ended(), last]]

    def _item_of(self, event: BaseEvent) -> tuple[str, BaseEvent, bool] | None:
        return _item_of(event)

    def _encode(self, event: BaseEvent) -> str:
        return _encode(event)

    def _decoded(self, data: str) -> BaseEvent | None:
        """The event of ``data`` if it opens or ends an item (``None`` if not)."""
        found = json.loads(data)
        kind = _ITEM_EVENTS.get(str(found.get("type"))) if isinstance(found, dict) else None
        return None if kind is None else kind.model_validate(found)

    def _events(self, part: parts.Part) -> Iterator[BaseEvent]:
        if isinstance(part, parts.TextStart):
            self._turn_message_id = part.message_id
            role = _ROLES.get(part.role, "assistant")
            metadata = {"agentAlias": part.agent_alias} if part.agent_alias else None
            yield TextMessageStartEvent(message_id=part.message_id, role=role, metadata=metadata)
        elif isinstance(part, parts.TextDelta):
            yield TextMessageContentEvent(message_id=part.message_id, delta=part.delta)
        elif isinstance(part, parts.TextEnd):
            self._usage.note(part.message)  # (a durable agent's job counts its texts')
            yield TextMessageEndEvent(message_id=part.message_id)
        elif isinstance(part, parts.CallStart):
            if self._turn_message_id is None:
                self._turn_message_id = f"{self._first_run}-turn-{part.call_id}"
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
            if self._asks_in_stream:  # (else asked in RUN_FINISHED's interrupts, at the pause)
                interrupt = _interrupt(part.request, None, self._schema)
                value = interrupt.model_dump(mode="json", by_alias=True, exclude_none=True)
                yield CustomEvent(name=APPROVAL_EVENT, value=value)
        else:
            yield from self._result_events(part)

    def _result_events(
        self, part: parts.ResultStart | parts.ResultDelta | parts.ResultEnd
    ) -> Iterator[BaseEvent]:
        self._turn_message_id = None  # the model's next text is a new turn
        nested, output = f"{part.call_id}-run", f"{part.message_id}-output"
        if isinstance(part, parts.ResultStart):
            yield SubagentStartedEvent(
                subagent_run_id=nested, name=part.tool_name, parent_tool_call_id=part.call_id
            )
            yield TextMessageStartEvent(message_id=output, role="assistant", subagent_run_id=nested)
        elif isinstance(part, parts.ResultDelta):
            yield TextMessageContentEvent(
                message_id=output, delta=part.delta, subagent_run_id=nested
            )
        else:
            yield TextMessageEndEvent(message_id=output, subagent_run_id=nested)
            if part.is_error and not part.denied:  # (the tool failed: its nested run did)
                yield SubagentErrorEvent(subagent_run_id=nested, message=part.text)
            else:
                yield SubagentFinishedEvent(subagent_run_id=nested)
            yield ToolCallResultEvent(
                message_id=part.message_id,
                tool_call_id=part.call_id,
                content=part.text,
                role="tool",
                metadata=({"isError": True, "denied": part.denied} if part.is_error else None),
            )
