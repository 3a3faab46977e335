"""``a2a_app``: any agent served over A2A (the Agent2Agent protocol, version 1.0, JSON-RPC).

This module is the protocol's requests: the agent card, and the JSON-RPC methods that start,
stream, get, cancel and follow tasks again, each read within bounds and answered with A2A's
own error codes. A task is a job of the web layer's run manager
(:mod:`miniagents.ext.web.lowlevel`): its runs, their owners, limits, approvals and pauses
are the manager's, who asks and what a browser may do is the door's, and how its reply
becomes events is :mod:`miniagents.ext.a2a._encoding`'s.

Why not the a2a-sdk's own server layer (its JSON-RPC dispatcher, request handler and task
store): the package uses the SDK's types, error reasons and client, but that layer would
keep a second copy of each task, beside the run manager's owners, limits, approvals, pauses
and forgetting, and re-encode each logged event for each follower (thousands of times the
cost of framing it here: ``tests/benchmarks/a2a_framing.py``), with no event ids to resume
a stream by, no bound on the body it reads, and notifications answered (docs/a2a.md, "Why
its own JSON-RPC layer").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import math
import secrets
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Literal, TypeAlias, TypeVar, get_args

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    HTTPAuthSecurityScheme,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Role,
    SecurityRequirement,
    SecurityScheme,
    SendMessageConfiguration,
    SendMessageRequest,
    StringList,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message as ProtoMessage
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from miniagents.arguments import check_count, refused_argument
from miniagents.ext.a2a._encoding import A2A_HEADERS, A2AEncoder, A2AProtocol, now
from miniagents.ext.a2a._parts import input_messages
from miniagents.ext.a2a._rpc import (
    NOTIFIED,
    JSONRPCRefusals,
    RPCId,
    error_answer,
    error_response,
    framer,
    result,
)
from miniagents.ext.a2a._webhooks import Poster, Webhook, webhook_of
from miniagents.ext.a2a._wire import (
    CANCELED,
    COMPLETED,
    FINAL_STATES,
    PAUSED_STATES,
    WORKING,
    Code,
    _RPCError,
)
from miniagents.ext.a2a.errors import A2AConfigurationError
from miniagents.ext.a2a.push import A2APushNotifications
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
    body_seconds_of,
    follow_from_now,
    follow_to_end,
    json_text,
    loads_json,
    protocol_app,
    told_error,
)
from miniagents.ext.web.settings import DEFAULT_MAX_BODY_VALUES, WebSettings
from miniagents.ext.web.settings import DEFAULT_MAX_ID_CHARS as _SETTINGS_MAX_ID_CHARS
from miniagents.frozen.nesting import holds_over
from miniagents.messages.message import Message
from miniagents.miniagents.agent import MiniAgent
from miniagents.miniagents.context import MiniAgents
from miniagents.reexports import FORMER_HOMES_GO_AFTER

__all__ = [
    "CARD_MAX_AGE",
    "CARD_PATH",
    "DEFAULT_INPUT_MODES",
    "DEFAULT_MAX_ID_CHARS",
    "DEFAULT_MAX_REQUEST_VALUES",
    "DEFAULT_PAGE_SIZE",
    "MAX_ID_CHARS",
    "MAX_PAGE_SIZE",
    "MAX_REQUEST_VALUES",
    "A2ASkill",
    "AnswerAs",
    "a2a_app",
]

CARD_PATH = "/.well-known/agent-card.json"
"""Where the agent card is served (relative to where the app is mounted)."""

DEFAULT_PAGE_SIZE = 50
"""The tasks of a ``ListTasks`` page when the request says no ``pageSize``."""

MAX_PAGE_SIZE = 100
"""The most tasks a ``ListTasks`` page holds (a request for more is refused, -32602)."""

DEFAULT_MAX_REQUEST_VALUES = DEFAULT_MAX_BODY_VALUES
"""The most JSON values a request's params hold by default: ``WebSettings.max_body_values``'s
default (its former name, of ``a2a_app``'s deprecated ``max_request_values``)."""

DEFAULT_MAX_ID_CHARS = _SETTINGS_MAX_ID_CHARS
"""The most characters an id a client chooses may hold unless ``WebSettings(max_id_chars=...)``
says another: the settings' default (a message's ``contextId`` and ``messageId``, a webhook's
``id``; a longer one is refused, -32602): the app keeps each id, and lists, posts and logs
it, so that only the body's limit bounded it before."""

MAX_REQUEST_VALUES = DEFAULT_MAX_REQUEST_VALUES
"""The former name of :data:`DEFAULT_MAX_REQUEST_VALUES` (kept for the code that reads it)."""

MAX_ID_CHARS = DEFAULT_MAX_ID_CHARS
"""The former name of :data:`DEFAULT_MAX_ID_CHARS` (kept for the code that reads it)."""

CARD_MAX_AGE = 300
"""Seconds a client may keep the agent card before it asks again (its ``Cache-Control``)."""

PROTOCOL_VERSION = "1.0"
"""The version of A2A the app speaks (its card says so, and the ``A2A-Version`` it takes)."""

DEFAULT_INPUT_MODES = ("text/plain", "application/json")
"""The media types of the parts an agent takes by default: texts and data (not files)."""

_OUTPUT_MODES = ["text/plain", "application/json", "*/*"]  # (texts, data, and any file)

AnswerAs: TypeAlias = Literal["task", "message"]
"""How the app answers a new message: with a task, or (an agent that answers at once) one
message, with no task to follow."""
_ANSWERS_AS: tuple[AnswerAs, ...] = get_args(AnswerAs)
_MAX_HEADER_CHARS = 8_192
"""The most characters a webhook's token, scheme or credentials hold: each is a header of
every post, and the task keeps them (servers refuse a longer header line)."""
_CANCEL_WAIT = 5.0
"""Seconds ``CancelTask`` waits for its task to end before it answers with the task as it
stands (an agent may catch its cancellation and go on): the time a stream has to send its
run's ending as its server stops."""
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

ProtoT = TypeVar("ProtoT", bound=ProtoMessage)

_logger = logging.getLogger("miniagents.ext.a2a")


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
    input_modes: Sequence[str] = DEFAULT_INPUT_MODES,
    answer_as: AnswerAs | Callable[[SendMessageRequest], AnswerAs] = "task",
    push_notifications: A2APushNotifications | None = None,
    context: Callable[[], MiniAgents] = MiniAgents,
    authentication: Authentication | None = None,
    settings: WebSettings = WebSettings(),
    max_request_values: int | None = None,
    max_id_chars: int | None = None,
) -> Starlette:
    """An ASGI app that serves ``agent`` over A2A: its card, and its tasks over JSON-RPC.

    Routes (relative to where the app is mounted):

    - ``GET /.well-known/agent-card.json``: the agent card (its name, description, skills,
      the JSON-RPC interface at the app's URL, ``capabilities.streaming``, the media types
      it takes); served to anyone, cached by clients for :data:`CARD_MAX_AGE` seconds
      (``ETag``, ``Last-Modified``; a 304 for a client that has it), and saying the bearer
      scheme when the app is made with a ``BearerTokenAuth``.
    - ``POST /``: JSON-RPC 2.0, A2A 1.0's methods: ``SendMessage`` (a new task, or the
      answer to a task that asks for input; the result is the task once it has ended or
      paused, or at once with ``configuration.returnImmediately``), ``SendStreamingMessage``
      (the same, streamed over SSE: the task first, then each event as it is made),
      ``GetTask``, ``ListTasks`` (the caller's tasks, the most recently updated first, a
      page at a time), ``CancelTask`` and ``SubscribeToTask`` (the task as it is now, then
      its events as they come, to its end: a client whose stream broke loses nothing), and,
      with ``push_notifications=``, the four methods of a task's webhooks (``Create``,
      ``Get``, ``List`` and ``DeleteTaskPushNotificationConfig``). The extended card is
      not served (its error says so). A notification (a request without an ``id``) is
      carried out and never answered (HTTP 204), as JSON-RPC 2.0 says.

    **The reply, live.** Each message of the agent's reply is an artifact that streams
    token by token as the agent produces it: texts, tool calls (the arguments' JSON as the
    model writes it) and tools' results (a sub-agent's reply as it is produced), each
    saying what it is in its metadata (see :mod:`miniagents.ext.a2a._wire`), so nested
    streams are not flattened into one text. An ``A2AFile`` is a file part (its bytes or
    URL), an ``A2AData`` a data part, a message's images file parts after its text. The
    task completes with the reply (its usage, when it called a model: every call it
    caused, the agents it called as tools included), fails
    with the agent's error (its message and class), is rejected (the agent raised
    ``A2ATaskRejectedError``), or is cancelled. With ``answer_as="message"`` (or a
    function of the request that says so), a reply that completes is answered as one
    message of its parts, with no task (a direct answer); one that fails or asks is
    answered as its task.

    **Questions.** An agent that asks its caller (an ``InputRequest`` in its reply, see
    :mod:`miniagents.ext.input_requests`) makes the task ``TASK_STATE_INPUT_REQUIRED``
    (an ``AuthRequest``: ``TASK_STATE_AUTH_REQUIRED``), the question its status message;
    the stream ends and the agent waits. The next message to the task (``taskId``) is the
    answer (its parts are the agent's answer messages), and the task goes on in that
    request's response.

    **Approvals.** A call of a tool made with ``requires_approval=`` makes the task
    ``TASK_STATE_INPUT_REQUIRED`` where the reply can go no further: its status message
    asks for each call that waits (a data part ``{"toolApprovalRequest": {...}}`` each),
    the stream ends, and the agent waits (no LLM call open). The next message to the task
    (``taskId``) decides them, a data part ``{"toolCallId": ..., "approved": true or
    false, "arguments"?: {...}, "reason"?: "..."}`` per call, and the task goes on in that
    request's response (``"arguments"`` only if the settings say ``approval_edits=True``). A
    task nobody answers within the settings' ``keep_runs_for`` is cancelled.

    **Push notifications.** With ``push_notifications=A2APushNotifications(allowed_urls=
    [...])`` (see :mod:`miniagents.ext.a2a.push`), a client may set webhooks for its
    tasks, under the allowed URLs only, and each change of a task's state is posted to
    them (signed, with a ``signing_secret``); without it the card says
    ``pushNotifications: false`` and the methods answer -32003.

    **Who asks.** With ``authentication=`` (see :mod:`miniagents.ext.web.auth`), a task
    belongs to the principal who started it: to another it is not found (``GetTask``,
    ``CancelTask``, ``SubscribeToTask`` and answers alike), and ``ListTasks`` lists each
    principal's own; a request of nobody known is a 401 that starts nothing
    (``NoAuthentication()``: tasks are nobody's, for local development). The door's
    protections apply (the settings' ``allowed_hosts`` and CORS for their
    ``allowed_origins``, JSON posts only, the security headers), and a request's
    ``traceparent`` continues the caller's trace in the agent's spans (see
    :mod:`miniagents.ext.otel`).

    **Bad input** is answered with A2A's JSON-RPC errors, each with its
    ``google.rpc.ErrorInfo`` (and a ``google.rpc.BadRequest`` naming the fields at fault),
    and starts nothing: a body that is not JSON (-32700; ``NaN`` and ``Infinity`` are not),
    not a request, over ``max_body_bytes`` or of params of over ``max_request_values``
    values (-32600; one not all sent within ``body_seconds`` of the request's
    arrival: -32600 with HTTP 408), an unknown method (-32601), params of the wrong shape
    (-32602; a message's ``contextId`` or ``messageId`` with a control or format character
    too, and an id a client chooses, a webhook's too, of over the settings' ``max_id_chars``
    characters), an unknown task (-32001), a task that can no longer be cancelled (-32002) or
    followed or answered (-32004), a part of a media type the agent does not take, or a
    body not sent as JSON (-32005), another protocol version (-32009). A task over the
    limits is an HTTP 503 (the app's, ``max_live_runs``) or 429 (the principal's), with
    ``Retry-After``, and so is a stream over ``max_streams`` (or
    ``max_streams_per_principal``: ``SendStreamingMessage``'s and ``SubscribeToTask``'s
    alike), which starts or answers nothing (-32000 each). Unless the settings give a
    ``grace_period``, a task goes on once nobody follows its stream (A2A's tasks outlive
    their connections; ``CancelTask`` cancels them).

    Args:
        agent: The agent to serve; each task is one interaction (the message's parts are
            its input messages: a text a ``UserMessage``, data an ``A2AData``, a file an
            ``A2AFile``).
        name: The card's name (default: the agent's alias).
        description: The card's description (default: the agent's, its first paragraph).
        skills: The card's skills (default: one, the agent itself).
        version: The agent's version, in the card.
        url: The app's public URL, in the card (default: the URL each card request came
            to, the app's root).
        arguments: More keyword arguments of the agent for a request (none by default).
        input_modes: The media types of the parts the agent takes (``type/subtype``,
            ``image/*``, ``*/*``), in the card; a part of another is refused (-32005).
            By default texts and data: files are taken once their types are listed.
        answer_as: ``"task"`` (the default): a new message is answered with its task;
            ``"message"``: with one message, if the reply completes; or a function of the
            request that says which.
        push_notifications: Whether (and where, and how) the app posts the changes of its
            tasks to webhooks their clients set (``None``: it does not).
        context: Makes the ``MiniAgents`` context each task runs in.
        authentication: Who asks, required (see :mod:`miniagents.ext.web.auth`): a
            Starlette ``AuthenticationBackend``, ``"request.user"``, or
            ``NoAuthentication()`` for local development.
        settings: The limits (a task is a run: ``keep_runs_for`` keeps an ended task for
            ``GetTask``), hosts, origins, approval edits and error texts (``WebSettings``:
            with ``error_texts=False``, the default, a failed task's status says only the
            error's class and a reference the server's log, ``miniagents.ext.a2a``, has the
            error under; an error the library wrote for the client, a task's rejection or
            cut say, is told as it is either way: ``WebProtocol.told``).
        max_request_values: Deprecated (it goes in the first release after
            :data:`~miniagents.reexports.FORMER_HOMES_GO_AFTER`): given, it warns and stands
            for ``settings.max_body_values``, the most JSON values a request's params hold,
            counted at every depth (a request of more is refused, -32600, before its params
            are read). Give ``WebSettings(max_body_values=...)`` instead.
        max_id_chars: Deprecated (it goes in the first release after
            :data:`~miniagents.reexports.FORMER_HOMES_GO_AFTER`): given, it warns and stands
            for ``settings.max_id_chars``, the most characters an id a client chooses may
            hold (a message's ``contextId`` and ``messageId``, a webhook's ``id``); a longer
            one is refused (-32602; a request's JSON-RPC ``id``, repeated in each event of
            its stream, -32600). Give ``WebSettings(max_id_chars=...)`` instead.

    Raises:
        A2AConfigurationError: if the agent is durable (``miniagents.ext.dbos``: not served
            over A2A yet), a skill has no tag, ``max_request_values`` or ``max_id_chars`` is
            not a whole number of at least 1, or ``answer_as`` is neither ``"task"``,
            ``"message"`` nor a function.
        WebConfigurationError: if ``authentication`` is not given, or ``agent`` is no agent
            (a function not decorated with ``@miniagent``).
    """
    door = Door(authentication, settings, "a2a_app", request_headers=_CORS_HEADERS)
    max_values = _former_bound(
        max_request_values, "max_body_values", settings.max_body_values, "bodies"
    )
    id_chars = _former_bound(max_id_chars, "max_id_chars", settings.max_id_chars, "ids")
    _check_answer_as(answer_as)
    if settings.grace_period is None:  # A2A's tasks outlive their connections
        settings = dataclasses.replace(settings, grace_period=math.inf)
    poster = Poster(push_notifications) if push_notifications is not None else None
    manager = RunManager(
        A2AProtocol(poster),  # (its failures told as the manager's settings say, as they stand)
        agent,
        context=context,
        approval_flow="protocol",
        settings=settings,
        app="a2a_app",
    )
    if manager.durable is not None:
        raise A2AConfigurationError(
            f"The agent {agent.alias} is durable (miniagents.ext.dbos), which a2a_app does not "
            "serve yet: serve the agent it wraps, or serve the durable agent with agui_app or "
            "ai_sdk_app (their runs survive a restart)."
        )
    modes = _checked_modes(input_modes)
    card = _card(agent, name, description, skills, version, door.authentication, modes)
    if poster is not None:
        card["capabilities"] = {**_dict(card.get("capabilities")), "pushNotifications": True}
    tasks = _A2ATasks(
        manager,
        card,
        url,
        arguments,
        modes,
        answer_as,
        poster,
        max_request_values=max_values,
        max_id_chars=id_chars,
    )
    routes = [
        ProtocolRoute(CARD_PATH, tasks.acard, ["GET"], public=True),
        ProtocolRoute("/", tasks.arpc, ["POST"]),
    ]
    app = protocol_app(manager, door, routes)
    app.add_middleware(JSONRPCRefusals)  # (outside the door: its 415, as JSON-RPC)
    if poster is not None:
        _close_at_the_end(app, poster)
    return app


