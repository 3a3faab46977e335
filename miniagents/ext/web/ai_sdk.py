"""``ai_sdk_app``: an agent served as an AI SDK UI message stream (see ``miniagents.ext.web``).

This module is the protocol: how a ``useChat`` request starts or resumes a chat's run, and
how a reply is written as UI message stream parts (:class:`_AISDKEncoder`); the runs
themselves are the run manager's (:mod:`miniagents.ext.web._runs`).
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from miniagents.ext.llm.messages import AssistantMessage, SystemMessage, TokenUsage, UserMessage
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.web import _reply_parts as parts
from miniagents.ext.web._app import runs_app
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

if TYPE_CHECKING:
    from miniagents.ext.web._durable import DurableJobs, FoundRun

__all__ = [
    "AI_SDK_HEADERS",
    "ApprovalFlow",
    "ChatRequest",
    "UIMessage",
    "UIPart",
    "ai_sdk_app",
    "ui_input_messages",
]

AI_SDK_HEADERS: Mapping[str, str] = {
    "x-vercel-ai-ui-message-stream": "v1",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
"""Sent with every UI message stream (``Content-Type: text/event-stream`` besides)."""

DONE = "[DONE]"
"""The data of the last event of every UI message stream."""

_RESTARTED = (
    "The server restarted while the model wrote this call; the model was asked again, and "
    "its new answer follows."
)
_UNFINISHED = (
    "The response ended before the model finished writing this call, so the call was not "
    "made; the response's error says why."
)


class UIPart(BaseModel):
    """A part of a ``UIMessage``: its ``type`` and the fields of that type (kept as sent)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str


class UIMessage(BaseModel):
    """A message of the ``useChat`` conversation, as the AI SDK sends it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    role: Literal["system", "user", "assistant"]
    parts: list[UIPart]


class ChatRequest(BaseModel):
    """The body of a ``useChat`` request: the chat's ``id`` and its ``messages``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    messages: list[UIMessage]


