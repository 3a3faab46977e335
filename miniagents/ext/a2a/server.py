"""``a2a_app``: any agent served over A2A (the Agent2Agent protocol, version 1.0, JSON-RPC).

This module is the protocol's requests: the agent card, and the JSON-RPC methods that start,
stream, get, cancel and follow tasks again, each read within bounds and answered with A2A's
own error codes. A task is a job of the web layer's run manager
(:mod:`miniagents.ext.web.lowlevel`): its runs, their owners, limits, approvals and pauses
are the manager's, who asks and what a browser may do is the door's, and how its reply
becomes events is :mod:`miniagents.ext.a2a._encoding`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    CancelTaskRequest,
    GetTaskRequest,
    HTTPAuthSecurityScheme,
    Role,
    SecurityRequirement,
    SecurityScheme,
    SendMessageRequest,
    StringList,
    SubscribeToTaskRequest,
)
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message as ProtoMessage
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from miniagents.ext.a2a._encoding import A2AEncoder, A2AProtocol, now
from miniagents.ext.a2a._wire import FINAL_STATES, PAUSED_STATES, WORKING, Code
from miniagents.ext.a2a.errors import A2AConfigurationError, A2AError
from miniagents.ext.llm.messages import UserMessage
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.errors import ToolApprovalError
from miniagents.ext.web.auth import Authentication, BearerTokenAuth
from miniagents.ext.web.lowlevel import (
    ApprovalDecision,
    Door,
    Job,
    NoRoom,
    ProtocolRoute,
    RunManager,
    aread_bounded,
    follow_from_now,
    json_text,
    protocol_app,
)
from miniagents.ext.web.settings import WebSettings
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents

__all__ = ["CARD_PATH", "A2ASkill", "a2a_app"]

CARD_PATH = "/.well-known/agent-card.json"
"""Where the agent card is served (relative to where the app is mounted)."""

PROTOCOL_VERSION = "1.0"
"""The version of A2A the app speaks (its card says so, and the ``A2A-Version`` it takes)."""

_MODES = ["text/plain", "application/json"]
_CORS_HEADERS = ("a2a-version", "a2a-extensions", "traceparent", "tracestate")
_OLD_METHODS = frozenset(
    {"message/send", "message/stream", "tasks/get", "tasks/cancel", "tasks/resubscribe"}
)
_PUSH_METHODS = frozenset(
    {
        "CreateTaskPushNotificationConfig",
        "GetTaskPushNotificationConfig",
        "ListTaskPushNotificationConfigs",
        "DeleteTaskPushNotificationConfig",
    }
)
_SERVER_BUSY = -32000  # (JSON-RPC's range for a server's own errors: too many tasks)

ProtoT = TypeVar("ProtoT", bound=ProtoMessage)


@dataclass(frozen=True)
class A2ASkill:
    """A skill the agent card lists: what the agent can do, for a client to choose it by.

    Attributes:
        id: Its id (unique in the card).
        name: Its name, for people.
        description: What it does.
        tags: Words it is found by (at least one).
        examples: Requests it answers well, as a client would send them.
    """

    id: str
    name: str
    description: str
    tags: tuple[str, ...] = ("agent",)
    examples: tuple[str, ...] = ()


def a2a_app(
    agent: MiniAgent[..., Message],
    *,
    name: str | None = None,
    description: str | None = None,
    skills: Sequence[A2ASkill] | None = None,
    version: str = "1.0.0",
    url: str | None = None,
    arguments: Callable[[SendMessageRequest], Mapping[str, object]] | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
    authentication: Authentication | None = None,
    settings: WebSettings = WebSettings(),
) -> Starlette:
    """An ASGI app that serves ``agent`` over A2A: its card, and its tasks over JSON-RPC.

    Routes (relative to where the app is mounted):

    - ``GET /.well-known/agent-card.json``: the agent card (its name, description, skills,
      the JSON-RPC interface at the app's URL, ``capabilities.streaming``); served to
      anyone, and saying the bearer scheme when the app is made with a ``BearerTokenAuth``.
    - ``POST /``: JSON-RPC 2.0, A2A 1.0's methods: ``SendMessage`` (a new task, or the
      answer to a task that asks for input; the result is the task once it has ended or
      paused, or at once with ``configuration.returnImmediately``), ``SendStreamingMessage``
      (the same, streamed over SSE: the task first, then each event as it is made),
      ``GetTask``, ``CancelTask`` and ``SubscribeToTask`` (the task as it is now, then its
      events as they come: a client whose stream broke loses nothing). Push notifications,
      the extended card and ``ListTasks`` are not served (their errors say so).

    **The reply, live.** Each message of the agent's reply is an artifact that streams
    token by token as the agent produces it: texts, tool calls (the arguments' JSON as the
    model writes it) and tools' results (a sub-agent's reply as it is produced), each
    saying what it is in its metadata (see :mod:`miniagents.ext.a2a._wire`), so nested
    streams are not flattened into one text. The task completes with the reply (its
    usage, when the agent's texts said theirs), fails with the agent's error (its message
    and class), or is cancelled.

    **Approvals.** A call of a tool made with ``requires_approval=`` makes the task
    ``TASK_STATE_INPUT_REQUIRED`` where the reply can go no further: its status message
    asks for each call that waits (a data part ``{"toolApprovalRequest": {...}}`` each),
    the stream ends, and the agent waits (no LLM call open). The next message to the task
    (``taskId``) decides them, a data part ``{"toolCallId": ..., "approved": true or
    false, "arguments"?: {...}, "reason"?: "..."}`` per call, and the task goes on in that
    request's response (``"arguments"`` only if the settings say ``approval_edits=True``). A
    task nobody answers within the settings' ``keep_runs_for`` is cancelled.

    **Who asks.** With ``authentication=`` (see :mod:`miniagents.ext.web.auth`), a task
    belongs to the principal who started it: to another it is not found (``GetTask``,
    ``CancelTask``, ``SubscribeToTask`` and answers alike); a request of nobody known is a
    401 that starts nothing (``NoAuthentication()``: tasks are nobody's, for local
    development). The door's protections apply (the settings' ``allowed_hosts`` and CORS
    for their ``allowed_origins``, JSON posts only, the security headers), and a request's
    ``traceparent`` continues the caller's trace in the agent's spans (see
    :mod:`miniagents.ext.otel`).

    **Bad input** is answered with A2A's JSON-RPC errors and starts nothing: a body that is
    not JSON (-32700), not a request or over ``max_body_bytes`` (-32600), an unknown method
    (-32601), params of the wrong shape (-32602), an unknown task (-32001), a task that can
    no longer be cancelled (-32002) or followed or answered (-32004), a file part
    (-32005), another protocol version (-32009). A task over the limits is an HTTP 503
    (the app's, ``max_live_runs``) or 429 (the principal's), with ``Retry-After``. Unless the
    settings give a ``grace_period``, a task goes on once nobody follows its stream (A2A's
    tasks outlive their connections; ``CancelTask`` cancels them).

    Args:
        agent: The agent to serve; each task is one interaction (the message's text and
            data parts are its input messages).
        name: The card's name (default: the agent's alias).
        description: The card's description (default: the agent's, its first paragraph).
        skills: The card's skills (default: one, the agent itself).
        version: The agent's version, in the card.
        url: The app's public URL, in the card (default: the URL each card request came
            to, the app's root).
        arguments: More keyword arguments of the agent for a request (none by default).
        context: Makes the ``MiniAgents`` context each task runs in.
        authentication: Who asks, required (see :mod:`miniagents.ext.web.auth`): a
            Starlette ``AuthenticationBackend``, ``"request.user"``, or
            ``NoAuthentication()`` for local development.
        settings: The limits (a task is a run: ``keep_runs_for`` keeps an ended task for
            ``GetTask``), hosts, origins and approval edits (``WebSettings``).

    Raises:
        A2AConfigurationError: if the agent is durable (``miniagents.ext.dbos``: not served
            over A2A yet), or a skill has no tag.
        WebConfigurationError: if ``authentication`` is not given.
    """
    door = Door(authentication, settings, "a2a_app", request_headers=_CORS_HEADERS)
    if settings.grace_period is None:  # A2A's tasks outlive their connections
        settings = dataclasses.replace(settings, grace_period=math.inf)
    manager = RunManager(
        A2AProtocol(), agent, context=context, approval_flow="protocol", settings=settings
    )
    if manager.durable is not None:
        raise A2AConfigurationError(
            f"The agent {agent.alias} is durable (miniagents.ext.dbos), which a2a_app does not "
            "serve yet: serve the agent it wraps, or serve the durable agent with agui_app or "
            "ai_sdk_app (their runs survive a restart)."
        )
    card = _card(agent, name, description, skills, version, door.authentication)
    tasks = _A2ATasks(manager, card, url, arguments)
    routes = [
        ProtocolRoute(CARD_PATH, tasks.acard, ["GET"], public=True),
        ProtocolRoute("/", tasks.arpc, ["POST"]),
    ]
    return protocol_app(manager, door, routes)


def _card(
    agent: MiniAgent[..., Message],
    name: str | None,
    description: str | None,
    skills: Sequence[A2ASkill] | None,
    version: str,
    authentication: Authentication,
) -> dict[str, object]:
    """The card's JSON, its interface's URL left empty (each request fills it in)."""
    about = description or (agent.description or "").strip().split("\n\n", 1)[0].strip()
    about = about or f"The agent {agent.alias}."
    if skills is None:
        skills = [A2ASkill(agent.alias.lower(), agent.alias, about)]
    for skill in skills:
        if not skill.tags:
            raise A2AConfigurationError(
                f"The skill {skill.id!r} has no tags; give it at least one word it is found by "
                "(A2A requires tags), e.g. tags=('research',)."
            )
    card = AgentCard(
        name=name or agent.alias,
        description=about,
        version=version,
        supported_interfaces=[
            AgentInterface(url="", protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION)
        ],
        capabilities=AgentCapabilities(
            streaming=True, push_notifications=False, extended_agent_card=False
        ),
        default_input_modes=_MODES,
        default_output_modes=_MODES,
        skills=[
            AgentSkill(
                id=skill.id,
                name=skill.name,
                description=skill.description,
                tags=list(skill.tags),
                examples=list(skill.examples),
            )
            for skill in skills
        ],
    )
    if isinstance(authentication, BearerTokenAuth):
        scheme = SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="Bearer"))
        card.security_schemes["bearer"].CopyFrom(scheme)
        card.security_requirements.append(SecurityRequirement(schemes={"bearer": StringList()}))
    return MessageToDict(card)


# -- the requests ---------------------------------------------------------------------------

_Method = Callable[
    [str | int | None, Mapping[str, object], str | None, Request], Awaitable[Response]
]


class _RPCError(A2AError):
    """A JSON-RPC error to answer (never raised out of the app)."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class _A2ATasks:
    """The A2A requests of one app, over its run manager."""

    def __init__(
        self,
        manager: RunManager,
        card: dict[str, object],
        url: str | None,
        arguments: Callable[[SendMessageRequest], Mapping[str, object]] | None,
    ) -> None:
        self.manager = manager
        self.card = card
        self.url = url
        self.arguments = arguments
        self.methods: dict[str, _Method] = {
            "SendMessage": self._asend,
            "SendStreamingMessage": self._asend_streaming,
            "GetTask": self._aget,
            "CancelTask": self._acancel,
            "SubscribeToTask": self._asubscribe,
        }

    async def acard(self, request: Request, owner: str | None) -> Response:
        """``GET /.well-known/agent-card.json``: the card, with the app's URL in it."""
        root = request.scope.get("root_path", "")  # (a mounted app's mount: its URL's path)
        url = self.url or str(request.url.replace(path=f"{root}/", query="", fragment=""))
        interfaces = [{**self._interface(), "url": url}]
        return JSONResponse({**self.card, "supportedInterfaces": interfaces})

    def _interface(self) -> dict[str, object]:
        found = self.card.get("supportedInterfaces")
        assert isinstance(found, list)  # (made so by _card)
        interface = found[0]
        assert isinstance(interface, dict)
        return interface

    async def arpc(self, request: Request, owner: str | None) -> Response:
        """``POST /``: one JSON-RPC request, read within bounds and answered by its method."""
        limit = self.manager.settings.max_body_bytes
        body = await aread_bounded(request, limit)
        if body is None:
            return _error(
                None,
                Code.INVALID_REQUEST,
                f"The request body is over the limit of {limit} bytes; send a "
                "shorter message (or make the app with a higher max_body_bytes).",
            )
        try:
            parsed: object = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            return _error(None, Code.PARSE_ERROR, f"The request body is not JSON ({reason}).")
        if not isinstance(parsed, dict):
            what = "a batch (a list)" if isinstance(parsed, list) else "no JSON-RPC object"
            return _error(
                None,
                Code.INVALID_REQUEST,
                f"The request is {what}: send one JSON-RPC 2.0 request object (batches are "
                "not served).",
            )
        rpc_id = parsed.get("id")
        if isinstance(rpc_id, bool) or not isinstance(rpc_id, str | int | None):
            return _error(
                None, Code.INVALID_REQUEST, "The request's id is not a string, an integer or null."
            )
        method = parsed.get("method")
        if parsed.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(
                rpc_id,
                Code.INVALID_REQUEST,
                'The request is not JSON-RPC 2.0: it needs "jsonrpc": "2.0" and a "method" '
                "(a string).",
            )
        params = parsed.get("params", {})
        if not isinstance(params, dict):
            return _error(rpc_id, Code.INVALID_PARAMS, "The request's params are not an object.")
        version = request.headers.get("a2a-version", "").strip()
        if version and version.split(".")[:2] != PROTOCOL_VERSION.split("."):
            return _error(
                rpc_id,
                Code.VERSION_NOT_SUPPORTED,
                f"This agent speaks A2A {PROTOCOL_VERSION}, not {version!r}; send "
                f"A2A-Version: {PROTOCOL_VERSION} (or none).",
            )
        handler = self.methods.get(method)
        if handler is None:
            return _error(rpc_id, *_unserved(method))
        try:
            return await handler(rpc_id, params, owner, request)
        except _RPCError as error:
            return _error(rpc_id, error.code, error.message, error.data)

    # -- the methods ----------------------------------------------------------------------

    async def _asend(
        self, rpc_id: str | int | None, params: Mapping[str, object], owner: str | None, _: Request
    ) -> Response:
        return await self._amessage(rpc_id, params, owner, streaming=False)

    async def _asend_streaming(
        self, rpc_id: str | int | None, params: Mapping[str, object], owner: str | None, _: Request
    ) -> Response:
        return await self._amessage(rpc_id, params, owner, streaming=True)

    async def _amessage(
        self,
        rpc_id: str | int | None,
        params: Mapping[str, object],
        owner: str | None,
        *,
        streaming: bool,
    ) -> Response:
        request = _parsed(params, SendMessageRequest())
        message = request.message
        if not message.parts:
            raise _RPCError(Code.INVALID_PARAMS, "params.message has no parts: send at least one.")
        if message.role == Role.ROLE_AGENT:
            raise _RPCError(
                Code.INVALID_PARAMS, "params.message is the agent's (ROLE_AGENT): send ROLE_USER."
            )
        sent = MessageToDict(message)
        configuration = request.configuration
        history = configuration.history_length if configuration.HasField("history_length") else None
        if message.task_id:
            job = await self._aanswered(message.task_id, message.context_id, sent, owner)
        else:
            started = self._started(request, sent, owner)
            if isinstance(started, NoRoom):
                return _busy(rpc_id, started)
            job = started
        if streaming:
            return self._stream(rpc_id, job)
        if not configuration.return_immediately:
            await job.asettled()
        return _result(rpc_id, {"task": self._task(job, history)})

    def _started(
        self, request: SendMessageRequest, sent: dict[str, object], owner: str | None
    ) -> Job | NoRoom:
        """A new task of the message (its input messages checked first), or why there is no room."""
        inputs = _input_messages(sent)
        manager = self.manager
        task_id = str(uuid.uuid4())
        context_id = request.message.context_id or str(uuid.uuid4())
        refused = manager.no_room(owner, task_id, task_id)
        if refused is not None:
            return refused
        kwargs = dict(self.arguments(request)) if self.arguments is not None else {}
        run = manager.start_new(owner, manager.protocol.ids(task_id, context_id), inputs, kwargs)
        _encoder(run.job).client_messages.append(
            {**sent, "taskId": task_id, "contextId": context_id}
        )
        return run.job

    async def _aanswered(
        self, task_id: str, context_id: str, sent: dict[str, object], owner: str | None
    ) -> Job:
        """The task ``task_id`` that waited for input, resumed with the message's decisions."""
        manager = self.manager
        job = self._job(task_id, owner)
        encoder = _encoder(job)
        if context_id and context_id != encoder.fold.context_id:
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"The message's contextId {context_id!r} is not the context of the task "
                f"{task_id!r}; send the task's ({encoder.fold.context_id!r}), or none.",
            )
        if manager.paused(task_id, owner) is not job:
            state = encoder.task(_events(job))["status"]
            said = state.get("state") if isinstance(state, dict) else None
            if job.done or said in FINAL_STATES:
                raise _RPCError(
                    Code.UNSUPPORTED_OPERATION,
                    f"The task {task_id!r} has ended ({said}): it takes no more messages. Send "
                    "a new message without taskId to start a new task.",
                )
            raise _RPCError(
                Code.UNSUPPORTED_OPERATION,
                f"The task {task_id!r} is working: it takes a message only while it asks for "
                "input (TASK_STATE_INPUT_REQUIRED). Follow it with SubscribeToTask.",
            )
        decisions = _decisions(sent, job, edits=manager.settings.approval_edits)
        run = await manager.aresume_run(
            job, f"{task_id}#{len(job.runs)}", decisions, named=False, gone=_gone
        )
        if isinstance(run, Response):  # pragma: no cover - a durable job's only (not served)
            raise _RPCError(Code.UNSUPPORTED_OPERATION, "The task was answered meanwhile.")
        encoder.client_messages.append(
            {**sent, "taskId": task_id, "contextId": encoder.fold.context_id}
        )
        return job

    async def _aget(
        self,
        rpc_id: str | int | None,
        params: Mapping[str, object],
        owner: str | None,
        _: Request,
    ) -> Response:
        request = _parsed(params, GetTaskRequest())
        job = self._job(request.id, owner)
        history = request.history_length if request.HasField("history_length") else None
        return _result(rpc_id, self._task(job, history))

    async def _acancel(
        self,
        rpc_id: str | int | None,
        params: Mapping[str, object],
        owner: str | None,
        _: Request,
    ) -> Response:
        request = _parsed(params, CancelTaskRequest())
        job = self._unended_job(
            request.id, owner, Code.TASK_NOT_CANCELABLE, ": there is nothing left to cancel."
        )
        job.cancel()
        if job.task is not None:
            await asyncio.wait([job.task])
        return _result(rpc_id, self._task(job))

    async def _asubscribe(
        self,
        rpc_id: str | int | None,
        params: Mapping[str, object],
        owner: str | None,
        _: Request,
    ) -> Response:
        request = _parsed(params, SubscribeToTaskRequest())
        job = self._unended_job(
            request.id,
            owner,
            Code.UNSUPPORTED_OPERATION,
            ", so there is nothing to follow: GetTask gives it whole.",
        )
        return self._stream(rpc_id, job)

    # -- tasks ----------------------------------------------------------------------------

    def _unended_job(self, task_id: str, owner: str | None, code: int, why: str) -> Job:
        """The task's job, unless it has ended: then an error of ``code``, ended by ``why``."""
        job = self._job(task_id, owner)
        if job.done:
            status = self._task(job)["status"]
            state = status.get("state") if isinstance(status, dict) else status
            raise _RPCError(code, f"The task {task_id!r} has ended ({state}){why}")
        return job

    def _job(self, task_id: str, owner: str | None) -> Job:
        if not task_id:
            raise _RPCError(Code.INVALID_PARAMS, "The request names no task (its id is empty).")
        job = self.manager.job(task_id, owner)
        if job is None:  # (another principal's is not found either)
            raise _RPCError(
                Code.TASK_NOT_FOUND,
                f"There is no task {task_id!r}: it never started here, or it ended more than "
                f"{self.manager.settings.keep_runs_for:g} seconds ago (or before the latest "
                f"{self.manager.settings.max_ended_runs} tasks that ended, max_ended_runs) "
                "and was forgotten.",
            )
        return job

    def _task(self, job: Job, history_length: int | None = None) -> dict[str, object]:
        encoder = _encoder(job)
        task = encoder.task(_events(job), history_length)
        if encoder.fold.state in PAUSED_STATES and not job.paused and not job.done:
            task["status"] = {"state": WORKING, "timestamp": now()}  # (answered: it goes on)
        return task

    def _stream(self, rpc_id: str | int | None, job: Job) -> Response:
        """The task as it is now, then its events as they come (to its end, or its pause)."""

        def snapshot() -> str:
            return json_text({"task": self._task(job)}, compact=True)

        return follow_from_now(job, snapshot, _framer(rpc_id))