def _former_bound(given: int | None, setting: str, bound: int, what: str) -> int:
    """The bound an ``a2a_app`` parameter gives that is deprecated for the setting ``setting``.

    ``bound`` (the settings') unless the parameter was given (``given``): then ``given``,
    checked, with a ``DeprecationWarning`` that names the setting (``what`` it bounds in
    the other web apps, for the warning). ``max_request_values`` stands for
    ``max_body_values``; ``max_id_chars`` for the setting of its own name.

    Raises:
        A2AConfigurationError: if ``given`` is not a whole number of at least 1.
    """
    if given is None:
        return bound
    name = "max_request_values" if setting == "max_body_values" else setting
    fix = "Pass such a number, or leave it out for its default."
    check_count(given, name, owner="a2a_app", fix=fix, error=A2AConfigurationError)
    warnings.warn(
        f"a2a_app({name}=...) is deprecated and goes in the first release after "
        f"{FORMER_HOMES_GO_AFTER}: give settings=WebSettings({setting}=...), the bound of the "
        f"other web apps' {what}, instead.",
        DeprecationWarning,
        stacklevel=3,  # (a2a_app's caller)
    )
    return given


def _close_at_the_end(app: Starlette, poster: Poster) -> None:
    """Stop ``poster``'s posts when ``app`` stops (after its lifespan stopped its tasks)."""
    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def with_posts(served: Starlette) -> AsyncIterator[None]:
        try:
            async with lifespan(served):
                yield
        finally:
            await poster.aclose()

    app.router.lifespan_context = with_posts