class _ApprovalResponse(BaseModel):
    """The ``approval`` of a tool part a person answered (``state: "approval-responded"``)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    id: str
    approved: bool
    reason: str | None = None


def ai_sdk_app(
    agent: MiniAgent[..., Message],
    *,
    authentication: Authentication | None = None,
    settings: WebSettings = WebSettings(),
    arguments: Callable[[ChatRequest], Mapping[str, object]] | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
    approval_flow: ApprovalFlow = "protocol",
) -> Starlette:
    """An ASGI app that runs ``agent`` for each ``useChat`` request and streams its reply.

    Routes (relative to where the app is mounted; point ``useChat``'s transport at it):

    - ``POST /``: the chat request (``{"id": chat id, "messages": [UIMessage, ...]}``); the
      response is the assistant's message as a UI message stream (``text/event-stream``,
      ``x-vercel-ai-ui-message-stream: v1``), each event with an SSE ``id``. A new request
      for a chat cancels the chat's run still streaming (or waiting for approvals), if
      any; a request that answers the approvals of the chat's paused run resumes it.
    - ``GET /{chat id}/stream``: the chat's active stream (the AI SDK's ``resume``): the
      run still streaming, from its first event, then the live rest; ``204 No Content``
      when none streams (no run, or its run has ended or paused for approvals, its
      message the client's already). A client that lost the stream mid-way reconnects
      with ``Last-Event-ID`` and gets the events after that one, ended run or not.
    - ``POST /{chat id}/approvals/{approvalId}``: a person's decision on a call that
      waits for approval (``{"approved": true}``, with ``"arguments": {...}`` if the
      settings allow edits, or ``{"approved": false, "reason": "..."}``), while the run
      still streams.

    **Approvals, the AI SDK's way** (``approval_flow="protocol"``, the default): a call
    that needs approval streams a ``tool-approval-request`` part (``approvalId``: the
    call's id); when the reply can go no further until it is decided, the stream ends
    (``finish-step``, ``finish``, ``[DONE]``) and the agent waits, its state in memory (no
    LLM call open). ``useChat`` answers with ``addToolApprovalResponse`` and sends the chat
    again (``sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses``):
    the tool parts in state ``approval-responded`` (``approval: {id, approved, reason}``)
    decide the calls, and the response goes on with the same assistant message (``start``
    with its ``messageId``): the tool's output, or ``tool-output-denied``, then the rest. A
    paused run that nobody resumes within the settings' ``keep_runs_for`` seconds is
    cancelled.

    **Approvals in the stream** (``approval_flow="in_stream"``): the run never pauses and
    its stream stays open. The part that means "this call waits for approval" is the
    same ``tool-approval-request`` (``{"type": "tool-approval-request", "approvalId": ...,
    "toolCallId": ...}``, the call's id in both), after the call's
    ``tool-input-available``; no ``finish`` follows it: the decision comes to the
    approvals URL above (``approvalId`` in the path), and the stream goes on with the
    call's ``tool-output-available`` (or ``tool-output-denied``).

    The request's messages become the agent's input messages (see
    :func:`ui_input_messages`); ``arguments(request)`` gives the keyword arguments of the
    agent's ``inquire`` (e.g. from fields the page adds to the body).

    **Usage.** The ``finish`` part carries the message's usage as its ``messageMetadata``:
    ``{"usage": {"inputTokens", "outputTokens", "totalTokens", "reasoningTokens",
    "cachedInputTokens", "cacheWriteTokens", "costUsd"}}`` (the counts the provider said,
    the names of the AI SDK's ``LanguageModelUsage`` where it has them; the cache and
    reasoning counts where not 0, ``inputTokens`` and ``totalTokens`` where a call said its
    prompt's (not of a call cancelled before its count), the cost when a call had a price),
    what the message's reply spent so far, metered as its calls ran (every call of a model
    it caused, its agents called as tools too), all models summed: a response resumed after
    an approval says the message's whole usage, each call once (``useChat`` merges it into
    the message's ``metadata``, replacing what the first response said; give
    ``messageMetadataSchema`` a ``usage`` field if you validate it). A response that fails
    or is stopped sends it in a ``message-metadata`` part before its ``error`` or ``abort``,
    which carry none. A reply that called no model sends no metadata. A durable agent's
    reply says what its texts said instead (its replay after a restart makes no calls to
    meter).

    **A durable agent** (``durable(agent)``): its runs survive a restart of the server (see
    the package docstring); the app launches DBOS in its lifespan, in a ``context()`` of
    its own where the runs a crash stopped are recovered. A new message of a chat gives up
    on the chat's runs that paused before a restart too, as on the one it replaces here.

    Args:
        agent: The agent to run.
        authentication: Who asks, required (see :mod:`miniagents.ext.web.auth`): a
            Starlette ``AuthenticationBackend``, ``"request.user"``, or
            ``NoAuthentication()`` for local development.
        settings: The limits, hosts, origins and approval edits (:class:`WebSettings`).
        arguments: The agent's keyword arguments for a request (none by default).
        context: Makes the ``MiniAgents`` context each run runs in (``MiniAgents``, or
            ``lambda: MiniAgents(...)``; not an instance).
        approval_flow: ``"protocol"`` (end the stream, resume on the resend) or
            ``"in_stream"``.

    Raises:
        WebConfigurationError: if ``authentication`` is not given, ``agent`` is no agent (a
            function not decorated with ``@miniagent``), ``context`` is a ``MiniAgents``
            instance (not what makes one), or ``approval_flow`` is neither ``"protocol"``
            nor ``"in_stream"``.
    """
    door = Door(authentication, settings, "ai_sdk_app")
    manager = RunManager(
        _AISDK(),
        agent,
        context=context,
        approval_flow=approval_flow,
        settings=settings,
        app="ai_sdk_app",
    )
    served = _AISDKRuns(manager, arguments)
    return runs_app(
        manager,
        door,
        served.astart,
        served.afollow,
        run_key="chat_id",
        resume_path="/{chat_id}/stream",
        approvals_path="/{chat_id}/approvals/{call_id}",
    )


# -- the requests: a chat request starts or resumes the chat's run, a GET follows it -----------


_CHAT_REQUEST = StartBody(
    ChatRequest,
    "invalid_chat_request",
    "a useChat request ({id, messages})",
    run_key=("id", lambda body: body.id),
)
"""A chat request: the body of ``POST /``."""


class _AISDKRuns:
    """The AI SDK requests of one app, over its run manager."""

    def __init__(
        self,
        manager: RunManager,
        arguments: Callable[[ChatRequest], Mapping[str, object]] | None,
    ) -> None:
        self.manager = manager
        self.arguments = arguments

    async def astart(self, request: Request, owner: str | None) -> Response:
        """``POST /``: a chat request, which starts the chat's run (or resumes the paused one)."""
        manager = self.manager
        chat = await _CHAT_REQUEST.aread(request, manager.settings)
        if isinstance(chat, Response):
            return chat
        responses = _approval_responses(chat)
        if isinstance(responses, Response):
            return responses
        if responses:
            return await self._aresume(owner, chat, responses)
        refused = await manager.aroom(owner, chat.id, chat.id)
        if refused is not None:
            return refused
        try:
            messages = ui_input_messages(chat.messages)
        except (HashKeyError, RecursionError):  # (a call's arguments, frozen)
            return too_deep("invalid_chat_request")
        kwargs = dict(self.arguments(chat)) if self.arguments is not None else {}
        # (counted again: a bad request above was refused before any run was abandoned)
        ids = manager.protocol.ids(chat.id, f"msg-{secrets.token_hex(8)}")
        start = functools.partial(manager.start_new, owner, ids, messages, kwargs)
        return await astart_turn(manager, owner, (chat.id, chat.id), start)

    async def _aresume(
        self, owner: str | None, chat: ChatRequest, responses: list[_ApprovalResponse]
    ) -> Response:
        """Resume the chat's paused run (see ``RunManager.aresume``) with the person's answers."""
        most = self.manager.settings.max_id_chars
        named = ", ".join(shown_id(response.id, most) for response in responses)
        return await self.manager.aresume(
            owner,
            chat.id,
            lambda durable: durable.afind_all(owner, key=chat.id, running_only=True),
            lambda asked: _decisions(chat, responses, asked, most),
            run_key=chat.id,
            named=False,
            missing=lambda: error_response(
                409,
                "not_pending",
                f"No run of the chat {chat.id!r} waits for the approvals {named}: its run "
                "ended, was cancelled or waited longer than keep_runs_for. Send the chat "
                "without them (a new message starts a new run).",
            ),
            gone=lambda: resumed_meanwhile(f"the chat {chat.id!r}", "approvals"),
        )

    async def afollow(self, request: Request, owner: str | None) -> Response:
        """``GET /{chat id}/stream``: the chat's active stream (``useChat``'s resume); else a 204.

        A run that has ended (or paused for approvals) is no active stream: its message is
        the client's already, and streaming it again would show it twice. Only a client
        that lost the stream mid-way, and says where with ``Last-Event-ID``, gets the
        rest of such a run.
        """
        chat_id = request.path_params["chat_id"]
        reconnecting = bool(request.headers.get("last-event-id"))
        run = self.manager.get(chat_id, owner) or await self._arecovered(
            owner, chat_id, reconnecting=reconnecting
        )
        if isinstance(run, Response):
            return run
        if run is None or (run.done and not reconnecting):
            return Response(status_code=204)
        return await run.aresponse_after(request)

    async def _arecovered(
        self, owner: str | None, chat_id: str, *, reconnecting: bool
    ) -> Run | Response | None:
        """The chat's latest run of a durable agent, made again after a restart (if found).

        A job that paused and was resumed is replayed up to its last run (the one the
        chat's last request made). A run that has ended is made again only for a client
        that ``reconnecting`` (with a ``Last-Event-ID``) wants the rest of it.
        """

        async def afind(durable: DurableJobs) -> FoundRun | None:
            found = await durable.afind(owner, key=chat_id)
            return None if found is None or (found.ended and not reconnecting) else found

        async def areplay(found: FoundRun, first: Run) -> Run:
            return await first.job.arun_after(len(found.pauses))

        return await arecovered(self.manager, owner, chat_id, afind, areplay)


def _approval_responses(chat: ChatRequest) -> list[_ApprovalResponse] | Response:
    """The approvals a person answered in the chat's tool parts (or the 422 of a bad one)."""
    found: list[_ApprovalResponse] = []
    for place, message in enumerate(chat.messages):
        for number, part in enumerate(message.parts):
            fields = part.model_extra or {}
            if message.role != "assistant" or fields.get("state") != "approval-responded":
                continue
            try:
                found.append(_ApprovalResponse.model_validate(fields.get("approval")))
            except ValidationError as error:
                return error_response(
                    422,
                    "invalid_chat_request",
                    f"messages.{place}.parts.{number}.approval is not an approval response "
                    f"({{id, approved, reason}}): {problems(error)}.",
                )
    return found


def _decisions(
    chat: ChatRequest,
    responses: list[_ApprovalResponse],
    asked_of: Callable[[str], ToolApprovalRequest | None],
    most_id_chars: int,
) -> list[tuple[ToolApprovalRequest, ApprovalDecision]] | Response:
    """The decisions the chat's approval responses give, each checked before any is decided.

    (An approval id it does not know is repeated within ``most_id_chars``: see
    :func:`~miniagents.ext.web._http.shown_id`.)
    """
    decisions: list[tuple[ToolApprovalRequest, ApprovalDecision]] = []
    for response in responses:
        asked = asked_of(response.id)
        if asked is None:
            return error_response(
                404,
                "unknown_approval",
                f"The paused run of the chat {chat.id!r} asked for no approval "
                f"{shown_id(response.id, most_id_chars)}.",
            )
        if not asked.pending:  # (decided elsewhere: the others, if any wait, said)
            resumed = [asked_of(each.id) for each in responses]
            return not_pending(response.id, asked.tool_name, resumed)
        if any(asked is earlier for earlier, _ in decisions):
            return not_pending(response.id, asked.tool_name)
        decision = ApprovalDecision(approved=response.approved, reason=response.reason)
        decisions.append((asked, decision))
    return decisions


def ui_input_messages(messages: Sequence[UIMessage]) -> list[Message]:
    """The ``UIMessage`` s of a chat as MiniAgents messages, for the agent's input.

    A ``user`` message -> ``UserMessage``, a ``system`` one -> ``SystemMessage`` (the text
    parts joined); an ``assistant`` message -> in the order of its parts, an
    ``AssistantMessage`` per run of text parts and, per tool part (``tool-{name}`` or
    ``dynamic-tool``), a ``ToolCallMessage`` and, once it has an output (or an error, or was
    denied: ``output-denied``), a ``ToolResultMessage``. Other parts (reasoning, files,
    sources, data, steps) are left out.
    """
    converted: list[Message] = []
    for message in messages:
        if message.role != "assistant":
            text = "".join(_text(part) for part in message.parts)
            message_class = UserMessage if message.role == "user" else SystemMessage
            converted.append(message_class(text=text))
            continue
        texts: list[str] = []
        for part in message.parts:
            if part.type == "text":
                texts.append(_text(part))
                continue
            tool = _tool_messages(part)
            if tool:
                if texts:
                    converted.append(AssistantMessage(text="".join(texts)))
                    texts = []
                converted.extend(tool)
        if texts:
            converted.append(AssistantMessage(text="".join(texts)))
    return converted


def _text(part: UIPart) -> str:
    text = getattr(part, "text", None) if part.type == "text" else None
    return text if isinstance(text, str) else ""


def _tool_messages(part: UIPart) -> list[Message]:
    fields = part.model_extra or {}
    if part.type.startswith("tool-"):
        tool_name = part.type.removeprefix("tool-")
    elif part.type == "dynamic-tool" and isinstance(fields.get("toolName"), str):
        tool_name = fields["toolName"]
    else:
        return []
    call_id = fields.get("toolCallId")
    if not isinstance(call_id, str):
        return []
    arguments = fields.get("input")
    found: list[Message] = [
        ToolCallMessage(
            tool_name=tool_name,
            arguments=arguments if isinstance(arguments, dict) else {},
            call_id=call_id,
        )
    ]
    state = fields.get("state")
    if state == "output-available":
        output = fields.get("output")
        text = output if isinstance(output, str) else _dumps(output)
        found.append(ToolResultMessage(tool_name=tool_name, call_id=call_id, text=text))
    elif state == "output-denied":
        approval = fields.get("approval")
        reason = approval.get("reason") if isinstance(approval, dict) else None
        denial = f"The user denied the call of the tool {tool_name}; it did not run."
        found.append(
            ToolResultMessage(
                tool_name=tool_name,
                call_id=call_id,
                text=f"{denial} Their reason: {reason}" if isinstance(reason, str) else denial,
                is_error=True,
            )
        )
    elif state == "output-error":
        error = fields.get("errorText")
        found.append(
            ToolResultMessage(
                tool_name=tool_name,
                call_id=call_id,
                text=error if isinstance(error, str) else "The tool failed.",
                is_error=True,
            )
        )
    return found


# -- the protocol: names, events, items ------------------------------------------------------


class _AISDK(ItemProtocol):
    """The AI SDK, for the run manager: a job is a chat (its key)'s next message (its group)."""

    name = "ai-sdk"
    headers = AI_SDK_HEADERS
    approvals_last = True  # useChat sends approvals back once every call of the step has its end
    cuts_live_runs = True
    fails_stopped_runs = True
    tells_errors = True
    paused_hint = (
        "answer it with addToolApprovalResponse and send the chat again (its tool part "
        'in state "approval-responded", with approval: {id, approved, reason}).'
    )

    def ids(self, key: str, group: str) -> JobIds:
        return JobIds(key=key, group=group, pause_key=key, prefix=group)

    def encoder(
        self, ids: JobIds, approval_flow: ApprovalFlow, keep_runs_for: float, usage: JobUsage
    ) -> _AISDKEncoder:
        return _AISDKEncoder(ids.group, usage)

    def item(self, event: Mapping[str, object], opened: tuple[str, ...] | None) -> Item:
        part = _named_part(event)
        if part is not None and part[2]:  # (one it opens; one it ends is no item of its own)
            return part[0], part[1], False
        return "same" if event.get("type") in ("text-delta", "tool-input-delta") else None

    def closing(self, kind: str, names: tuple[str, ...]) -> list[str]:
        """``text-end``, or ``tool-input-error`` (the call's input was never whole)."""
        ended = _end_of(kind, names, _RESTARTED)
        return [] if ended is None else [_dumps(ended)]

    def renamed_keys(self, event: Mapping[str, object]) -> tuple[str, ...]:
        kind = event.get("type")
        return ("id",) if isinstance(kind, str) and kind.startswith("text-") else ()


def _field(event: Mapping[str, object], key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def _dumps(value: object) -> str:
    return json_text(value)


def _input_error(call: str, tool: str, text: str) -> dict[str, object]:
    """The ``tool-input-error`` that ends a call's input that was never whole, saying ``text``."""
    return {
        "type": "tool-input-error",
        "toolCallId": call,
        "toolName": tool,
        "input": {},
        "errorText": text,
    }


def _named_part(event: Mapping[str, object]) -> tuple[str, tuple[str, ...], bool] | None:
    """The part ``event`` opens or ends, if any: its kind, its names, and whether it opens it.

    A text (``text-start``, ``text-end``), named by its id; a call's input
    (``tool-input-start``, ``tool-input-available``), named by its call's id and its tool.
    """
    kind = event.get("type")
    if kind in ("text-start", "text-end"):
        return "text", (_field(event, "id"),), kind == "text-start"
    if kind in ("tool-input-start", "tool-input-available"):
        names = (_field(event, "toolCallId"), _field(event, "toolName"))
        return "input", names, kind == "tool-input-start"
    return None


def _end_of(kind: str, names: tuple[str, ...], text: str) -> dict[str, object] | None:
    """The event that ends an open part of ``kind`` named ``names``, if any.

    A text's ``text-end``; a call's input's ``tool-input-error`` saying ``text`` (the input
    was never whole).
    """
    if kind == "text":
        return {"type": "text-end", "id": names[0]}
    if kind == "input":
        return _input_error(names[0], names[1] if len(names) > 1 else "", text)
    return None


def _part_of(event: Mapping[str, object]) -> tuple[str, dict[str, object], bool] | None:
    """The part ``event`` opens or ends, if any, as :class:`OpenItems` notes it.

    Its key, the event that ends it, and whether ``event`` opens it (else it ends it).
    """
    part = _named_part(event)
    if part is None:
        return None
    kind, names, opens = part
    ended = _end_of(kind, names, _UNFINISHED)
    assert ended is not None  # (a part _named_part names has an end)
    return f"{kind} {names[0]}", ended, opens


class _AISDKEncoder(ItemEncoder[dict[str, object]]):
    """A job's reply as UI message stream parts (drawn in the package docstring).

    A response that goes on after a pause starts with the decided calls' outputs outside
    any step, as the AI SDK's own agents send them (a ``start-step`` before them would
    leave an empty step in the message): its first step starts with the model's next part.
    It knows the text and call-input parts it left open, which a response that fails or is
    given up on ends before its ``error`` (or ``abort``), so that a client's message holds no
    part still streaming: a text's ``text-end``, a call's ``tool-input-error``.
    """

    def __init__(self, message_id: str, usage: JobUsage) -> None:
        super().__init__()
        self._message_id = message_id
        self._after_results = False  # a tool result came last: the model's next step follows
        self._step_open = False
        self._usage = usage  # (its job's meter: the message's, a resumed response goes on with it)

    def opening(self) -> list[str]:
        return self._opened(step=True)

    def pausing(self, waiting: Sequence[ToolApprovalRequest]) -> list[str]:
        return self._closed()

    def resuming(self, run_key: str) -> list[str]:
        return self._opened(step=False)

    def finished(self) -> list[str]:
        return self._closed()

    def _failure(self, error: Exception, text: str) -> list[str]:
        """The parts it left open ended, then the error part, saying ``text``."""
        return self._ending({"type": "error", "errorText": text})

    def cancelled(self) -> list[str]:
        return self._ending({"type": "abort"})

    def _ending(self, last: dict[str, object]) -> list[str]:
        """The events that end the parts left open (the last first), the usage, ``last``, done.

        The usage so far is a ``message-metadata`` part (``error`` and ``abort`` carry none).
        """
        metadata = self._metadata()
        said = (
            [] if metadata is None else [{"type": "message-metadata", "messageMetadata": metadata}]
        )
        return [*(_dumps(event) for event in [*self._open.ended(), *said, last]), DONE]

    def _metadata(self) -> dict[str, object] | None:
        """The message's metadata: ``{"usage": ...}``, what its reply spent so far (if any)."""
        total = self._usage.job_usage()
        return None if total is None else {"usage": _usage_json(total)}

    def _item_of(self, event: dict[str, object]) -> tuple[str, dict[str, object], bool] | None:
        return _part_of(event)

    def _encode(self, event: dict[str, object]) -> str:
        return _dumps(event)

    def _decoded(self, data: str) -> dict[str, object] | None:
        """The part of ``data`` (``None``: ``[DONE]``, no part's)."""
        found = json.loads(data) if data != DONE else None
        return found if isinstance(found, dict) else None

    def _opened(self, *, step: bool) -> list[str]:
        """The events that open a response: ``start`` (and ``start-step``, if ``step``)."""
        self._after_results = False
        self._step_open = step
        opened = [_dumps({"type": "start", "messageId": self._message_id})]
        return [*opened, _dumps({"type": "start-step"})] if step else opened

    def _closed(self) -> list[str]:
        """The events that close a response (at the run's end, or at a pause)."""
        closed = [_dumps({"type": "finish-step"})] if self._step_open else []
        self._step_open = False
        finish: dict[str, object] = {"type": "finish"}
        metadata = self._metadata()
        if metadata is not None:
            finish["messageMetadata"] = metadata
        return [*closed, _dumps(finish), DONE]

    def _events(self, part: parts.Part) -> Iterator[dict[str, object]]:
        is_result = isinstance(
            part,
            parts.AwaitingApproval | parts.ResultStart | parts.ResultDelta | parts.ResultEnd,
        )
        if not is_result and not self._step_open:
            yield {"type": "start-step"}
            self._step_open = True
        elif self._after_results and not is_result:
            yield {"type": "finish-step"}
            yield {"type": "start-step"}
        self._after_results = is_result
        if isinstance(part, parts.TextEnd):
            self._usage.note(part.message)  # (a durable agent's job counts its texts')
        yield from _parts_of(part)


_USAGE_NAMES = (
    ("input_tokens", "inputTokens"),
    ("output_tokens", "outputTokens"),
    ("reasoning_tokens", "reasoningTokens"),
    ("cached_input_tokens", "cachedInputTokens"),
    ("cache_write_tokens", "cacheWriteTokens"),
    ("cost_usd", "costUsd"),
)
"""Our usage's fields, and their names in the message's metadata (the AI SDK's where it has
them: its ``LanguageModelUsage``'s)."""


def _usage_json(usage: TokenUsage) -> dict[str, object]:
    """``usage`` as the message metadata's ``usage``: the counts known, ``totalTokens`` besides."""
    found = {
        name: value for field, name in _USAGE_NAMES if (value := getattr(usage, field)) is not None
    }
    if usage.input_tokens is not None and usage.output_tokens is not None:
        found["totalTokens"] = usage.input_tokens + usage.output_tokens
    return found


def _parts_of(part: parts.Part) -> Iterator[dict[str, object]]:
    """The stream parts of ``part`` itself (its step aside)."""
    if isinstance(part, parts.TextStart):
        yield {"type": "text-start", "id": part.message_id}
    elif isinstance(part, parts.TextDelta):
        yield {"type": "text-delta", "id": part.message_id, "delta": part.delta}
    elif isinstance(part, parts.TextEnd):
        yield {"type": "text-end", "id": part.message_id}
    elif isinstance(part, parts.CallStart):
        yield {"type": "tool-input-start", "toolCallId": part.call_id, "toolName": part.tool_name}
    elif isinstance(part, parts.CallDelta):
        yield {"type": "tool-input-delta", "toolCallId": part.call_id, "inputTextDelta": part.delta}
    elif isinstance(part, parts.CallEnd):
        yield {
            "type": "tool-input-available",
            "toolCallId": part.call_id,
            "toolName": part.tool_name,
            "input": part.arguments,
        }
    elif isinstance(part, parts.ApprovalAsked):
        yield {
            "type": "tool-approval-request",
            "approvalId": part.call_id,
            "toolCallId": part.call_id,
        }
    elif isinstance(part, parts.AwaitingApproval | parts.ResultStart):
        pass  # the output's first delta says it started
    elif isinstance(part, parts.ResultDelta):
        data = {"toolCallId": part.call_id, "delta": part.delta}
        yield {"type": "data-tool-output-delta", "data": data, "transient": True}
    elif part.denied:
        yield {"type": "tool-output-denied", "toolCallId": part.call_id}
    elif part.is_error:
        yield {"type": "tool-output-error", "toolCallId": part.call_id, "errorText": part.text}
    else:
        yield {"type": "tool-output-available", "toolCallId": part.call_id, "output": part.text}
