"""``agui_app``: an agent served in the AG-UI protocol (see :mod:`miniagents.ext.web`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Literal

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
from miniagents.ext.web._runs import (
    DEFAULT_MAX_BODY_BYTES,
    RunStore,
    error_response,
    problems,
    read_json,
    runs_app,
    start_position,
)
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents

__all__ = ["AGUI_HEADERS", "APPROVAL_EVENT", "agui_app", "agui_input_messages"]

AGUI_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Sent with every AG-UI stream (``Content-Type: text/event-stream`` besides)."""

APPROVAL_EVENT = "tool_approval_request"
"""The name of the ``CUSTOM`` event that asks the page to approve a tool call (its value is
an AG-UI ``Interrupt``: ``id`` and ``toolCallId`` the call's id, ``reason``
``"tool_approval"``, ``responseSchema`` the decision's schema)."""

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


def agui_app(
    agent: MiniAgent[..., Message],
    *,
    arguments: Callable[[RunAgentInput], Mapping[str, object]] | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
    grace_period: float = 10.0,
    keep_runs_for: float = 300.0,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """An ASGI app that runs ``agent`` for each AG-UI ``RunAgentInput`` and streams its reply.

    Routes (relative to where the app is mounted):

    - ``POST /``: the run input (``RunAgentInput`` JSON); the response is the run's events
      (``text/event-stream``), each with an SSE ``id``.
    - ``GET /runs/{runId}``: the same run's events again, after the one named by the
      ``Last-Event-ID`` header (all of them without it), then the live rest: a client that
      lost its connection resumes, and any number of clients may follow one run.
    - ``POST /runs/{runId}/approvals/{toolCallId}``: a person's decision on a call that
      waits for approval (``{"approved": true, "arguments": {...}}`` or
      ``{"approved": false, "reason": "..."}``): the run goes on.

    The input's messages become the agent's input messages (see
    :func:`agui_input_messages`); ``arguments(run_input)`` gives the keyword arguments of
    the agent's ``inquire`` (e.g. from the input's ``state`` or ``forwardedProps``).

    Args:
        agent: The agent to run.
        arguments: The agent's keyword arguments for a run input (none by default).
        context: Makes the ``MiniAgents`` context each run runs in.
        grace_period: Seconds a run goes on after its last client left before it is
            cancelled (its LLM calls with it); 0 cancels it at once.
        keep_runs_for: Seconds an ended run stays for clients that resume it.
        max_body_bytes: The largest request body taken (a bigger one is a 413).
    """
    store = RunStore(keep_for=keep_runs_for, grace=grace_period)

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
        if store.get(run_input.run_id) is not None:
            return error_response(
                409,
                "run_exists",
                f"A run with the id {run_input.run_id!r} exists already; follow it with GET "
                f"runs/{run_input.run_id}, or start a new run with a new runId.",
            )
        messages = agui_input_messages(run_input.messages)
        kwargs = dict(arguments(run_input)) if arguments is not None else {}
        approvals: dict[str, ToolApprovalRequest] = {}
        events = _run_events(agent, messages, kwargs, run_input, context, approvals)
        cancelled = RunFinishedEvent(
            thread_id=run_input.thread_id,
            run_id=run_input.run_id,
            outcome=RunFinishedCancelledOutcome(),
        )
        run = store.start(run_input.run_id, events, [_encode(cancelled)], approvals)
        return run.response(0, AGUI_HEADERS)

    async def resume_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = store.get(run_id)
        if run is None:
            return error_response(
                404,
                "unknown_run",
                f"There is no run {run_id!r}: it never started here, or it ended more than "
                f"{keep_runs_for:g} seconds ago.",
            )
        start = start_position(request, run)
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


async def _run_events(
    agent: MiniAgent[..., Message],
    messages: list[Message],
    kwargs: dict[str, object],
    run_input: RunAgentInput,
    context: Callable[[], MiniAgents],
    approvals: dict[str, ToolApprovalRequest],
) -> AsyncIterator[str]:
    thread_id, run_id = run_input.thread_id, run_input.run_id
    yield _encode(RunStartedEvent(thread_id=thread_id, run_id=run_id))
    try:
        async with context():
            reply = agent.inquire(messages, **kwargs)
            mapper = _Mapper(run_id)
            async for part in parts.reply_parts(reply, run_id):
                if isinstance(part, parts.ApprovalAsked):
                    approvals[part.call_id] = part.request
                for event in mapper.events(part):
                    yield _encode(event)
    except Exception as error:  # the agent's failure ends the run with it
        yield _encode(RunErrorEvent(message=str(error) or repr(error), code=type(error).__name__))
        return
    yield _encode(RunFinishedEvent(thread_id=thread_id, run_id=run_id))


_ROLES: Mapping[str, Literal["developer", "system", "assistant", "user"]] = {
    "developer": "developer",
    "system": "system",
    "user": "user",
}


class _Mapper:
    """Parts of a reply as AG-UI events (the mapping is drawn in the package docstring)."""

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id
        self._turn_message_id: str | None = None  # the assistant message calls belong to

    def events(self, part: parts.Part) -> Iterator[BaseEvent]:
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
        elif isinstance(part, parts.ApprovalAsked):
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
                metadata={"isError": True} if part.is_error else None,
            )