def _encoder(job: Job) -> A2AEncoder:
    encoder = job.encoder
    assert isinstance(encoder, A2AEncoder)  # (made by A2AProtocol)
    return encoder


def _events(job: Job) -> list[list[str]]:
    return [run.events for run in job.runs]


def _parsed(params: Mapping[str, object], into: ProtoT) -> ProtoT:
    """``params`` read into the protocol's request message (its unknown fields ignored)."""
    try:
        return ParseDict(dict(params), into, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError) as error:
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"The params are not an A2A {into.DESCRIPTOR.name}: {error}",
        ) from None


def _input_messages(sent: Mapping[str, object]) -> list[Message]:
    """The agent's input of the client's message: a message per text or data part."""
    inputs: list[Message] = []
    parts = sent.get("parts")
    for place, part in enumerate(parts if isinstance(parts, list) else []):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            inputs.append(UserMessage(text=part["text"]))
        elif isinstance(part, dict) and "data" in part:
            inputs.append(UserMessage(text=json.dumps(part["data"], ensure_ascii=False)))
        else:
            raise _RPCError(
                Code.CONTENT_TYPE_NOT_SUPPORTED,
                f"params.message.parts[{place}] is a file (raw bytes or a URL), which this agent "
                "does not take: send text and data parts.",
            )
    return inputs