def _dict(value: object) -> dict[str, object]:
    return dict(value) if isinstance(value, Mapping) else {}


def _card(
    agent: MiniAgent[..., Message],
    name: str | None,
    description: str | None,
    skills: Sequence[A2ASkill] | None,
    version: str,
    authentication: Authentication,
    input_modes: Sequence[str],
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
        default_input_modes=list(input_modes),
        default_output_modes=_OUTPUT_MODES,
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


@dataclass(frozen=True)
class _Call:
    """One JSON-RPC request to a method: its id, params, and who asks.

    ``notified``: the request is a notification (no ``id``): carried out, never answered.
    """

    rpc_id: RPCId
    params: Mapping[str, object]
    owner: str | None
    notified: bool = False


_Method = Callable[[_Call], Awaitable[Response]]

_EFFECTS = frozenset(
    {
        "SendMessage",
        "SendStreamingMessage",
        "CancelTask",
        "CreateTaskPushNotificationConfig",
        "DeleteTaskPushNotificationConfig",
    }
)
"""The methods a notification carries out (the others only read: nobody would hear them)."""


@dataclass(eq=False)
class _A2ATasks:
    """The A2A requests of one app, over its run manager."""

    manager: RunManager
    card: dict[str, object]
    url: str | None
    arguments: Callable[[SendMessageRequest], Mapping[str, object]] | None
    input_modes: Sequence[str]
    answer_as: AnswerAs | Callable[[SendMessageRequest], AnswerAs]
    poster: Poster | None
    max_request_values: int
    max_id_chars: int

    def __post_init__(self) -> None:
        self.methods: dict[str, _Method] = {
            "SendMessage": self._asend,
            "SendStreamingMessage": self._asend_streaming,
            "GetTask": self._aget,
            "ListTasks": self._alist,
            "CancelTask": self._acancel,
            "SubscribeToTask": self._asubscribe,
        }
        if self.poster is not None:
            self.methods |= {
                "CreateTaskPushNotificationConfig": self._acreate_webhook,
                "GetTaskPushNotificationConfig": self._aget_webhook,
                "ListTaskPushNotificationConfigs": self._alist_webhooks,
                "DeleteTaskPushNotificationConfig": self._adelete_webhook,
            }
        self._card_tag = _tag(self.card)  # (its ETag's: the card, its URL aside)
        self._card_modified = formatdate(usegmt=True)  # (the app's start: its Last-Modified)
        self._page_secret = secrets.token_bytes(32)  # (signs ListTasks' page tokens)

    async def acard(self, request: Request, owner: str | None) -> Response:
        """``GET /.well-known/agent-card.json``: the card, with the app's URL in it.

        Cached by clients for :data:`CARD_MAX_AGE` seconds (``Cache-Control``), with an
        ``ETag`` of its content (its URL included) and the app's start as its
        ``Last-Modified``; a request whose ``If-None-Match`` names the ETag is a 304.
        """
        root = request.scope.get("root_path", "")  # (a mounted app's mount: its URL's path)
        url = self.url or str(request.url.replace(path=f"{root}/", query="", fragment=""))
        tag = f'"{self._card_tag}-{_tag(url)}"'
        headers = {
            "Cache-Control": f"public, max-age={CARD_MAX_AGE}",
            "ETag": tag,
            "Last-Modified": self._card_modified,
        }
        asked = request.headers.get("if-none-match", "")
        if tag in (found.strip() for found in asked.split(",")) or asked.strip() == "*":
            return Response(status_code=304, headers=headers)
        interfaces = [{**self._interface(), "url": url}]
        return JSONResponse({**self.card, "supportedInterfaces": interfaces}, headers=headers)

    def _interface(self) -> dict[str, object]:
        found = self.card.get("supportedInterfaces")
        assert isinstance(found, list)  # (made so by _card)
        interface = found[0]
        assert isinstance(interface, dict)
        return interface

    async def arpc(self, request: Request, owner: str | None) -> Response:
        """``POST /``: one JSON-RPC request, read within bounds and answered by its method.

        A notification (no ``id``) is carried out if its method changes something
        (:data:`_EFFECTS`), and answered with nothing (HTTP 204), its errors too.
        """
        settings = self.manager.settings
        limit = settings.max_body_bytes
        try:
            body = await aread_bounded(request, limit)
        except HTTPException as late:  # (its id unread: null, as a body that is no JSON's)
            return error_response(
                None,
                Code.INVALID_REQUEST,
                late.detail,
                metadata={"bodySeconds": f"{body_seconds_of(request.scope):g}"},  # (as said)
                status=late.status_code,
            )
        if body is None:
            return error_response(
                None,
                Code.INVALID_REQUEST,
                f"The request body is over the limit of {limit} bytes; send a "
                "shorter message (or make the app with a higher max_body_bytes).",
                metadata={"maxBodyBytes": str(limit)},
            )
        try:
            parsed = loads_json(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            return error_response(
                None, Code.PARSE_ERROR, f"The request body is not JSON ({reason})."
            )
        if not isinstance(parsed, dict):
            what = "a batch (a list)" if isinstance(parsed, list) else "no JSON-RPC object"
            return error_response(
                None,
                Code.INVALID_REQUEST,
                f"The request is {what}: send one JSON-RPC 2.0 request object (batches are "
                "not served).",
            )
        rpc_id = _request_id(parsed, self.max_id_chars)
        if isinstance(rpc_id, Response):
            return rpc_id
        method = parsed.get("method")
        if parsed.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return error_response(
                rpc_id,
                Code.INVALID_REQUEST,
                'The request is not JSON-RPC 2.0: it needs "jsonrpc": "2.0" and a "method" '
                "(a string).",
            )
        call = _Call(rpc_id, {}, owner, notified="id" not in parsed)
        try:
            params = parsed.get("params", {})
            if not isinstance(params, dict):
                raise _RPCError(Code.INVALID_PARAMS, "The request's params are not an object.")
            most = self.max_request_values
            if holds_over(params, most):  # (before protobuf reads them)
                raise _RPCError(
                    Code.INVALID_REQUEST,
                    f"The request's params hold over {most} JSON values (its "
                    "parts, and the objects, lists, strings and numbers in them), the most "
                    "this agent reads (its max_body_values): send fewer parts, or a long list as "
                    "one text or file part.",
                    metadata={"maxRequestValues": str(most)},
                )
            self._check_version(request)
            handler = self.methods.get(method)
            if handler is None:
                raise _unserved(method)
            if call.notified and method not in _EFFECTS:
                return Response(status_code=NOTIFIED)
            response = await handler(_Call(rpc_id, params, owner, call.notified))
        except _RPCError as error:
            if call.notified:
                _logger.debug("A notification of %s failed: %s", method, error.message)
                return Response(status_code=NOTIFIED)
            return error_answer(error, rpc_id)
        return Response(status_code=NOTIFIED) if call.notified else response

    def _check_version(self, request: Request) -> None:
        version = request.headers.get("a2a-version", "").strip()
        if version and version.split(".")[:2] != PROTOCOL_VERSION.split("."):
            raise _RPCError(
                Code.VERSION_NOT_SUPPORTED,
                f"This agent speaks A2A {PROTOCOL_VERSION}, not {version!r}; send "
                f"A2A-Version: {PROTOCOL_VERSION} (or none).",
                metadata={"version": version, "supported": PROTOCOL_VERSION},
            )

    # -- the methods ----------------------------------------------------------------------

    async def _asend(self, call: _Call) -> Response:
        return await self._amessage(call, streaming=False)

    async def _asend_streaming(self, call: _Call) -> Response:
        return await self._amessage(call, streaming=True)

    async def _amessage(self, call: _Call, *, streaming: bool) -> Response:
        request = _parsed(call.params, SendMessageRequest())
        message = request.message
        if not message.parts:
            raise _RPCError(
                Code.INVALID_PARAMS,
                "params.message has no parts: send at least one.",
                violations=[("message.parts", "at least one part is needed")],
            )
        if message.role not in (Role.ROLE_USER, Role.ROLE_UNSPECIFIED):  # (unset: a user's)
            said = (
                "is the agent's (ROLE_AGENT)"
                if message.role == Role.ROLE_AGENT
                else f"has the role {message.role}, which A2A does not define"
            )
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"params.message {said}: send ROLE_USER.",
                violations=[("message.role", "a client's message is ROLE_USER")],
            )
        for field, value in (("contextId", message.context_id), ("messageId", message.message_id)):
            _check_id(value, f"message.{field}", self.max_id_chars)
        sent = MessageToDict(message)
        configuration = request.configuration
        history = _history_length(configuration, "configuration.historyLength")
        pushed = None
        if configuration.HasField("task_push_notification_config"):
            given = MessageToDict(configuration.task_push_notification_config)
            pushed = self._webhook(given, "configuration.taskPushNotificationConfig.")
        # (a stream's slot is taken as it is checked, before any task starts, and handed to
        # the stream: no task is started, nor answered, that its stream is refused later)
        streams, owner = self.manager.streams, call.owner
        slot = streaming and not call.notified
        if slot and (refused := streams.take(owner, self.manager.settings)) is not None:
            return _busy(call.rpc_id, refused)
        streamed: Response | None = None
        try:
            answered = await self._areply(
                call, request, sent, pushed, streaming=streaming, history=history
            )
            if isinstance(answered, Response):
                return answered
            streamed = self._stream(call.rpc_id, answered, slot_held=slot)
            return streamed
        finally:
            if slot and streamed is None:
                streams.free(owner)  # (no stream took it over: was kept if its snapshot raised)

    async def _areply(
        self,
        call: _Call,
        request: SendMessageRequest,
        sent: dict[str, object],
        pushed: Callable[[str], Webhook] | None,
        *,
        streaming: bool,
        history: int | None,
    ) -> Response | Job:
        """The answer of the checked message ``sent``, or its task's job to stream."""
        message, configuration = request.message, request.configuration
        as_message = False
        if message.task_id:
            webhook = None if pushed is None else pushed(message.task_id)
            if webhook is not None:  # (its bound checked before anything is answered)
                self._webhook_room(
                    self._job(message.task_id, call.owner, "message.taskId"), webhook
                )
            job = await self._aanswered(message.task_id, message.context_id, sent, call.owner)
            if webhook is not None:  # (before the task goes on: it hears what the answer makes)
                self._set_webhook(job, webhook)
        else:
            # (chosen before the task starts: an answer_as that returns neither value is
            # refused with no task started)
            as_message = not call.notified and self._as_message(request)
            started = await self._astarted(request, sent, call.owner)
            if isinstance(started, NoRoom):
                return _busy(call.rpc_id, started)
            job = started
            if pushed is not None:  # (before the task's first event: it hears them all)
                self._set_webhook(job, pushed(job.key))
        if call.notified:
            return Response(status_code=NOTIFIED)
        if as_message:
            await job.asettled()
            answer = self._answer(job)
            if answer is not None:  # (else it failed, or asks: the task says so)
                return _one_event(call.rpc_id, answer) if streaming else result(call.rpc_id, answer)
        if streaming:
            return job
        if not configuration.return_immediately:
            await job.asettled()
        return result(call.rpc_id, {"task": self._task(job, history)})

    def _as_message(self, request: SendMessageRequest) -> bool:
        """Whether the app answers ``request`` (a new task's) with one message.

        Raises:
            _RPCError: the internal error (-32603), logged with its fix, if the app's
                ``answer_as`` function returns neither ``"task"`` nor ``"message"`` (was:
                taken as ``"task"``); and, logged with its traceback under a reference
                its client is told, if the function raises (was: Starlette's plain-text
                500).
        """
        answer_as = self.answer_as
        if not callable(answer_as):
            return answer_as == "message"
        try:
            returned: object = answer_as(request)  # (typed; untyped code may return anything)
        except Exception as error:
            raise self._app_function_failed("answer_as", error) from error
        chosen = _answer_as_value(returned)
        if chosen is None:
            shown = repr(returned)[:80]
            _logger.error(
                "The answer_as function of a2a_app returned %s, neither 'task' nor 'message'; "
                "the request was refused (-32603) and no task started. Make it return "
                "'task' or 'message'.",
                shown,
            )
            raise _RPCError(
                Code.INTERNAL,
                "The agent's server could not choose how to answer (its answer_as returned "
                f"{shown}, neither 'task' nor 'message'); no task started. Its operator "
                "must fix it; try again later.",
            )
        return chosen == "message"

    def _app_function_failed(self, function: str, error: Exception) -> _RPCError:
        """The internal error (-32603) of the app's ``function`` (``"answer_as"``) that raised.

        ``error`` is logged whole, with its traceback, under a new reference, which the
        client is told with the error's class (its text, with ``error_texts``), as a
        task's failure is told: the app's own bug, not the request's.
        """
        told = told_error(
            error,
            _logger,
            f"The {function} function of a2a_app",
            error_texts=self.manager.settings.error_texts,
            who=f"The agent's server's {function} function",
        )
        return _RPCError(
            Code.INTERNAL,
            f"{told.text} No task started.",
            metadata={"errorReference": told.reference},
        )

    def _answer(self, job: Job) -> dict[str, object] | None:
        """The completed ``job``'s reply as one message (a ``StreamResponse``), or ``None``.

        A job answered so is no task to its client: ``GetTask`` and ``ListTasks`` do not
        find it.
        """
        encoder = _encoder(job)
        fold = encoder.fold
        fold.catch_up(_events(job))
        if fold.state != COMPLETED:
            return None
        encoder.answered = True
        message = {
            "messageId": str(uuid.uuid4()),
            "contextId": fold.context_id,
            "role": "ROLE_AGENT",
            "parts": fold.answer_parts(),
        }
        return {"message": message}

    async def _astarted(
        self, request: SendMessageRequest, sent: dict[str, object], owner: str | None
    ) -> Job | NoRoom:
        """A new task of the message (its input messages checked first), or why there is no room."""
        inputs = input_messages(sent.get("parts"), self.input_modes, request.message.message_id)
        manager = self.manager
        task_id = str(uuid.uuid4())
        context_id = request.message.context_id or str(uuid.uuid4())
        refused = await manager.ano_room(owner, task_id, task_id)
        if refused is not None:
            return refused
        try:  # (was: an exception of the app's function, Starlette's plain-text 500)
            kwargs = dict(self.arguments(request)) if self.arguments is not None else {}
        except Exception as error:
            raise self._app_function_failed("arguments", error) from error
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
        job = self._job(task_id, owner, "message.taskId")
        encoder = _encoder(job)
        if context_id and context_id != encoder.fold.context_id:
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"The message's contextId {context_id!r} is not the context of the task "
                f"{task_id!r}; send the task's ({encoder.fold.context_id!r}), or none.",
                violations=[("message.contextId", "not the context of the task")],
            )
        if manager.paused(task_id, owner) is not job or job.cancelling:
            state = encoder.task(_events(job))["status"]
            said = state.get("state") if isinstance(state, dict) else None
            if job.cancelling:  # (CancelTask, or its wait expired: it ends cancelled)
                said = CANCELED
            if job.done or said in FINAL_STATES:
                raise _RPCError(
                    Code.UNSUPPORTED_OPERATION,
                    f"The task {task_id!r} has ended ({said}): it takes no more messages. Send "
                    "a new message without taskId to start a new task.",
                    metadata={"taskId": task_id, "state": str(said)},
                )
            raise _RPCError(
                Code.UNSUPPORTED_OPERATION,
                f"The task {task_id!r} is working: it takes a message only while it asks for "
                "input (TASK_STATE_INPUT_REQUIRED). Follow it with SubscribeToTask.",
                metadata={"taskId": task_id, "state": WORKING},
            )
        held = _check_room(job, encoder, sent, manager.settings.max_live_run_bytes)
        run_key = f"{task_id}#{len(job.runs)}"
        # (the turn is taken once the message is read: the time the task works again from,
        # and the message's bytes it holds, are set then, before its run goes on, so that
        # a message refused leaves the task as it was)
        if job.question is not None:  # (the agent asked its caller: this is the answer)
            answer = input_messages(
                sent.get("parts"), self.input_modes, _str(sent.get("messageId"))
            )
            encoder.resumed_at, job.held_bytes = now(), held
            manager.answer(job, run_key, answer)
        else:
            decisions = _decisions(sent, job, edits=manager.settings.approval_edits)
            encoder.resumed_at, job.held_bytes = now(), held
            run = await manager.aresume_run(job, run_key, decisions, named=False, gone=_gone)
            if isinstance(run, Response):  # pragma: no cover - a durable job's (not served)
                raise _RPCError(Code.UNSUPPORTED_OPERATION, "The task was answered meanwhile.")
        encoder.client_messages.append(
            {**sent, "taskId": task_id, "contextId": encoder.fold.context_id}
        )
        return job

    async def _aget(self, call: _Call) -> Response:
        request = _parsed(call.params, GetTaskRequest())
        history = _history_length(request, "historyLength")
        job = self._job(request.id, call.owner, "id")
        return result(call.rpc_id, self._task(job, history))

    async def _alist(self, call: _Call) -> Response:
        """``ListTasks``: the caller's tasks, the most recently updated first, a page at a time.

        A page ends where its last task is; its ``nextPageToken`` names that place (in the
        order, not an offset), so tasks that start or end between two pages neither repeat
        nor push others off; it is signed for its caller (a key made as the app starts), so
        a token made up or another caller's is refused (-32602). Filters: ``contextId``,
        ``status``, ``statusTimestampAfter``.
        """
        request = _parsed(call.params, ListTasksRequest())
        size = request.page_size if request.HasField("page_size") else DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"params.pageSize is {size}: ask for 1 to {MAX_PAGE_SIZE} tasks a page.",
                violations=[("pageSize", f"from 1 to {MAX_PAGE_SIZE}")],
            )
        history = _history_length(request, "historyLength")
        after = _after(self._page_secret, call.owner, request.page_token)
        since = (
            request.status_timestamp_after.ToDatetime(UTC)
            if request.HasField("status_timestamp_after")
            else None
        )
        try:
            state = TaskState.Name(request.status) if request.status else None
        except ValueError:  # (a number that names no state: protobuf's JSON takes it)
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"params.status is {request.status}, which is no task state: give one of "
                "TASK_STATE_WORKING, TASK_STATE_COMPLETED, ... (or none: any).",
                violations=[("status", "not a TaskState")],
            ) from None
        found: list[tuple[str, str, Job]] = []
        for job in self.manager.jobs(call.owner):
            if _encoder(job).answered:
                continue  # (answered as a message: no task to its client)
            status = self._status(job)
            stamp = str(status.get("timestamp", ""))
            if request.context_id and _encoder(job).fold.context_id != request.context_id:
                continue
            if state is not None and status.get("state") != state:
                continue
            if since is not None and _moment(stamp) < since:  # (A2A keeps a time equal to it)
                continue
            found.append((stamp, job.key, job))
        found.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        rest = [entry for entry in found if after is None or (entry[0], entry[1]) < after]
        page = rest[:size]
        tasks = []
        for _, _, job in page:
            task = self._task(job, history)
            if not request.include_artifacts:
                task.pop("artifacts", None)
            tasks.append(task)
        following = ""
        if len(rest) > size:
            following = _cursor(self._page_secret, call.owner, page[-1][0], page[-1][1])
        listed = {
            "tasks": tasks,
            "nextPageToken": following,
            "pageSize": size,
            "totalSize": len(found),
        }
        return result(call.rpc_id, listed)

    async def _acancel(self, call: _Call) -> Response:
        """``CancelTask``: cancel the task, and answer with it once it has ended.

        An agent that goes on though cancelled (it catches the cancellation) is waited for
        ``_CANCEL_WAIT`` seconds at most: the task is then answered as it stands.
        """
        request = _parsed(call.params, CancelTaskRequest())
        job = self._unended_job(
            request.id, call.owner, Code.TASK_NOT_CANCELABLE, ": there is nothing left to cancel."
        )
        job.cancel()
        if job.task is not None:
            await asyncio.wait([job.task], timeout=_CANCEL_WAIT)
        return result(call.rpc_id, self._task(job))

    # -- push notifications -----------------------------------------------------------------

    async def _acreate_webhook(self, call: _Call) -> Response:
        """``CreateTaskPushNotificationConfig``: a webhook the task's changes are posted to.

        An ended task takes one too (nothing more is posted for it), and counts its bytes
        among those the ended tasks keep (``max_ended_run_bytes``).
        """
        request = _parsed(call.params, TaskPushNotificationConfig())
        job = self._job(request.task_id, call.owner, "taskId")
        webhook = self._webhook(MessageToDict(request), "")(job.key)
        self._set_webhook(job, webhook)
        return result(call.rpc_id, webhook.json())

    async def _aget_webhook(self, call: _Call) -> Response:
        request = _parsed(call.params, GetTaskPushNotificationConfigRequest())
        job = self._job(request.task_id, call.owner, "taskId")
        _check_id(request.id, "id", self.max_id_chars)  # (likewise)
        webhook = _encoder(job).webhooks.get(request.id)
        if webhook is None:
            raise _RPCError(
                Code.TASK_NOT_FOUND,
                f"The task {request.task_id!r} has no webhook {request.id!r} (push "
                "notification config): ListTaskPushNotificationConfigs lists its own.",
                metadata={"taskId": request.task_id, "configId": request.id},
            )
        return result(call.rpc_id, webhook.json())

    async def _alist_webhooks(self, call: _Call) -> Response:
        request = _parsed(call.params, ListTaskPushNotificationConfigsRequest())
        job = self._job(request.task_id, call.owner, "taskId")
        configs = [webhook.json() for webhook in _encoder(job).webhooks.values()]
        return result(call.rpc_id, {"configs": configs, "nextPageToken": ""})

    async def _adelete_webhook(self, call: _Call) -> Response:
        """``DeleteTaskPushNotificationConfig``: nothing more is posted there (idempotent)."""
        request = _parsed(call.params, DeleteTaskPushNotificationConfigRequest())
        job = self._job(request.task_id, call.owner, "taskId")
        gone = _encoder(job).webhooks.pop(request.id, None)
        if gone is not None:
            self.manager.resize_ended(job, -gone.size)
            if self.poster is not None:
                self.poster.forget(job.key, request.id)
        return result(call.rpc_id, None)

    def _webhook(self, config: Mapping[str, object], where: str) -> Callable[[str], Webhook]:
        """The webhook of a push notification ``config`` (for a task's id), its URL checked.

        Raises:
            _RPCError: if the app sends no push notifications (-32003), or the URL is not
                one it posts to (-32602: see ``A2APushNotifications.allowed_urls``).
        """
        poster = self.poster
        if poster is None:
            raise _unserved("CreateTaskPushNotificationConfig")
        url = config.get("url")
        why = poster.settings.refusal(url) if isinstance(url, str) and url else None
        if not isinstance(url, str) or not url or why is not None:
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"params.{where}url: {why or 'a webhook needs its url'}.",
                violations=[(f"{where}url", why or "missing")],
            )
        authentication = _dict(config.get("authentication"))
        headers = {
            "token": config.get("token"),
            "authentication.scheme": authentication.get("scheme"),
            "authentication.credentials": authentication.get("credentials"),
        }
        for field, value in headers.items():
            if isinstance(value, str) and not (value.isascii() and value.isprintable()):
                raise _RPCError(
                    Code.INVALID_PARAMS,
                    f"params.{where}{field} is not printable ASCII, which an HTTP header of "
                    "each post must be: send it without line breaks, control characters or "
                    "other characters (base64, say).",
                    violations=[(f"{where}{field}", "not printable ASCII")],
                )
            if isinstance(value, str) and len(value) > _MAX_HEADER_CHARS:
                raise _RPCError(
                    Code.INVALID_PARAMS,
                    f"params.{where}{field} holds {len(value)} characters, over the "
                    f"{_MAX_HEADER_CHARS} characters an HTTP header of each post may hold "
                    "(receivers refuse longer ones): send a shorter one.",
                    violations=[(f"{where}{field}", f"over {_MAX_HEADER_CHARS} characters")],
                )
        given = config.get("id")
        if isinstance(given, str):
            _check_id(given, f"{where}id", self.max_id_chars)
        webhook_id = given if isinstance(given, str) and given else str(uuid.uuid4())
        return lambda task_id: webhook_of(config, task_id, webhook_id)

    def _set_webhook(self, job: Job, webhook: Webhook) -> None:
        """Give the task ``webhook`` (one of the same id replaced), within its bound."""
        self._webhook_room(job, webhook)
        webhooks = _encoder(job).webhooks
        replaced = webhooks.get(webhook.id)
        webhook = dataclasses.replace(webhook, owner=job.owner)  # (its posts take its turns)
        webhooks[webhook.id] = webhook
        self.manager.resize_ended(job, webhook.size - (0 if replaced is None else replaced.size))
        if replaced is not None and self.poster is not None:
            self.poster.readdress(webhook)  # (was: its waiting posts went to the old one)

    def _webhook_room(self, job: Job, webhook: Webhook) -> None:
        """Refuse ``webhook`` if the task has no room for it (its bound of webhooks)."""
        webhooks = _encoder(job).webhooks
        assert self.poster is not None  # (a webhook is made only when it posts)
        most = self.poster.settings.max_per_task
        if webhook.id not in webhooks and len(webhooks) >= most:
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"The task {job.key!r} has {most} webhooks, the most it takes: delete one "
                "first (DeleteTaskPushNotificationConfig).",
                metadata={"taskId": job.key, "maxPerTask": str(most)},
            )

    async def _asubscribe(self, call: _Call) -> Response:
        """``SubscribeToTask``: the task now, then its events to its end (across its waits)."""
        request = _parsed(call.params, SubscribeToTaskRequest())
        job = self._unended_job(
            request.id,
            call.owner,
            Code.UNSUPPORTED_OPERATION,
            ", so there is nothing to follow: GetTask gives it whole.",
        )

        streams = self.manager.streams  # (its slot taken as its room is looked at: handed over)
        refused = streams.take(call.owner, self.manager.settings)
        if refused is not None:
            return _busy(call.rpc_id, refused)

        try:
            ending = _encoder(job).fold.ending
            snapshot = functools.partial(self._task_event, job)
            return follow_to_end(job, snapshot, framer(call.rpc_id), ending, slot_held=True)
        except BaseException:
            streams.free(call.owner)  # (no stream took it over)
            raise

    # -- tasks ----------------------------------------------------------------------------

    def _unended_job(self, task_id: str, owner: str | None, code: int, why: str) -> Job:
        """The task's job, unless it has ended: then an error of ``code``, ended by ``why``."""
        job = self._job(task_id, owner, "id")
        if job.done:
            status = self._task(job)["status"]
            state = status.get("state") if isinstance(status, dict) else status
            raise _RPCError(
                code,
                f"The task {task_id!r} has ended ({state}){why}",
                metadata={"taskId": task_id, "state": str(state)},
            )
        return job

    def _job(self, task_id: str, owner: str | None, field: str) -> Job:
        """The job of the task ``task_id`` (the params' ``field``) the caller ``owner`` sees."""
        if not task_id:
            raise _RPCError(
                Code.INVALID_PARAMS,
                "The request names no task (its id is empty).",
                violations=[(field, "a task's id is needed")],
            )
        _check_id(task_id, field, self.max_id_chars)  # (before it is repeated in an error)
        job = self.manager.job(task_id, owner)
        if job is None or _encoder(job).answered:  # (another's, or a message: none either)
            raise _RPCError(
                Code.TASK_NOT_FOUND,
                f"There is no task {task_id!r}: it never started here, or it ended more than "
                f"{self.manager.settings.keep_runs_for:g} seconds ago (or before the latest "
                f"{self.manager.settings.max_ended_runs} tasks that ended, max_ended_runs, "
                "or the ended tasks and runs kept more than max_ended_run_bytes) and was "
                "forgotten.",
                metadata={"taskId": task_id},
            )
        return job

    def _task(self, job: Job, history_length: int | None = None) -> dict[str, object]:
        encoder = _encoder(job)
        task = encoder.task(_events(job), history_length)
        task["status"] = self._status(job)
        return task

    def _status(self, job: Job) -> Mapping[str, object]:
        """The task's status now (its events caught up), at the time it took that status.

        A task answered whose run has not said so yet works since it was answered: each read
        gives that time (was: the time of the read, so that the task moved in ``ListTasks``'
        order at each read, past a client's page token).
        """
        encoder = _encoder(job)
        fold = encoder.fold
        fold.catch_up(_events(job))
        if fold.state in PAUSED_STATES and not job.paused and not job.done:
            return {"state": WORKING, "timestamp": encoder.resumed_at or fold.status["timestamp"]}
        return fold.status

    def _stream(self, rpc_id: RPCId, job: Job, *, slot_held: bool) -> Response:
        """The task as it is now, then its events as they come (to its end, or its pause).

        ``slot_held``: the request took its stream's slot, which the stream takes over.
        """
        snapshot = functools.partial(self._task_event, job)
        return follow_from_now(job, snapshot, framer(rpc_id), slot_held=slot_held)

    def _task_event(self, job: Job) -> str:
        """The first event of a stream of the task: the task as it is now."""
        return json_text({"task": self._task(job)}, compact=True)