def _decisions(
    sent: Mapping[str, object], job: Job, *, edits: bool
) -> list[tuple[ToolApprovalRequest, ApprovalDecision]]:
    """The decisions the message's data parts give, each checked before any is decided."""
    decisions: list[tuple[ToolApprovalRequest, ApprovalDecision]] = []
    parts = sent.get("parts")
    for place, part in enumerate(parts if isinstance(parts, list) else []):
        data = part.get("data") if isinstance(part, dict) else None
        if not isinstance(data, dict) or "toolCallId" not in data:
            continue
        where = f"params.message.parts[{place}].data"
        call_id = data["toolCallId"]
        asked = job.asked(call_id) if isinstance(call_id, str) else None
        if asked is None:
            waiting = [request.call_id for request in job.waiting()]
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"{where}: the task asked for no approval of a call {call_id!r}; it waits for "
                f"{waiting}.",
            )
        if not asked.pending or any(asked is earlier for earlier, _ in decisions):
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"{where}: the call {call_id!r} of {asked.tool_name} does not wait for a "
                "decision any more; a call is decided once.",
            )
        fields = {key: value for key, value in data.items() if key != "toolCallId"}
        try:
            decision = ApprovalDecision.model_validate(fields)
        except ValidationError as error:
            raise _RPCError(
                Code.INVALID_PARAMS,
                f'{where} is not a decision ({{"toolCallId": ..., "approved": true or false, '
                f'"arguments"?: {{...}}, "reason"?: "..."}}): {error.errors()[0]["msg"]}.',
            ) from None
        if decision.approved and decision.arguments is not None:
            if not edits:
                raise _RPCError(
                    Code.INVALID_PARAMS,
                    f"{where}.arguments: this agent takes no edited arguments (its app was made "
                    "with approval_edits=False): approve the call as the model made it, or "
                    "deny it.",
                )
            try:
                asked.check_arguments(decision.arguments)
            except ToolApprovalError as error:
                raise _RPCError(
                    Code.INVALID_PARAMS, f"{where}.arguments: {error}", list(error.problems)
                ) from None
        decisions.append((asked, decision))
    if not decisions:
        waiting = [request.call_id for request in job.waiting()]
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"The task waits for the decisions of the calls {waiting}: answer with a data part "
            '{"toolCallId": ..., "approved": true or false, "arguments"?: {...}, '
            '"reason"?: "..."} per call.',
        )
    return decisions