def _check_room(job: Job, encoder: A2AEncoder, sent: object, bound: int) -> int:
    """Refuse the message ``sent`` to ``job``'s live task if it would hold over ``bound`` bytes.

    What it holds: its runs' events and its client's messages (a task of many turns holds
    them all while it lives), with ``sent``.

    Returns:
        The bytes it holds with ``sent``: what the turn ``sent`` starts adds to them.

    Raises:
        _RPCError: if it would.
    """
    held = sum(run.size for run in job.runs)
    held += len(json_text([*encoder.client_messages, sent], compact=True).encode())
    if held > bound:
        raise _RPCError(
            Code.UNSUPPORTED_OPERATION,
            f"The task {job.key!r} would hold {held} bytes with this message (its turns' "
            f"events and messages), over max_live_run_bytes ({bound}): it takes no more "
            "messages. Send a new message without taskId (in the same contextId) to start a "
            "new task, or make the app with a higher max_live_run_bytes.",
            metadata={"taskId": job.key, "heldBytes": str(held)},
        )
    return held


def _request_id(parsed: Mapping[str, object], most: int) -> RPCId | Response:
    """The request's JSON-RPC ``id``, or the refusal of one that is not an id it takes.

    An id is a string, an integer or null, of at most ``most`` characters (the app's
    ``max_id_chars``): each answer repeats it, each event of a stream too (was: any length
    the body held).
    """
    rpc_id = parsed.get("id")
    if isinstance(rpc_id, bool) or not isinstance(rpc_id, str | int | None):
        return error_response(
            None, Code.INVALID_REQUEST, "The request's id is not a string, an integer or null."
        )
    if rpc_id is not None and len(str(rpc_id)) > most:
        return error_response(
            None,
            Code.INVALID_REQUEST,
            f"The request's id holds {len(str(rpc_id))} characters, over the {most} an id may "
            "hold (max_id_chars): each answer repeats it, each event of a stream too. Send a "
            "shorter id, e.g. a number or a UUID.",
            metadata={"maxIdChars": str(most)},
        )
    return rpc_id


def _check_id(value: str, field: str, most: int) -> None:
    """Refuse the id ``value`` a client chose, of the params' ``field``, if it cannot be kept.

    An id is kept, and shown to whoever lists the tasks or the webhooks: it is refused too
    long, or with a control or format character (which would show it as another text).

    Raises:
        _RPCError: if it holds over ``most`` characters (the app's ``max_id_chars``), or
            one that is not printable (-32602).
    """
    if len(value) > most:
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"params.{field} holds {len(value)} characters, over the {most} an id may hold: "
            "send a shorter id, e.g. a UUID.",
            violations=[(field, f"over {most} characters")],
        )
    if not value.isprintable():
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"params.{field} {value!r} holds a control or format character (a line break, "
            "NUL, a bidirectional override, ...): send an id of printable characters, e.g. "
            "a UUID.",
            violations=[(field, "not printable")],
        )


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
            violations=[("params", str(error))],
        ) from None


def _history_length(
    request: GetTaskRequest | ListTasksRequest | SendMessageConfiguration, field: str
) -> int | None:
    """The most messages of a task's history that ``request`` asks for (``None``: all).

    Raises:
        _RPCError: if it asks for fewer than none (-32602, naming ``field``).
    """
    if not request.HasField("history_length"):
        return None
    history = request.history_length
    if history < 0:
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"params.{field} is {history}: give 0 or more (or none: all of it).",
            violations=[(field, "0 or more")],
        )
    return history


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
        field = f"message.parts[{place}].data"
        call_id = data["toolCallId"]
        asked = job.asked(call_id) if isinstance(call_id, str) else None
        if asked is None:
            waiting = [request.call_id for request in job.waiting()]
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"{where}: the task asked for no approval of a call {call_id!r}; it waits for "
                f"{waiting}.",
                violations=[(f"{field}.toolCallId", "no call of that id waits")],
            )
        if not asked.pending or any(asked is earlier for earlier, _ in decisions):
            raise _RPCError(
                Code.INVALID_PARAMS,
                f"{where}: the call {call_id!r} of {asked.tool_name} does not wait for a "
                "decision any more; a call is decided once.",
                violations=[(f"{field}.toolCallId", "the call was decided already")],
            )
        fields = {key: value for key, value in data.items() if key != "toolCallId"}
        try:
            decision = ApprovalDecision.model_validate(fields)
        except ValidationError as error:
            said = error.errors()[0]["msg"]
            raise _RPCError(
                Code.INVALID_PARAMS,
                f'{where} is not a decision ({{"toolCallId": ..., "approved": true or false, '
                f'"arguments"?: {{...}}, "reason"?: "..."}}): {said}.',
                violations=[(field, said)],
            ) from None
        if decision.approved and decision.arguments is not None:
            if not edits:
                raise _RPCError(
                    Code.INVALID_PARAMS,
                    f"{where}.arguments: this agent takes no edited arguments (its app was made "
                    "with approval_edits=False): approve the call as the model made it, or "
                    "deny it.",
                    violations=[(f"{field}.arguments", "edited arguments are not taken")],
                )
            try:
                asked.check_arguments(decision.arguments)
            except ToolApprovalError as error:
                raise _RPCError(
                    Code.INVALID_PARAMS,
                    f"{where}.arguments: {error}",
                    violations=[(f"{field}.arguments", problem) for problem in error.problems],
                ) from None
        decisions.append((asked, decision))
    if not decisions:
        waiting = [request.call_id for request in job.waiting()]
        raise _RPCError(
            Code.INVALID_PARAMS,
            f"The task waits for the decisions of the calls {waiting}: answer with a data part "
            '{"toolCallId": ..., "approved": true or false, "arguments"?: {...}, '
            '"reason"?: "..."} per call.',
            violations=[("message.parts", "no decision of a call that waits")],
        )
    return decisions