def _gone() -> Response:  # pragma: no cover - a durable job's only (not served over A2A)
    return _error(None, Code.UNSUPPORTED_OPERATION, "The task was answered meanwhile.")


def _unserved(method: str) -> tuple[int, str]:
    """The error code and message of a method this app does not serve."""
    if method in _PUSH_METHODS:
        return Code.PUSH_NOT_SUPPORTED, "This agent sends no push notifications."
    if method == "GetExtendedAgentCard":
        return (
            Code.EXTENDED_CARD_NOT_CONFIGURED,
            "This agent has no extended card: its card is at /.well-known/agent-card.json.",
        )
    if method == "ListTasks":
        return Code.UNSUPPORTED_OPERATION, "This agent does not list tasks: get each by its id."
    hint = ""
    if method in _OLD_METHODS:
        hint = " (a method of A2A 0.3: this agent speaks 1.0, e.g. SendStreamingMessage)"
    return (
        Code.METHOD_NOT_FOUND,
        f"There is no method {method!r}{hint}; the methods are SendMessage, "
        "SendStreamingMessage, GetTask, CancelTask and SubscribeToTask.",
    )


def _framer(rpc_id: str | int | None) -> Callable[[str], str]:
    """Wraps an event's JSON (a result) in the JSON-RPC response to the request ``rpc_id``."""
    head = f'{{"jsonrpc":"2.0","id":{json.dumps(rpc_id)},"result":'
    return lambda data: f"{head}{data}}}"


def _result(rpc_id: str | int | None, result: object) -> Response:
    body = json_text({"jsonrpc": "2.0", "id": rpc_id, "result": result}, compact=True)
    return Response(body, media_type="application/json")


def _error(
    rpc_id: str | int | None, code: int, message: str, data: object = None, status: int = 200
) -> JSONResponse:
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "error": error}, status_code=status)


def _busy(rpc_id: str | int | None, refused: NoRoom) -> Response:
    response = _error(rpc_id, _SERVER_BUSY, refused.message, status=refused.status)
    response.headers["Retry-After"] = "1"
    return response