def _gone() -> Response:  # pragma: no cover - a durable job's only (not served over A2A)
    return error_response(None, Code.UNSUPPORTED_OPERATION, "The task was answered meanwhile.")


def _unserved(method: str) -> _RPCError:
    """The error of a method this app does not serve."""
    if method in _PUSH_METHODS:
        return _RPCError(Code.PUSH_NOT_SUPPORTED, "This agent sends no push notifications.")
    if method == "GetExtendedAgentCard":
        return _RPCError(
            Code.EXTENDED_CARD_NOT_CONFIGURED,
            "This agent has no extended card: its card is at /.well-known/agent-card.json.",
        )
    hint = ""
    if method in _OLD_METHODS:
        hint = " (a method of A2A 0.3: this agent speaks 1.0, e.g. SendStreamingMessage)"
    return _RPCError(
        Code.METHOD_NOT_FOUND,
        f"There is no method {method!r}{hint}; the methods are SendMessage, "
        "SendStreamingMessage, GetTask, ListTasks, CancelTask and SubscribeToTask.",
        metadata={"method": method},
    )


def _busy(rpc_id: RPCId, refused: NoRoom) -> Response:
    response = error_response(
        rpc_id,
        Code.SERVER_BUSY,
        refused.message,
        metadata={"limit": refused.setting, "retryAfterSeconds": "1"},
        status=refused.status,
    )
    response.headers["Retry-After"] = "1"
    return response


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _answer_as_value(value: object) -> AnswerAs | None:
    """``value`` as a way to answer, ``"task"`` or ``"message"`` (``None``: it is neither).

    The one test of a value of ``answer_as``: given to :func:`a2a_app` (checked as the app
    is made) or returned by its function (checked as each new task's request comes).
    """
    return next((allowed for allowed in _ANSWERS_AS if allowed == value), None)


def _check_answer_as(answer_as: object) -> None:
    """Refuse an ``answer_as`` that is neither ``"task"``, ``"message"`` nor a function.

    Raises:
        A2AConfigurationError: naming both values (was: taken, and answered as ``"task"``).
    """
    if not callable(answer_as) and _answer_as_value(answer_as) is None:
        raise refused_argument(
            answer_as,
            "answer_as",
            "'task', 'message' or a function of the request that returns one of them",
            owner="a2a_app",
            fix='Pass answer_as="task" (the default) or answer_as="message".',
            error=A2AConfigurationError,
        )


def _checked_modes(modes: Sequence[str]) -> tuple[str, ...]:
    """The input media types, each checked (``type/subtype``, ``type/*`` or ``*/*``)."""
    if isinstance(modes, str) or not modes:
        raise A2AConfigurationError(
            f"input_modes must be a sequence of media types, e.g. ('text/plain', "
            f"'application/json', 'image/*'); got {modes!r}."
        )
    for mode in modes:
        kind, slash, sub = mode.partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            raise A2AConfigurationError(
                f"input_modes holds {mode!r}, which is no media type: give type/subtype "
                "(text/plain), type/* (image/*) or */* (any)."
            )
    return tuple(mode.lower() for mode in modes)


def _one_event(rpc_id: RPCId, event: Mapping[str, object]) -> Response:
    """A stream of one event (a direct answer's message), then its end."""
    data = framer(rpc_id)(json_text(event, compact=True))

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data=data)

    return EventSourceResponse(events(), headers=A2A_HEADERS, sep="\n")  # (as its streams)


def _signature(secret: bytes, owner: str | None, place: bytes) -> bytes:
    """The HMAC of the page token's ``place`` for its caller ``owner`` (under ``secret``)."""
    signed = json.dumps(owner).encode() + b"\n" + place
    return hmac.new(secret, signed, hashlib.sha256).digest()


def _cursor(secret: bytes, owner: str | None, stamp: str, key: str) -> str:
    """The page token of the place after the task ``key`` (updated at ``stamp``) for ``owner``.

    The place, signed with the app's ``secret`` for its caller: a token made up, or one of
    another caller's pages, is refused (:func:`_after`).
    """
    place = json.dumps([stamp, key]).encode()
    signature = _signature(secret, owner, place)
    return ".".join(base64.urlsafe_b64encode(part).decode() for part in (place, signature))


def _after(secret: bytes, owner: str | None, token: str) -> tuple[str, str] | None:
    """The place a page token names (``None``: the first page), checked to be ``owner``'s.

    Raises:
        _RPCError: if the token is no ``nextPageToken`` this app gave ``owner`` (-32602):
            made up, changed, another caller's, or of before the app's start (its
            signature's key is made as the app is).
    """
    if not token:
        return None
    stamp = key = None
    place, _, signature = token.partition(".")
    try:
        place_bytes = base64.urlsafe_b64decode(place.encode())
        signed = base64.urlsafe_b64decode(signature.encode())
        if hmac.compare_digest(signed, _signature(secret, owner, place_bytes)):
            stamp, key = json.loads(place_bytes)
    except (ValueError, TypeError, binascii.Error, RecursionError):  # (nested past its reading)
        stamp = key = None
    if not isinstance(stamp, str) or not isinstance(key, str):
        raise _RPCError(
            Code.INVALID_PARAMS,
            "params.pageToken is no page token this app gave you (made up, changed, another "
            "caller's, or of before the app started again): send the nextPageToken of your "
            "previous page as it came (or none, for the first page).",
            violations=[("pageToken", "not a nextPageToken this app gave the caller")],
        )
    return stamp, key


def _moment(stamp: str) -> datetime:
    """The moment a status timestamp says (the oldest there is, if it says none)."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _tag(value: object) -> str:
    """A short hash of ``value``'s JSON (an ETag's)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
