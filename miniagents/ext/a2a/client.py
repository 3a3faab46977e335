"""``a2a_agent``: a remote A2A agent as a ``MiniAgent``, its reply streamed into its caller's.

Each interaction sends one A2A message (its input messages and its ``message`` argument,
as text parts) with ``SendStreamingMessage``, through the official ``a2a-sdk`` client, and
reads the task's events into its reply as they come (see :mod:`miniagents.ext.a2a._reading`;
to an agent whose card says it does not stream, ``SendMessage``, which answers at once, then
``GetTask`` until the task ends or waits: its texts come as often as it is asked)::

    caller:   inquire ----> SendStreamingMessage
    remote:                   task: "Riv" "ers" ... (tool call, its result) ... completed
    caller:   replies ------------- "Riv" - "ers" ------------------------------- |

- **Cancelled**: when every consumer of the reply gives up (or the caller is cancelled),
  the remote task is cancelled (``CancelTask``) before the interaction ends.
- **A broken stream** (the connection dropped, a read that timed out, a stream that ended
  before the task did) is followed again with ``SubscribeToTask``: the task as it stands,
  then the rest, each token once (``GetTask`` when the task has ended meanwhile); up to
  ``reconnects`` times in a row (a stream followed again that breaks with nothing new
  after the task as it stands breaks once more in that row).
- **Approvals**: a MiniAgents server's task that waits for approvals puts an
  ``LLMToolApprovalRequest`` per call in the reply (as an LLM agent does); once each is
  decided, the decisions go to the task, and the reply goes on.
- **Questions**: a task that asks its caller for input (or to authenticate) puts an
  ``A2AInputRequest`` (``A2AAuthRequest``) in the reply; once it is answered, the answer
  goes to the task as its next message, and the reply goes on (``questions="raise"``:
  ``A2AInputRequiredError`` instead). A caller that gives up on the reply while the task
  waits for it cancels the task.
- **Failures** are the errors of :mod:`miniagents.ext.a2a.errors`, never the SDK's.
- **Bounded**: a remote's reply holds at most ``max_reply_chars`` characters of text and
  ``max_reply_messages`` messages, and one event of its stream (or one answer, as a task
  ``GetTask`` gives) at most ``max_event_bytes`` bytes, counted as they are read, before
  the SDK holds the event whole, and at most ``max_event_values`` JSON values, counted
  before the SDK parses it; a remote that sends more fails the reply with
  ``A2AReplyTooLargeError`` (and its task is cancelled), rather than filling the memory.
  Its bodies are asked for unencoded (``Accept-Encoding: identity``), and one that comes
  encoded anyway (gzip, ...) is refused before a byte of it is read (``A2AProtocolError``):
  its bytes, counted before httpx decodes them, would bound nothing the SDK reads.
- **Tracing**: the request carries the caller's trace context (``traceparent``), so the
  remote's spans are children of the caller's when both are instrumented
  (:mod:`miniagents.ext.otel`).
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import json
import logging
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias, cast

import httpx
from a2a.client import (
    A2ACardResolver,
    A2AClientError,
    A2AClientTimeoutError,
    Client,
    ClientConfig,
    ClientFactory,
)
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
)
from a2a.types import Message as A2AWireMessage
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP
from a2a.utils.errors import A2AError as SDKError
from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.unknown_fields import UnknownFieldSet

from miniagents.arguments import check_count, check_flag, check_seconds
from miniagents.ext.a2a._parts import parts_of
from miniagents.ext.a2a._reading import ApprovalAsk, ReplyWriter
from miniagents.ext.a2a._values import ValueCounter
from miniagents.ext.a2a._wire import Code
from miniagents.ext.a2a.errors import (
    A2ACardError,
    A2ACardOriginError,
    A2AConfigurationError,
    A2AConnectionError,
    A2AError,
    A2AHTTPError,
    A2AInvalidRequestError,
    A2AProtocolError,
    A2ARemoteError,
    A2AReplyTooLargeError,
    A2ATaskNotFoundError,
    A2AUnsupportedOperationError,
)
from miniagents.ext.a2a.messages import A2AData, A2AFile, A2AReply
from miniagents.ext.content_coding import encoded_with
from miniagents.ext.input_requests import quoted_words
from miniagents.ext.llm.messages import LLMToolApprovalRequest, LLMToolCallMessage
from miniagents.ext.roles import role_of
from miniagents.ext.tools.approval import ToolDecision, request_approval
from miniagents.messages.message import Message
from miniagents.miniagents.agent import AgentFunction, InteractionContext, MiniAgent
from miniagents.miniagents.lowlevel import outgoing_carrier

if TYPE_CHECKING:
    from mypy_extensions import DefaultNamedArg

__all__ = [
    "DEFAULT_CARD_TIMEOUT",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_EVENT_VALUES",
    "DEFAULT_MAX_REPLY_CHARS",
    "DEFAULT_MAX_REPLY_MESSAGES",
    "Questions",
    "a2a_agent",
    "afetch_agent_card",
]

DEFAULT_MAX_REPLY_CHARS = 10_000_000
"""The most characters of text a remote's reply may hold, in all (``max_reply_chars``)."""

DEFAULT_MAX_REPLY_MESSAGES = 10_000
"""The most messages a remote's reply may have (``max_reply_messages``): artifacts and
calls that wait for approval."""

DEFAULT_CARD_TIMEOUT = 60.0
"""Seconds the fetch of a remote's card may take in all (``card_timeout``): a card is one
small answer, so that only a server that sends it a byte at a time takes this long."""

DEFAULT_MAX_EVENT_BYTES = 64_000_000
"""The most bytes one event of a remote's stream, or one answer, may take
(``max_event_bytes``): above what a reply of ``DEFAULT_MAX_REPLY_CHARS`` characters takes
as one event (a task's JSON, 6 bytes a character where JSON escapes it)."""

DEFAULT_MAX_EVENT_VALUES = 100_000
"""The most JSON values one event of a remote's stream, or one answer, may hold
(``max_event_values``), counted before the SDK parses it: a reply of
``DEFAULT_MAX_REPLY_CHARS`` characters in a few parts holds a few dozen, an artifact of a
thousand parts a few thousand, while the SDK's parse of a million tiny values (12 MB)
holds the event loop for seconds."""

_CARD_BYTES = 1_000_000
"""The fewest bytes the card of an ``a2a_agent`` given by its URL may take: it is read within
the larger of this and ``max_event_bytes`` (and of ``DEFAULT_MAX_EVENT_VALUES`` and
``max_event_values`` values), so that bounds set for a task's events do not refuse the card."""

_logger = logging.getLogger("miniagents.ext.a2a")

Questions: TypeAlias = Literal["ask", "raise"]
"""What an ``a2a_agent`` does with a remote's question: asks its caller, or raises."""

_INVALID = {
    Code.PARSE_ERROR,
    Code.INVALID_REQUEST,
    Code.METHOD_NOT_FOUND,
    Code.INVALID_PARAMS,
    Code.CONTENT_TYPE_NOT_SUPPORTED,
    Code.VERSION_NOT_SUPPORTED,
}
_UNSUPPORTED = {
    Code.TASK_NOT_CANCELABLE,
    Code.PUSH_NOT_SUPPORTED,
    Code.UNSUPPORTED_OPERATION,
    Code.EXTENDED_CARD_NOT_CONFIGURED,
    Code.EXTENSION_SUPPORT_REQUIRED,
}
_ASK_DOC = """Ask the remote agent; its reply streams as it is produced.

Args:
    message: What to ask (sent after the input messages, if any): the whole request when
        the agent is called as a tool.
"""


async def afetch_agent_card(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    card_timeout: float = DEFAULT_CARD_TIMEOUT,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_event_values: int = DEFAULT_MAX_EVENT_VALUES,
) -> AgentCard:
    """The agent card of the A2A agent at ``url`` (its ``/.well-known/agent-card.json``).

    ``a2a_agent(await afetch_agent_card(url))`` takes the card's name and description as
    the agent's alias and description (what a model reads of it as a tool), and keeps its
    ``headers`` to ``url``'s origin as ``a2a_agent(url)`` does: the card records where it
    was fetched from (in its binary form, which pickles with it; never in its JSON). The card is
    read within ``max_event_bytes`` bytes, counted as they come, and ``max_event_values``
    JSON values, counted before the SDK parses it (``a2a_agent(url)`` reads it within the
    larger of its own bounds and 1,000,000 bytes, 100,000 values).

    Args:
        url: The agent's base URL.
        headers: HTTP headers of the request (e.g. ``{"Authorization": "Bearer ..."}``).
            ``Accept-Encoding`` is ``identity`` whatever they say: a card that comes
            encoded (gzip, ...) is refused unread, as its bounds count what is read.
        timeout: Seconds to connect, send, and wait for each read of the answer.
        card_timeout: Seconds the whole fetch may take (``inf``: no deadline), so that a
            server that sends its card a byte at a time, each within ``timeout``, does not
            hold the fetch until ``max_event_bytes``.
        max_event_bytes: The most bytes the card may take.
        max_event_values: The most JSON values the card may hold (see ``a2a_agent``).

    Raises:
        A2ACardError: if the card cannot be fetched or read (an HTTP error, not a card,
            a JSON nested too deep).
        A2AConnectionError: if the agent cannot be reached, or its card is not read whole
            within ``card_timeout`` seconds.
        A2AReplyTooLargeError: if the card is over ``max_event_bytes`` bytes or
            ``max_event_values`` values.
        A2AConfigurationError: if ``max_event_bytes`` or ``max_event_values`` is not a
            positive whole number, or ``card_timeout`` not a positive number of seconds.
    """
    owner = "afetch_agent_card()"
    check_count(max_event_bytes, "max_event_bytes", owner=owner, error=A2AConfigurationError)
    check_count(max_event_values, "max_event_values", owner=owner, error=A2AConfigurationError)
    deadline = check_seconds(
        card_timeout, "card_timeout", forever=True, owner=owner, error=A2AConfigurationError
    )
    bound = _EventBound(max_event_bytes, f"at {url}", max_event_values, card=True)
    hooks = {"response": [bound.ahook]}
    async with httpx.AsyncClient(
        headers=_unencoded(headers or {}), timeout=timeout, event_hooks=hooks
    ) as client:
        return await _afetched(client, url, deadline)


_FETCHED_FROM = 536_870_911
"""The field number (the highest protobuf has; no field of A2A's cards) under which a fetched
card records the URL it was fetched from: an unknown field, so it stays in the card's binary
form (copies and pickles keep it) and out of its JSON."""


def _varint(number: int) -> bytes:
    """``number`` as protobuf's wire format writes it (seven bits a byte, low bits first)."""
    written = bytearray()
    while number > 0x7F:
        written.append(number & 0x7F | 0x80)
        number >>= 7
    written.append(number)
    return bytes(written)


def _fetched_from(card: AgentCard) -> str | None:
    """The URL that ``card`` was fetched from (see ``_FETCHED_FROM``), if it was fetched."""
    fields = UnknownFieldSet(card)
    for field in (fields[index] for index in range(len(fields))):
        if field.field_number == _FETCHED_FROM and isinstance(field.data, bytes):
            return field.data.decode()
    return None


async def _afetched(client: httpx.AsyncClient, url: str, deadline: float) -> AgentCard:
    """The card of the agent at ``url``, read whole within ``deadline`` seconds.

    It records ``url`` (see ``_FETCHED_FROM``), as a length-delimited field (wire type 2).
    """
    try:
        async with asyncio.timeout(deadline if deadline < math.inf else None):
            card = await A2ACardResolver(client, url).get_agent_card()
            home = url.encode()
            card.MergeFromString(_varint(_FETCHED_FROM << 3 | 2) + _varint(len(home)) + home)
            return card
    except TimeoutError as error:
        raise A2AConnectionError(
            f"The agent card of the A2A agent at {url} was not read whole within "
            f"card_timeout ({deadline:g} seconds): the agent sends it too slowly. Check that "
            "the URL is the agent's, or give a higher card_timeout."
        ) from error
    except RecursionError as error:  # (the SDK's json.loads of a card nested too deep)
        raise _card_too_deep(url) from error
    except A2AClientError as error:
        cause = error.__cause__
        if isinstance(cause, httpx.TransportError):
            raise A2AConnectionError(
                f"The A2A agent at {url} cannot be reached ({_cause_words(cause)}); check that "
                "it runs and that the URL is its base URL."
            ) from error
        if isinstance(cause, ParseError) and _nested_too_deep(cause):  # (protobuf's parse)
            raise _card_too_deep(url) from error
        raise A2ACardError(
            f"The agent card of the A2A agent at {url} could not be read (the SDK said "
            f"{quoted_words(str(error), _PARSER_SAID)}). Check the URL (the agent's base URL, "
            "whose /.well-known/agent-card.json is its card)."
        ) from error


def _card_too_deep(url: str) -> A2ACardError:
    """The error of the card at ``url`` whose JSON is nested deeper than its parser reads."""
    return A2ACardError(
        f"The agent card of the A2A agent at {url} could not be read: its JSON is nested "
        "too deep to be read. Check the URL (the agent's base URL, whose "
        "/.well-known/agent-card.json is its card)."
    )


def a2a_agent(
    target: str | AgentCard,
    *,
    alias: str | None = None,
    description: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    card_timeout: float = DEFAULT_CARD_TIMEOUT,
    reconnects: int = 3,
    cancel_timeout: float = 10.0,
    max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
    max_reply_messages: int = DEFAULT_MAX_REPLY_MESSAGES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_event_values: int = DEFAULT_MAX_EVENT_VALUES,
    questions: Questions = "ask",
    reply_timeout: float = math.inf,
    headers_to_other_origins: bool = False,
) -> MiniAgent[[DefaultNamedArg(str | None, "message")], A2AReply]:
    """A remote A2A agent as a ``MiniAgent``: its reply streams token by token into its caller's.

    Each interaction sends the input messages (and the ``message`` argument, if given) to
    the remote agent as one A2A message (texts, and ``A2AFile`` s and ``A2AData`` as file
    and data parts), and replies with the remote task's artifacts as they stream: texts as
    :class:`~miniagents.ext.a2a.messages.A2AMessage` s (with the usage and cost the remote
    reports, when it does), files as ``A2AFile`` s, data as ``A2AData``, and a MiniAgents
    server's tool calls and results as ``LLMToolCallMessage`` and ``LLMToolResultMessage``,
    so its nested streams stay nested. A remote that answers with a message (no task)
    replies so too. A remote task that asks its caller a question (input or
    authentication required) puts an ``A2AInputRequest`` (an ``A2AAuthRequest``) in the
    reply: once answered (``request.answer(...)``) the answer goes to the task, and the
    reply goes on; a rejected task is an ``A2ATaskRejectedError``. It is a ``MiniAgent``
    like any other: a tool of an LLM agent (``tools=[researcher]``: the model gives
    ``message``), a step of a pipeline, an agent run on Ray (it pickles: a card, a URL and
    options). See the module docstring for
    cancellation, broken streams, approvals and tracing.

    Example:
        >>> researcher = a2a_agent("http://127.0.0.1:8001", alias="RESEARCHER")
        >>> # `await researcher.inquire("Why is the sky blue?")` asks it over A2A.

    Args:
        target: The agent's base URL (its card is fetched at its first interaction) or its
            card (see :func:`afetch_agent_card`).
        alias: The agent's alias (default: the card's name, upper-cased, as a tool's name
            may be; ``A2A_AGENT`` for a URL).
        description: What it does (default: the card's description and skills; for a URL,
            a sentence naming it).
        headers: HTTP headers of every request (e.g. ``{"Authorization": "Bearer ..."}``).
            ``Accept-Encoding`` is ``identity`` whatever they say: a body that comes
            encoded (gzip, ...) is refused unread (``A2AProtocolError``; an HTTP error's:
            ``A2AHTTPError``), as the bounds below count what is read.
        timeout: Seconds to connect, send, and wait for each event or answer; a stream
            that waits longer is followed again (see ``reconnects``).
        card_timeout: Seconds the fetch of the card of an agent given by its URL may take
            in all (``inf``: no deadline); past it, the interaction fails with
            ``A2AConnectionError`` (see :func:`afetch_agent_card`).
        reconnects: How many times in a row a broken stream is followed again before the
            reply fails with ``A2AConnectionError``.
        cancel_timeout: Seconds the remote's ``CancelTask`` may take, when the reply is
            given up on (then the interaction ends anyway).
        max_reply_chars: The most characters of text the remote's reply may hold, in all
            (its texts, tool calls' arguments, tools' results and questions' words); one
            more fails the reply with ``A2AReplyTooLargeError`` and cancels the remote task.
        max_reply_messages: The most messages the remote's reply may have (artifacts,
            and calls that wait for approval); one more fails it the same way.
        max_event_bytes: The most bytes one event of the remote's stream may take (and
            one whole answer that is not a stream: a task), counted as they are read, so
            that the SDK never holds a bigger one; one more byte fails the reply the same
            way. Raise it with ``max_reply_chars`` (a task's JSON may take up to 6 bytes a
            character of its texts). The card of an agent given by its URL is read within
            the larger of this and 1,000,000 bytes, so that a bound set for the task's
            events does not refuse it.
        max_event_values: The most JSON values (objects, lists, strings, numbers, at
            every depth) one event of the remote's stream (or one answer) may hold, counted
            once it is read, before the SDK parses it; one more fails the reply the same
            way. The default, 100,000, is far above what a reply holds (a reply of
            ``max_reply_chars`` characters in a few parts holds a few dozen values, an
            artifact of a thousand parts a few thousand), and far below what holds the
            event loop (the SDK takes seconds to parse a million tiny values). The card
            of an agent given by its URL is read within the larger of this and 100,000.
        questions: ``"ask"`` (the default): a remote's question is an
            ``A2AInputRequest`` of the reply, which waits for its answer; ``"raise"``: it
            fails the reply with ``A2AInputRequiredError`` (its ``question`` and task), for
            a caller that answers none (a tool of an LLM agent, whose model reads the error).
        reply_timeout: Seconds the whole reply may take, from the first request of the
            task to the reply's end (``inf``, the default: no deadline), the waits for the
            caller's answers and decisions included; past it, the remote task is cancelled
            and the reply fails with ``A2AConnectionError``. ``timeout`` bounds each read
            only, and a remote that sends keepalives (official servers ping every 15 s),
            endless status updates, or a task polled as working for ever holds the reply
            without one.
        headers_to_other_origins: Whether ``headers`` go with the requests to a JSON-RPC
            interface that the card fetched from ``target`` names on another origin
            (scheme, host and port) than ``target``'s. ``False`` (the default): such a
            request is refused before it is sent, failing the interaction with
            ``A2ACardOriginError`` (an ``A2ACardError``; the card is not fetched again for
            it), so that a card cannot send your credentials to a host of its choosing; set
            it for a remote you trust to serve them elsewhere. A card of
            :func:`afetch_agent_card` is kept to the origin it was fetched from the same
            way; a card made otherwise is called with ``headers`` wherever it says: you
            chose it.

    Raises:
        A2AConfigurationError: if ``timeout``, ``card_timeout``, ``reconnects``,
            ``cancel_timeout``, ``max_reply_chars``, ``max_reply_messages``,
            ``max_event_bytes``, ``max_event_values`` or ``reply_timeout`` is not a usable
            number, ``headers_to_other_origins`` not ``True`` or ``False``, or the URL is
            not an ``http(s)`` URL.
    """
    limits = _Limits(max_reply_chars, max_reply_messages, max_event_bytes, max_event_values)
    remote = _Remote(
        target,
        dict(headers or {}),
        timeout,
        card_timeout,
        reconnects,
        cancel_timeout,
        limits,
        questions,
        reply_timeout,
        headers_to_other_origins,
    )
    call = functools.partial(_ask, remote)
    call.__doc__ = _ASK_DOC  # (AgentTool reads the description of `message` here)
    agent: MiniAgent[..., Message] = MiniAgent(
        cast("AgentFunction[...]", call),
        alias=alias or remote.alias(),
        description=description or remote.description(),
    )
    return cast('MiniAgent[[DefaultNamedArg(str | None, "message")], A2AReply]', agent)


@dataclass(frozen=True)
class _Limits:
    """How much of a remote's reply an ``a2a_agent`` takes (see ``a2a_agent``)."""

    max_reply_chars: int
    max_reply_messages: int
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_event_values: int = DEFAULT_MAX_EVENT_VALUES

    def __post_init__(self) -> None:
        names = ("max_reply_chars", "max_reply_messages", "max_event_bytes", "max_event_values")
        for name in names:
            check_count(getattr(self, name), name, owner="a2a_agent()", error=A2AConfigurationError)


class _Remote:
    """Where an ``a2a_agent`` sends its interactions, and how (what pickles of it)."""

    __slots__ = (
        "_card",
        "cancel_timeout",
        "card",
        "card_timeout",
        "headers",
        "headers_to_other_origins",
        "home",
        "limits",
        "questions",
        "reconnects",
        "reply_timeout",
        "timeout",
        "url",
    )

    def __init__(
        self,
        target: str | AgentCard | bytes,  # (bytes: a card's, as it pickles)
        headers: dict[str, str],
        timeout: float,
        card_timeout: float,
        reconnects: int,
        cancel_timeout: float,
        limits: _Limits,
        questions: Questions = "ask",
        reply_timeout: float = math.inf,
        headers_to_other_origins: bool = False,
    ) -> None:
        owner, error = "a2a_agent()", A2AConfigurationError
        if questions not in ("ask", "raise"):
            raise A2AConfigurationError(
                f"a2a_agent() takes questions='ask' or 'raise'; got {questions!r}."
            )
        self.questions: Questions = questions
        for name, value in (
            ("timeout", timeout),
            ("card_timeout", card_timeout),
            ("cancel_timeout", cancel_timeout),
            ("reply_timeout", reply_timeout),
        ):
            check_seconds(value, name, forever=True, owner=owner, error=error)
        fix = "It is how many times in a row a broken stream is followed again."
        check_count(reconnects, "reconnects", least=0, owner=owner, fix=fix, error=error)
        if isinstance(target, bytes):
            card = AgentCard()
            card.ParseFromString(target)
            target = card
        if isinstance(target, str):
            if not re.match(r"https?://[^/]", target):
                raise A2AConfigurationError(
                    f"a2a_agent() needs the agent's base URL (http:// or https://) or its "
                    f"card; got {target!r}."
                )
            self.url: str | None = target
            self.card: AgentCard | None = None
        else:
            self.url = None
            self.card = target
        # (where its headers go, when it is given to a URL's origin: see a2a_agent)
        self.home = target if isinstance(target, str) else _fetched_from(target)
        self.headers = headers
        fix = "It says whether headers go to a card's interface on another origin."
        self.headers_to_other_origins = check_flag(
            headers_to_other_origins, "headers_to_other_origins", owner=owner, fix=fix, error=error
        )
        self.timeout = float(timeout)
        self.card_timeout = float(card_timeout)
        self.reconnects = reconnects
        self.cancel_timeout = float(cancel_timeout)
        self.reply_timeout = float(reply_timeout)
        self.limits = limits
        self._card: AgentCard | None = self.card  # (fetched once per process, not pickled)

    def __reduce__(self) -> tuple[Callable[..., _Remote], tuple[object, ...]]:
        # (a card is a protobuf message, whose class pickle cannot find: its bytes travel)
        target = self.url if self.url is not None else _card_bytes(self.card)
        arguments = (
            target,
            self.headers,
            self.timeout,
            self.card_timeout,
            self.reconnects,
            self.cancel_timeout,
            self.limits,
            self.questions,
            self.reply_timeout,
            self.headers_to_other_origins,
        )
        return (_Remote, arguments)

    def alias(self) -> str:
        if self.card is None or not self.card.name:
            return "A2A_AGENT"
        return re.sub(r"[^A-Za-z0-9_-]+", "_", self.card.name).strip("_").upper() or "A2A_AGENT"

    def description(self) -> str:
        card = self.card
        if card is None:
            return f"An agent served over A2A at {self.url}."
        about = card.description or f"The A2A agent {card.name}."
        skills = "; ".join(
            f"{skill.name}: {skill.description.rstrip('.')}"
            for skill in card.skills
            if skill.description and skill.description != card.description
        )
        return f"{about} Skills: {skills}." if skills else about

    async def acard(self, client: httpx.AsyncClient) -> AgentCard:
        """The agent's card: the one given, else the one fetched from its URL.

        Fetched once per process, and again after an interaction failed as a stale card
        makes one fail (see :meth:`forget_card`): a remote that changed its card (its
        interface's URL, whether it streams) is read anew, not called as it was.
        """
        card = self._card
        if card is None:
            assert self.url is not None  # (a remote without a card has a URL)
            card = self._card = await _afetched(client, self.url, self.card_timeout)
        return card

    def forget_card(self, card: AgentCard) -> None:
        """Fetch the card again at the next interaction, if ``card`` is the one fetched.

        For an interaction that used ``card`` and failed as a stale card makes one fail
        (``_STALE_CARD``). A card given to ``a2a_agent`` is kept (it has no URL to fetch),
        and so is one fetched again since ``card`` (another interaction's failure).
        """
        if self.url is not None and self._card is card:
            self._card = None


_STALE_CARD = (A2ACardError, A2AConnectionError, A2AHTTPError, A2AProtocolError, A2ARemoteError)
"""The errors of an interaction that a stale card may cause (a remote that moved, or stopped
streaming): the card is fetched again for the next. A task's own end (failed, a question,
a reply too large) says nothing of its card."""


def _card_bytes(card: AgentCard | None) -> bytes:
    assert card is not None  # (a remote without a URL has a card)
    return card.SerializeToString()


async def _ask(remote: _Remote, ctx: InteractionContext, /, message: str | None = None) -> None:
    """One interaction of an ``a2a_agent``: see the module docstring."""
    inputs = await ctx.message_promises
    parts = [part for input_message in inputs for part in _parts(input_message)]
    if message:
        parts.append(Part(text=message))
    headers = _unencoded({**remote.headers, **outgoing_carrier()})  # (the trace goes on)
    timeout = httpx.Timeout(remote.timeout)
    limits = remote.limits
    alias = ctx.this_agent.alias

    card_bound = _EventBound(  # (a card's own bound: see _CARD_BYTES)
        max(limits.max_event_bytes, _CARD_BYTES),
        alias,
        max(limits.max_event_values, DEFAULT_MAX_EVENT_VALUES),
        card=True,
    )
    hooks = {"response": [card_bound.ahook]}  # (every response, whichever transport)
    async with httpx.AsyncClient(headers=headers, timeout=timeout, event_hooks=hooks) as http:
        card = await remote.acard(http)
        try:
            await _aexchanged(remote, ctx, http, card, parts)
        except _STALE_CARD as error:
            if not isinstance(error, A2ACardOriginError):  # (the caller's rule: not stale)
                remote.forget_card(card)
            raise


async def _aexchanged(
    remote: _Remote,
    ctx: InteractionContext,
    http: httpx.AsyncClient,
    card: AgentCard,
    parts: list[Part],
) -> None:
    """The interaction with the remote of ``card``, over ``http``, from its first request."""
    limits = remote.limits
    alias = ctx.this_agent.alias
    bound = _EventBound(limits.max_event_bytes, alias, limits.max_event_values, card=False)
    http.event_hooks = {"request": _origin_guards(remote, card), "response": [bound.ahook]}
    try:
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=True)).create(card)
    except ValueError as error:
        raise A2ACardError(
            f"The card of the A2A agent {quoted_words(card.name, _NAME_CHARS)} names no "
            f"JSON-RPC interface to call ({error}); this client speaks A2A over JSON-RPC."
        ) from error
    exchange = _Exchange(remote, ctx, client, bound, streams=card.capabilities.streaming)
    await exchange.arun(parts or [Part(text="")])


def _origin_guards(
    remote: _Remote, card: AgentCard
) -> list[Callable[[httpx.Request], Awaitable[None]]]:
    """The request hooks that keep the caller's headers on the origin the card came from.

    (The card, fetched from ``remote.home``, names the URL of the interface called: without
    them, a card could send the caller's credentials to a host of its choosing. See
    ``a2a_agent``'s ``headers_to_other_origins``.)
    """
    home = remote.home
    if home is None or not remote.headers or remote.headers_to_other_origins:
        return []
    origin = _origin(httpx.URL(home))

    async def guard(request: httpx.Request) -> None:
        url = request.url
        if _origin(url) != origin:
            raise A2ACardOriginError(
                f"The card of the A2A agent {quoted_words(card.name, _NAME_CHARS)}, fetched "
                f"from {home}, names an interface at {url.scheme}://"
                f"{url.netloc.decode()}, another origin: the headers given to a2a_agent() "
                "(credentials, say) are not sent there. If you trust that origin with them, "
                "pass a2a_agent(..., headers_to_other_origins=True)."
            )

    return [guard]


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """The origin of ``url``: its scheme, host and port (``None``: the scheme's own)."""
    return url.scheme, url.host, url.port


def _unencoded(headers: Mapping[str, str]) -> httpx.Headers:
    """``headers`` asking for bodies as they are (``Accept-Encoding: identity``), whatever they say.

    The bounds of a response (:class:`_EventBound`) count its body's bytes as they come,
    before httpx decodes them: an encoded body's bytes say nothing of what the SDK reads (a
    few kB of gzip are gigabytes decoded). A2A's JSON needs no encoding, so none is asked
    for (httpx asks for gzip by default), and a body that comes encoded anyway is refused
    unread (see :meth:`_EventBound.came_encoded`).
    """
    asked = httpx.Headers(headers)
    asked["Accept-Encoding"] = "identity"  # (replaces the caller's, in any case)
    return asked


_NAME_CHARS = 80
"""The most characters of a remote's name (its card's) that an error of ours quotes: the
name is the remote's word, quoted as ``quoted_words`` quotes it (one line, bounded)."""


class _EventBound:
    """Bounds each event of a response (each SSE event; a whole body): its bytes and values.

    Each response's body is read through a counter (:class:`_BoundedBody`) that fails the
    read with ``A2AReplyTooLargeError`` as soon as one event (the bytes since the stream's
    last blank line; a body that is not a stream, whole) goes over ``max_bytes`` bytes, or
    its JSON over ``max_values`` values, counted on its bytes as they come (nothing parsed):
    the SDK, which reads an event whole before it gives it, never holds a bigger one, nor
    parses one of more values (its parse into protobuf takes seconds of the loop for a
    million tiny values). The error names the remote's task: the one its reply read so far
    names, else the one the event's first bytes name (so that it can be cancelled, though
    the event is not read); if neither does, it says that the task may still run.

    ``card``: whether it bounds the fetch of an agent's card (its errors are
    ``A2ACardError`` s, and no task is the remote's yet) or the requests of a task.

    Attributes:
        writer: The reply read through it, once its exchange has started (a task's bound
            only).
        came: The first bytes of the success (2xx) or event last given to the SDK (of an
            event: its data's), and whether it was an event: what an error quotes of an
            answer the SDK reads as no JSON-RPC answer (see :meth:`not_rpc`).
    """

    def __init__(
        self,
        max_bytes: int,
        alias: str,
        max_values: int = DEFAULT_MAX_EVENT_VALUES,
        *,
        card: bool,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_values = max_values
        self.alias = alias
        self.card = card
        self.writer: ReplyWriter | None = None
        self.came: tuple[bytes, bool] = (b"", False)

    async def ahook(self, response: httpx.Response) -> None:
        """(httpx's response hook) Read ``response``'s body through a counter.

        Every response comes here, whatever its status. A success's body (2xx) is A2A's
        JSON (or a stream of it): its values are counted, and a body that is no JSON (of
        another type than JSON, text or an event stream; of a text type, one that opens no
        JSON object, as a JSON-RPC answer does; or whose first byte starts no JSON value:
        an HTML page) fails its read with what came (:meth:`not_json`), not as too many
        values. A JSON-RPC answer labelled as text (``text/plain``, as a proxy may label
        it) is read as the SDK reads it. An HTTP error's body is bounded in bytes only: the
        SDK reads it as the error's text (``A2AHTTPError``).
        """
        body = response.stream
        if isinstance(body, httpx.AsyncByteStream):  # (always, of an async client)
            response.stream = _BoundedBody(body, self, response)

    def over(self, events: bool, start: bytes, *, values: bool) -> A2AReplyTooLargeError:
        """The error of an event (an answer, if not ``events``) over a bound of its size.

        ``values``: over ``max_values`` JSON values (else over ``max_bytes`` bytes).
        ``start``: its first bytes (of its data), which may name its task.
        """
        what = "one event of its stream" if events else "one answer"
        if values:
            limit, held = "max_event_values", "hold this many"
            said = (
                f"of over {self.max_values} JSON values (its objects, lists, strings, numbers "
                "and the rest, at every depth), which is not read"
            )
        else:
            limit, held = "max_event_bytes", "are this large"
            said = f"over {self.max_bytes} bytes, which is not read whole"
        return self._refused(
            f"The remote agent {self.alias} sent {what} {said}; give the agent a higher "
            f"{limit} if the remote's events {held} by design.",
            limit,
            start,
        )

    def not_json(self, response: httpx.Response, events: bool, start: bytes) -> A2AError:
        """The error of a success's body (an event of its stream) that is no JSON.

        ``start``: its first bytes (of the event's data), told quoted. A card's bound says
        it of the agent's card: an ``A2ACardError``.
        """
        came = quoted_words(start.decode(errors="replace"), _SHOWN)
        media = response.headers.get("content-type", "")
        kind = f"a body of type {media}" if media else "a body of no type"
        status = response.status_code
        if self.card:
            return A2ACardError(
                f"The agent card at {response.request.url} could not be read: it was answered "
                f"with HTTP {status} and {kind}, which is not JSON: {came}. Check the URL "
                "(the agent's base URL, whose /.well-known/agent-card.json is its card)."
            )
        if events:
            return A2AProtocolError(
                f"The remote agent {self.alias} sent an event that is not JSON: {came}. Its "
                "reply cannot be read; check that the remote speaks A2A 1.0 (its events as "
                "the protocol's JSON)."
            )
        return A2AProtocolError(
            f"The remote agent {self.alias} answered HTTP {status} with {kind}, not A2A's "
            f"JSON: {came}. Check that its URL is the A2A agent's (a web page, a proxy's or "
            "a login page answers so)."
        )

    def not_rpc(self, said: str, *, result: bool = False) -> A2AProtocolError:
        """The error of a success (or event) the SDK read as no A2A answer (it ``said``).

        It quotes what came (:attr:`came`): JSON that is no JSON-RPC answer (an object of
        neither ``result`` nor ``error``), no JSON past its first ``{``, or (``result``) an
        answer whose result is neither a task nor a message.
        """
        what, came = self._what_came()
        how = "is no JSON-RPC answer"
        if result:
            how = "has neither a task nor a message as its result"
        return A2AProtocolError(
            f"The remote agent {self.alias} sent {what} that {how} (the SDK said "
            f"{quoted_words(said, _PARSER_SAID)}): {came}. Check that its URL is the A2A "
            "agent's JSON-RPC endpoint and that it speaks A2A 1.0 (another service, or a "
            "proxy, answers so)."
        )

    def control_split(
        self, char: bytes, at: int, before: bytes, after: bytes, data: bool
    ) -> A2AProtocolError:
        """The error of an event stream holding the control character ``char`` raw.

        ``data``: whether it is in an event's data (no JSON, then), else in another line of
        the stream (a field's name, another field's value). ``at``: how many bytes of that
        data (of that line) come before it. ``before`` and ``after``: the data's (the
        line's) bytes around it (of what was read), told quoted (see ``_around``): the SDK's
        reader would break the line at ``char`` (see ``_CONTROL_SPLIT``), so what it read of
        the stream, and an error of its, would be of another event than the one sent.
        """
        named = f"U+{ord(char):04X}"
        into = f"{at} byte{'' if at == 1 else 's'} into"
        if data:
            said = (
                f"an event whose data holds the control character {named} raw, "
                f"{into} its data{_around(before, after, at)}. JSON allows it only escaped, in a "
                f"string (\\u{ord(char):04x})"
            )
        else:
            said = (
                "an event stream with a line (not of an event's data) that holds the control "
                f"character {named} raw, {into} the line{_around(before, after, at)}, "
                "where its SSE reader would end a line, and the SSE standard does not"
            )
        return A2AProtocolError(
            f"The remote agent {self.alias} sent {said}; the event is not read, so its reply "
            "cannot be read. Check that the remote speaks A2A 1.0 (its events as the "
            "protocol's JSON)."
        )

    def no_event(self) -> A2AProtocolError:
        """The error of an event whose result holds none of A2A's events (``{}``).

        It quotes what came (:attr:`came`): a remote of another version of A2A (whose
        fields the SDK's parse leaves aside), or of none, sends so.
        """
        what, came = self._what_came()
        return A2AProtocolError(
            f"The remote agent {self.alias} sent {what} whose result is none of a task, a "
            f"message, a status update or an artifact update: {came}. Its reply cannot be "
            "read; check that the remote speaks A2A 1.0 (a remote of another version names "
            "its events otherwise)."
        )

    def _what_came(self) -> tuple[str, str]:
        """What came (:attr:`came`): ``"an event"`` or ``"an answer"``, its first bytes quoted."""
        start, events = self.came
        what = "an event" if events else "an answer"
        return what, quoted_words(start.decode(errors="replace"), _SHOWN)

    def came_encoded(self, response: httpx.Response, coding: str) -> A2AError:
        """The error of a body that came encoded (``coding``: its ``Content-Encoding``), unread.

        None was asked for (see ``_unencoded``): httpx decodes a body after its bytes are
        counted, so no bound would hold on the decoded bytes the SDK reads (a few kB of
        gzip are gigabytes decoded). Not a byte of it is read. An HTTP error (not 2xx) is
        still the ``A2AHTTPError`` of its status; a card's is an ``A2ACardError``.
        """
        status = response.status_code
        how = (
            f"its body encoded as {quoted_words(coding, _SHOWN)} though it was asked for "
            "none (Accept-Encoding: identity)"
        )
        fix = (
            "Check that the remote, or a proxy before it, sends its bodies unencoded when "
            "asked so: an encoded body is not read, so that the bounds on what is read "
            "(max_event_bytes, max_event_values) hold."
        )
        if self.card:
            return A2ACardError(
                f"The agent card at {response.request.url} could not be read: it was answered "
                f"with HTTP {status} and {how}, which is not read. {fix}"
            )
        if not response.is_success:
            return A2AHTTPError(
                f"The remote agent {self.alias} answered HTTP {status} ({how}, not read). {fix}",
                status,
            )
        said = f"The remote agent {self.alias} answered HTTP {status} with {how}, not read. {fix}"
        writer = self.writer
        if writer is not None and not writer.task_id:  # (its exchange cancels no task, then)
            said += (
                " The task it started may still run: the remote named no task before, so "
                "none was cancelled."
            )
        return A2AProtocolError(said)

    def http_error(self, response: httpx.Response, start: bytes) -> A2AError:
        """The error of an HTTP error (not 2xx) whose body is over ``max_bytes``, cut there.

        ``start``: its body's first bytes, told quoted (``quoted_words``). A card's bound
        says it of the agent's card: an ``A2ACardError``.
        """
        status = response.status_code
        text = start.decode(errors="replace")
        came = f": {quoted_words(text, _SAID)}" if text.strip() else ""
        cut = f"its body was cut at max_event_bytes ({self.max_bytes} bytes), the rest not read"
        if self.card:
            return A2ACardError(
                f"The agent card at {response.request.url} could not be fetched: it was "
                f"answered with HTTP {status}{came} ({cut}). Check the URL (the agent's base "
                "URL, whose /.well-known/agent-card.json is its card)."
            )
        return A2AHTTPError(
            f"The remote agent {self.alias} answered HTTP {status}{came} ({cut}). Check "
            "that its URL is the A2A agent's and that the request carries the credentials "
            "it wants.",
            status,
        )

    def _refused(self, said: str, limit: str, start: bytes) -> A2AReplyTooLargeError:
        """The error ``said`` of ``limit``, naming the task (see the class docstring)."""
        writer = self.writer
        task_id = (writer.task_id if writer is not None else None) or _task_named(start)
        if writer is not None and not task_id:  # (its exchange cancels no task, then)
            said += (
                " The task it started may still run: the remote named no task before, nor "
                f"in {_searched(start)}, so none was cancelled."
            )
        return A2AReplyTooLargeError(said, limit=limit, task_id=task_id)


def _searched(start: bytes) -> str:
    """What was searched for a task's id: ``start``, the first bytes kept of a refused event.

    Said as it was: fewer than ``_START`` bytes are all that was read (of an event: of its
    data, none if its data had not begun).
    """
    if len(start) >= _START:
        return f"the first {_START} bytes of this"
    if not start:
        return "this, whose data had not begun"
    if len(start) == 1:
        return "the 1 byte of this that was read"
    return f"the {len(start)} bytes of this that were read"


_START = 4096
"""The bytes of an event (or an answer) kept to read its task's id from, if it is refused
(of an HTTP error's body: what its error shows, if it is cut; at most ``max_event_bytes``)."""

_SHOWN = 200
"""The most characters of a body that is no JSON that its error quotes."""

_AROUND = 60
"""The most characters on each side of a control character refused in an event's data that
its error quotes (see ``_around``)."""

_AROUND_BYTES = 4 * _AROUND
"""The bytes kept on each side of such a character: ``_AROUND`` characters of UTF-8 at most."""


def _around(before: bytes, after: bytes, at: int) -> str:
    """Where a character refused in an event's data is: the data around it, quoted.

    ``before`` and ``after``: the data's bytes on each side of it (of what was read), quoted
    ``_AROUND`` characters of each at most; ``at``: the bytes of the data before it (more
    than ``before`` holds, if it was cut). Said as the end of a sentence (``, between "…ab"
    and "cd…"``), nothing if both are empty. A character cut at the outer end of either side
    is left out; a side cut short is marked with "…" at its outer end.
    """
    cut = at > len(before)
    if cut:  # (its first bytes may be a character's last ones)
        before = before.lstrip(_CONTINUATION)
    shown_before = before.decode(errors="replace")
    shown_after = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(after)
    if cut or len(shown_before) > _AROUND:
        shown_before = "…" + shown_before[1 - _AROUND :]
    quoted_before = quoted_words(shown_before, _AROUND)
    quoted_after = quoted_words(shown_after, _AROUND)
    blank = quoted_words("", _AROUND)  # (of spaces and control characters alone, too)
    if quoted_before != blank and quoted_after != blank:
        return f", between {quoted_before} and {quoted_after}"
    if quoted_before != blank:
        return f", after {quoted_before}"
    return f", before {quoted_after}" if quoted_after != blank else ""


_CONTINUATION = bytes(range(0x80, 0xC0))
"""The bytes that go on a character of UTF-8 (none starts one)."""

_TASK_NAMED = re.compile(
    rb'"result"\s*:\s*\{\s*(?:"task"\s*:\s*\{\s*"id"|"(?:statusUpdate|artifactUpdate)"\s*:\s*\{\s*"taskId")'
    rb'\s*:\s*"([^"\\]{1,200})"'
)
"""Where a JSON-RPC answer (or event) names its task first: ``{"result": {"task": {"id": ...``
(as the SDK and MiniAgents write a task), or an update's ``taskId``."""


def _task_named(start: bytes) -> str:
    """The id of the task that an answer's (or event's) first bytes ``start`` name, or ``""``.

    Read from the text, not parsed: what a remote's answer refused as too large says of
    its task, so that the task can be cancelled.
    """
    found = _TASK_NAMED.search(start)
    return "" if found is None else found.group(1).decode(errors="replace")


def _is_json(media: str) -> bool:
    """Whether the media type ``media`` (lower case, no parameters) is JSON's."""
    return media.endswith(("/json", "+json"))


_BOM = b"\xef\xbb\xbf"


def _opens_object(start: bytes) -> bool | None:
    """Whether a body's first bytes ``start`` open a JSON object (``None``: not known yet).

    Spaces (and a UTF-8 byte order mark) before it are skipped: blank so far is not known.
    """
    if _BOM.startswith(start):
        return None
    text = start.removeprefix(_BOM).lstrip(b" \t\r\n")
    return text.startswith(b"{") if text else None


_LINE_END = re.compile(rb"\r\n|\n|\r")
"""What ends a line of an SSE stream: any of the line ends the standard allows."""

_SPLIT_BY_THE_SDK = re.compile(b"\xc2\x85|\xe2\x80[\xa8\xa9]")
"""The characters (UTF-8) at which the SDK's reader breaks a line of an SSE stream, and the
standard does not (U+0085, U+2028, U+2029), which JSON allows in its strings."""


_CONTROL_SPLIT = re.compile(b"[\x0b\x0c\x1c-\x1e]")
"""The control characters at which the SDK's reader (httpx's, as ``str.splitlines``) breaks a
line of an SSE stream, and the standard does not: JSON allows none of them raw (in a string,
only escaped), so an event's data holding one is no JSON, and is refused at it (see
:meth:`_EventBound.control_split`), before the SDK reads it otherwise than it was sent."""


def _escaped(found: re.Match[bytes]) -> bytes:
    """A character that ``_SPLIT_BY_THE_SDK`` found, as its JSON escape (``u`` and 4 digits)."""
    return b"\\u%04x" % ord(found.group().decode())


class _BoundedBody(httpx.AsyncByteStream):
    """A response's body, read through the counters of its :class:`_EventBound`.

    An SSE stream is read line by line, as the SDK reads it: an event's ``data`` lines are
    counted as they come (their values by a :class:`ValueCounter`, joined by a line end, as
    the SDK joins them), and the count starts again at its blank line. A body that is not
    a stream is counted whole, as it comes. Nothing of the body is kept but a line's first
    bytes, until they say its field, and an event's first bytes (where its task is named).
    Of an HTTP error (not 2xx) only the bytes are counted (and its first bytes kept, no more
    than the bound): one over the bound is read no further, and fails as the HTTP error it
    is, cut there; a success of another type than JSON or an event stream (of a text type:
    whose first bytes open no JSON object) fails once its first bytes are read (what came,
    for its error). A body that came encoded (gzip, ...: httpx would decode it after the
    counters) fails before a byte of it is read (:meth:`_EventBound.came_encoded`).

    An event whose blank line ends with a CR alone (the SSE standard allows CR, LF and CRLF)
    is given to the SDK with a LF after that CR (the same line end, CRLF): the SDK's reader
    holds a CR that ends what it is given until the next byte says whether a LF follows, so
    it would read the event only with the next one's bytes, when ``came`` names that one.
    A LF that does follow, at the next chunk's start, is not given again.

    A stream holding a control character at which the SDK's reader ends a line and the SSE
    standard does not (``_CONTROL_SPLIT``) is refused there (:meth:`_EventBound.control_split`),
    quoting the event that holds it. An event refused (that one, or one over a bound, or no
    JSON) fails the read once the events that ended before it, in the same chunk, are given
    (see ``_refuse``): the task they name is the one cancelled.
    """

    def __init__(
        self, body: httpx.AsyncByteStream, bound: _EventBound, response: httpx.Response
    ) -> None:
        self._body = body
        self._bound = bound
        self._response = response
        media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        self._events = media == "text/event-stream"
        self._json = response.is_success  # (its values are counted: the SDK parses it)
        typed = self._json and bool(media) and not self._events and not _is_json(media)
        self._text = typed and media.startswith("text/")  # (JSON if it opens an object)
        self._foreign = typed and not self._text  # (a success of another type: no A2A answer)
        self._pending = 0  # the bytes of the event read so far (of the body, if no stream)
        self._values = ValueCounter(bound.max_values)  # the event's values so far
        self._head = b""  # the line's bytes so far, until they say its field
        self._field: bytes | None = None  # b"data", or b"": another field (None: not known)
        self._space = False  # a data line's value starts after this (a space is dropped)
        self._data = False  # whether the event has data lines so far
        self._start = b""  # the event's first bytes (of its data): where its task is named
        # (of an HTTP error's body, what its error shows: no more than the bound lets be read)
        self._kept = _START if self._json else min(_START, bound.max_bytes)
        self._after_cr = False  # (a chunk ended with a CR: a LF at the next one's start is its)
        self._lf_given = False  # (the SDK was given a LF after the CR that ended the chunk)
        self._held = b""  # (a character's first bytes, held until it is whole: see _given)
        self._ended: list[tuple[int, bytes]] = []  # the chunk's events' ends, and first bytes
        # (a control character the SDK would end a line at, refused: with how many bytes of
        # the event's data (of its line, if in no data) come before it, their bytes around
        # it, and whether it is in the data)
        self._split: tuple[bytes, int, bytes, bytes, bool] | None = None
        self._data_bytes = 0  # the bytes of the event's data so far (its lines joined)
        self._tail = b""  # their last bytes (``_AROUND_BYTES``): what a refusal quotes
        self._line_bytes = 0  # the bytes of the line so far
        self._line_tail = b""  # their last bytes (``_AROUND_BYTES``), likewise
        # (what httpx would decode after the counters: refused)
        self._coding = encoded_with(response.headers.get_list("content-encoding"))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        bound = self._bound
        if self._coding:  # (before a byte is read: see _EventBound.came_encoded)
            raise bound.came_encoded(self._response, self._coding)
        async for chunk in self._body:
            self._count(chunk)
            if self._text:  # (a JSON-RPC answer labelled as text, or a page: its start says)
                opened = _opens_object(self._start)
                if opened is not None:
                    self._text, self._foreign = False, not opened
            if not self._json:
                if self._pending > bound.max_bytes:  # (an HTTP error's page: its error, cut there)
                    raise bound.http_error(self._response, self._start)
                yield chunk
                continue
            at = 0  # (each event given whole apart, so that `came` is the one the SDK reads)
            if self._lf_given and chunk:
                self._lf_given = False
                at = 1 if chunk.startswith(b"\n") else 0  # (given already: see below)
            for end, start in self._ended:
                bound.came = (start, True)
                if chunk[end - 1 : end] == b"\r":  # (a CR alone, or one that ends the chunk)
                    yield self._given(chunk[at:end] + b"\n")
                    self._lf_given = end == len(chunk)  # (a LF after it, if it comes, was given)
                else:
                    yield self._given(chunk[at:end])
                at = end
            self._ended.clear()
            self._refuse()  # (the events before it given: its task may be named)
            if not self._events:
                bound.came = (self._start, False)
                if at < len(chunk):
                    yield chunk[at:]
            elif at < len(chunk):
                given = self._given(chunk[at:])
                if given:
                    yield given
        if self._held:  # (a character's first bytes, and no more: the SDK's decoder says so)
            yield self._held
        if self._foreign or self._text:  # (a body shorter than what its error shows, or blank)
            raise bound.not_json(self._response, self._events, self._start)

    def _refuse(self) -> None:
        """Raise the error of what the body read so far holds that is refused, if it holds any.

        Its event (of a stream) over ``max_bytes`` or ``max_values``, no JSON, or holding a
        control character of ``_CONTROL_SPLIT``; of a success that is no stream, its body.
        Called once the events that ended before it (in the chunk read) are given: their task
        is the one the error names, and the one its exchange cancels.
        """
        bound = self._bound
        if self._pending > bound.max_bytes:
            raise bound.over(self._events, self._start, values=False)
        if self._values.not_json or (self._foreign and len(self._start) >= _SHOWN):
            raise bound.not_json(self._response, self._events, self._start)
        if self._values.over:
            raise bound.over(self._events, self._start, values=True)
        if self._split is not None:
            raise bound.control_split(*self._split)

    def _given(self, piece: bytes) -> bytes:
        """An event stream's ``piece`` as given to the SDK: its line breaks of Unicode escaped.

        The SDK's reader splits lines as ``str.splitlines`` does, at U+0085, U+2028 and
        U+2029 too, which the SSE standard does not (CR, LF and CRLF alone end a line), and
        JSON allows in its strings: each is given as its JSON escape (see ``_escaped``), the
        same string. Of a piece that ends within one of them, the first bytes are held for the
        next piece.
        """
        piece = self._held + piece
        held = 2 if piece.endswith(b"\xe2\x80") else int(piece.endswith((b"\xc2", b"\xe2")))
        self._held = piece[len(piece) - held :]
        return _SPLIT_BY_THE_SDK.sub(_escaped, piece[: len(piece) - held])

    def _count(self, chunk: bytes) -> None:
        if not self._json:  # (an HTTP error's body: the SDK does not parse it)
            self._pending += len(chunk)
            self._keep(chunk)  # (what its error shows, if it is cut)
            return
        if not self._events:
            self._pending += len(chunk)
            self._values.feed(chunk)
            self._keep(chunk)
            return
        if not chunk:
            return
        start = 1 if self._after_cr and chunk.startswith(b"\n") else 0
        before, began = self._pending, 0  # (the event's bytes before the chunk; where it goes on)
        for match in _LINE_END.finditer(chunk, start):
            self._take(chunk[start : match.start()])
            size = before + match.end() - began  # (the event's bytes to this line's end)
            if size > self._bound.max_bytes:  # (each event, though it ends in this chunk)
                self._pending = size
                return
            data, kept = self._data, self._start
            if self._line_ended():
                before, began = 0, match.end()
                if data:
                    self._ended.append((match.end(), kept))
            start = match.end()
            if self._values.over or self._values.not_json or self._split is not None:
                return  # (refused: its count is not started again at a blank line after it)
        self._take(chunk[start:])
        self._after_cr = chunk.endswith(b"\r")
        self._pending = before + len(chunk) - began

    def _take(self, piece: bytes) -> None:
        """Take a piece of the line being read: its field's, or its data's (counted)."""
        if not piece:
            return
        at_line, line_tail = self._line_bytes, self._line_tail  # (the line before it)
        self._line_bytes += len(piece)
        self._line_tail = (line_tail + piece[-_AROUND_BYTES:])[-_AROUND_BYTES:]
        data_from = 0 if self._field == b"data" else len(piece)  # (where its data begins)
        if self._field is None:
            head = self._head + piece
            colon = head.find(b":")
            if colon < 0:
                self._head = head if len(head) <= len(b"data") else b""
                if not self._head:
                    self._field = b""  # (no field's name is this long but data's)
            else:
                self._head = b""
                self._field = head[:colon] if head[:colon] == b"data" else b""
                if self._field:
                    data_from = colon + 1 - len(head) + len(piece)
                    if self._data:
                        self._fed(b"\n")  # (the SDK joins an event's data lines so)
                    self._data = True
                    self._space = True
        self._spot_line(piece, data_from, at_line, line_tail)
        piece = piece[data_from:]
        if piece:
            if self._space:
                self._space = False
                if piece.startswith(b" "):
                    piece = piece[1:]
            self._spot(piece)
            self._fed(piece)

    def _fed(self, piece: bytes) -> None:
        """Count a piece of the event's data, and keep what a refusal of it quotes."""
        self._values.feed(piece)
        self._keep(piece)
        self._data_bytes += len(piece)
        self._tail = (self._tail + piece)[-_AROUND_BYTES:]

    def _spot(self, piece: bytes) -> None:
        """Note the first control character of ``_CONTROL_SPLIT`` in a piece of an event's data.

        ``piece``: fed next (see ``_fed``). Noted if none was yet, with where it is in the
        data and the bytes around it (``_AROUND_BYTES`` on each side, of what was read): the
        stream is refused there.
        """
        if self._split is None:
            found = _CONTROL_SPLIT.search(piece)
            if found is not None:
                at = found.start()
                before = (self._tail + piece[:at])[-_AROUND_BYTES:]
                after = piece[at + 1 : at + 1 + _AROUND_BYTES]
                self._split = (found.group(), self._data_bytes + at, before, after, True)

    def _spot_line(self, piece: bytes, end: int, at_line: int, line_tail: bytes) -> None:
        """Note the first control character of ``_CONTROL_SPLIT`` in a line's piece of no data.

        ``piece[:end]``: of a line not of an event's data (its field's name, another field's
        value). Noted if none was yet, with where it is in its line (``at_line``: the line's
        bytes before the piece, ``line_tail`` their last ones) and the line's bytes around it.
        """
        if self._split is None:
            found = _CONTROL_SPLIT.search(piece, 0, end)
            if found is not None:
                at = found.start()
                before = (line_tail + piece[:at])[-_AROUND_BYTES:]
                after = piece[at + 1 : at + 1 + _AROUND_BYTES]
                self._split = (found.group(), at_line + at, before, after, False)

    def _keep(self, piece: bytes) -> None:
        if len(self._start) < self._kept:
            self._start += piece[: self._kept - len(self._start)]

    def _line_ended(self) -> bool:
        """End the line read; whether it ended an event (a blank line): its count ends."""
        blank = self._field is None and not self._head
        self._field, self._head, self._space = None, b"", False
        self._line_bytes, self._line_tail = 0, b""
        if not blank:
            return False
        if self._data:
            self._data = False
            self._values.reset()
            self._start = b""
            self._data_bytes, self._tail = 0, b""
        return True

    async def aclose(self) -> None:
        await self._body.aclose()


def _parts(message: Message) -> list[Part]:
    """An input message (or an answer's) as parts: a text, a file or data (see ``parts_of``).

    A text part says its role in its metadata, unless a user's.
    """
    if isinstance(message, A2AFile | A2AData):
        return [ParseDict(found, Part()) for found in parts_of(message)]
    part = Part(text=str(message))
    role = role_of(message)
    if role != "user":
        ParseDict({"role": role}, part.metadata)
    images = [ParseDict(found, Part()) for found in parts_of(message)]  # (its images)
    return [part, *images]


class _Exchange:
    """The requests of one interaction, and the reading of its task's events into the reply."""

    def __init__(
        self,
        remote: _Remote,
        ctx: InteractionContext,
        client: Client,
        bound: _EventBound,
        *,
        streams: bool,
    ) -> None:
        self.remote = remote
        self.client = client
        limits = remote.limits
        self.writer = ReplyWriter(
            ctx,
            ctx.this_agent.alias,
            max_chars=limits.max_reply_chars,
            max_messages=limits.max_reply_messages,
            questions=remote.questions,
        )
        bound.writer = self.writer  # (its errors name the task the reply read names)
        self.bound = bound
        self.ctx = ctx
        self.streams = streams  # (else: SendMessage returns at once, and GetTask is polled)

    def _sent(self, message: A2AWireMessage) -> AsyncIterator[StreamResponse]:
        self.writer.stream_begins(of_task=False)  # (it may answer with one message)
        request = SendMessageRequest(message=message)
        request.configuration.return_immediately = not self.streams
        return self.client.send_message(request)

    async def arun(self, parts: list[Part]) -> None:
        """Send ``parts`` to the remote, and read its task into the reply to its end.

        Within ``reply_timeout`` seconds; past it, the task is cancelled and the reply fails.
        """
        writer = self.writer
        limit = self.remote.reply_timeout
        late = False
        try:
            deadline = asyncio.timeout(limit if limit < math.inf else None)
            try:
                async with deadline:
                    await self._aexchange(parts)
            except TimeoutError as error:
                if not deadline.expired():
                    raise
                late = True
                cancelled = "; its task is cancelled" if writer.task_id else ""
                raise A2AConnectionError(
                    f"The remote agent {writer.alias} did not end its reply within "
                    f"reply_timeout ({limit:g} seconds){cancelled}. Give the agent a higher "
                    "reply_timeout if its replies take this long by design."
                ) from error
        except asyncio.CancelledError:
            try:
                await self._acancel_remote(writer.task_id, waiting=True)
            finally:  # (the reply's open messages end, whatever the cancel did)
                writer.fail_open(asyncio.CancelledError())
            raise
        except BaseException as error:
            task_id = writer.task_id
            if isinstance(error, A2AReplyTooLargeError):  # (an event over a bound names
                task_id = task_id or error.task_id or None  # the task: see _EventBound)
            try:  # (late: also a task that waits for its caller, who is not asked now)
                await self._acancel_remote(task_id, waiting=late)
            finally:
                writer.fail_open(error)
            raise

    async def _aexchange(self, parts: list[Part]) -> None:
        """The requests of the interaction, each answer read, until the task completes."""
        writer = self.writer
        first = A2AWireMessage(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=parts)
        events = self._sent(first)
        while True:
            await self._afollow(events)
            writer.check()  # (raises for a failed task, or a question it cannot answer)
            asks = writer.approvals()
            if asks:
                writer.take(asks)
                decided = await self._adecisions(asks)
                writer.answered_now()
                events = self._answered(decided)
                continue
            question = writer.question()
            if question is None:
                return  # completed
            self.ctx.reply(question)  # (the caller answers it)
            answer = await question.aanswer()
            writer.answered_now()
            events = self._sent(self._to_task([p for m in answer for p in _parts(m)]))

    async def _afollow(self, events: AsyncIterator[StreamResponse]) -> None:
        """Read ``events`` until the task ends or waits; follow it again where it broke.

        An agent that does not stream answers ``SendMessage`` at once: its task is then
        polled (``GetTask``) until it ends or waits.
        """
        writer = self.writer
        failures = 0
        following: AsyncIterator[StreamResponse] | None = events
        while True:
            cause: BaseException | None = None  # (None: it ended before the task did)
            again = following is None  # (followed again: its first event is the task as it
            try:  # stands, which is no progress unless it says something new)
                if following is None:
                    assert writer.task_id is not None  # (else it was not followed again)
                    following = await self._aresubscribed(writer.task_id)
                async for event in following:
                    if not event.WhichOneof("payload"):  # (else it would end as a broken stream)
                        raise self.bound.no_event()
                    if again:
                        read = (writer.chars, writer.messages, writer.state)
                        writer.read(event)
                        again = False
                        if (writer.chars, writer.messages, writer.state) != read:
                            failures = 0
                    else:
                        writer.read(event)
                        failures = 0
                    if writer.ended:
                        return
            except (A2AClientError, SDKError) as error:
                if _says_not_rpc(error):
                    raise self.bound.not_rpc(str(error)) from error
                if not _dropped(error):
                    raise _translated(error, writer.alias) from error
                cause = error
            except (ParseError, RecursionError) as error:  # (the SDK's parse of an event)
                raise _unreadable(writer.alias, error) from error
            except ValueError as error:  # (the SDK's, of a SendMessage answer of no task)
                if not _says_no_result(error):
                    raise
                raise self.bound.not_rpc(str(error), result=True) from error
            finally:
                if following is not None:
                    await _aclosed(following)
            following = None
            if cause is None and writer.task_id is not None and not self.streams:
                following = self._apolled(writer.task_id)  # (it answered at once: poll it)
                continue
            failures += 1
            if writer.task_id is None or failures > self.remote.reconnects:
                raise _broken(writer.alias, cause, failures - 1) from cause
            _log_following_again(writer.alias, cause)
            if failures > 1:
                await asyncio.sleep(0.5 * 2 ** (failures - 2))

    async def _aresubscribed(self, task_id: str) -> AsyncIterator[StreamResponse]:
        """The task's stream again; the task whole (``GetTask``) when it has ended."""
        task = await self.client.get_task(GetTaskRequest(id=task_id))
        self.writer.stream_begins(of_task=True)
        if task.status.state in _ENDED_STATES:
            return _one(StreamResponse(task=task))
        if not self.streams:
            return self._apolled(task_id)
        return self.client.subscribe(SubscribeToTaskRequest(id=task_id))

    async def _apolled(self, task_id: str) -> AsyncIterator[StreamResponse]:
        """The task as ``GetTask`` gives it, again and again, until it ends or waits.

        For an agent that does not stream: its artifacts come as often as it is asked
        (at first at once, then at most every 2 seconds).
        """
        delay = 0.05
        while True:
            task = await self.client.get_task(GetTaskRequest(id=task_id))
            yield StreamResponse(task=task)
            if task.status.state in _ENDED_STATES or task.status.state in _WAITING_STATES:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _adecisions(self, asks: list[ApprovalAsk]) -> list[tuple[str, ToolDecision]]:
        """Ask for each call's decision in the reply, and wait for them all."""
        requests = []
        for ask in asks:
            call = LLMToolCallMessage(
                tool_name=ask.tool_name, call_id=ask.call_id, arguments=ask.arguments
            )
            request = request_approval(
                call,
                request_class=LLMToolApprovalRequest,
                agent_alias=self.writer.alias,
            )
            self.ctx.reply(request)
            requests.append(request)
        return [(request.call_id, await request.adecision()) for request in requests]

    def _answered(self, decisions: list[tuple[str, ToolDecision]]) -> AsyncIterator[StreamResponse]:
        parts = []
        for call_id, decision in decisions:
            self.writer.decided.add(call_id)
            data: dict[str, object] = {"toolCallId": call_id, "approved": decision.approved}
            if decision.arguments is not None:
                data["arguments"] = dict(decision.arguments)
            if decision.reason is not None:
                data["reason"] = decision.reason
            part = Part(media_type="application/json")
            ParseDict(json.loads(json.dumps(data, default=str)), part.data)
            parts.append(part)
        return self._sent(self._to_task(parts))

    def _to_task(self, parts: list[Part]) -> A2AWireMessage:
        """A message of ``parts`` to the remote task (what answers it)."""
        return A2AWireMessage(
            message_id=str(uuid.uuid4()),
            role=Role.ROLE_USER,
            parts=parts,
            task_id=self.writer.task_id or "",
            context_id=self.writer.context_id or "",
        )

    async def _acancel_remote(self, task_id: str | None, *, waiting: bool = False) -> None:
        """Cancel the remote task ``task_id`` (within ``cancel_timeout``), if it may still run.

        ``waiting``: also if it waits for this caller (an answer nobody will give now).
        """
        if task_id is None or (self.writer.final if waiting else self.writer.ended):
            return
        try:
            await asyncio.wait_for(
                self.client.cancel_task(CancelTaskRequest(id=task_id)), self.remote.cancel_timeout
            )
        except (
            A2AClientError,
            SDKError,
            TimeoutError,
            A2AReplyTooLargeError,
            A2AProtocolError,  # (an answer our bounds refuse: no JSON, encoded)
            A2AHTTPError,  # (an HTTP error whose page they cut)
            ParseError,
            RecursionError,
        ) as error:  # it ended, or is unreachable (or answered what cannot be read)
            _logger.info(
                "Cancelling the task %s of %s failed (%s).",
                quoted_words(task_id, _ID_CHARS),
                self.writer.alias,
                _cause_words(error),
            )


_ENDED_STATES = frozenset({3, 4, 5, 7})  # TaskState: COMPLETED, FAILED, CANCELED, REJECTED
_WAITING_STATES = frozenset({6, 8})  # TaskState: INPUT_REQUIRED, AUTH_REQUIRED


async def _one(event: StreamResponse) -> AsyncIterator[StreamResponse]:
    yield event


async def _aclosed(events: AsyncIterator[StreamResponse]) -> None:
    close: Callable[[], object] | None = getattr(events, "aclose", None)
    if close is not None:
        closing = close()
        if asyncio.iscoroutine(closing):
            await closing


def _dropped(error: BaseException) -> bool:
    """Whether the SDK's ``error`` says the connection broke (or a read timed out)."""
    return isinstance(error, A2AClientTimeoutError) or isinstance(
        error.__cause__, httpx.TransportError
    )


def _broken(alias: str, cause: BaseException | None, retried: int) -> A2AConnectionError:
    """The error of a stream that broke (``cause``: how; ``None``: it ended too soon)."""
    again = f", and was followed again {retried} time(s) in vain" if retried else ""
    return A2AConnectionError(
        f"The stream of the remote agent {alias} {_how_broke(cause)}{again}; check that the "
        "agent is reachable (a2a_agent(..., reconnects=...) says how often to try again)."
    )


def _how_broke(cause: BaseException | None) -> str:
    """How a stream broke (``cause``; ``None``: it ended before its task), in words of ours.

    Its cause's words are quoted (``_cause_words``): our error and our log line say them so.
    """
    if cause is None:
        return "ended before its task"
    return f"broke ({_cause_words(cause.__cause__ or cause)})"


def _log_following_again(alias: str, cause: BaseException | None) -> None:
    """Log that the stream of the remote agent ``alias`` broke (``cause``), to be followed again."""
    _logger.info("The stream of %s %s; following it again.", alias, _how_broke(cause))


_ID_CHARS = 80
"""The most characters of a remote's task id that a log line of ours quotes."""

_CAUSE_CHARS = 300
"""The most characters of a broken connection's error's words that our error quotes."""


def _cause_words(cause: BaseException) -> str:
    """How a connection broke (a request failed), in words of ours: ``cause``'s type and words.

    The words of the transport's error may hold the remote's bytes (what it sent where the
    protocol wanted something else): quoted as ``quoted_words`` quotes them (one line,
    bounded), after the error's type, ours to name.
    """
    words = str(cause)
    kind = type(cause).__name__
    return f"{kind}: {quoted_words(words, _CAUSE_CHARS)}" if words.strip() else kind


def _says_not_rpc(error: BaseException) -> bool:
    """Whether the SDK's ``error`` says a success (or an event) was no JSON-RPC answer.

    No JSON (an answer, or an event's data): the SDK's ``A2AClientError`` raised from the
    ``json.JSONDecodeError``, told by that cause whatever its words. JSON that is no JSON-RPC
    answer (not an object, of neither ``result`` nor ``error``, an ``error`` that is no
    object): a bare ``A2AClientError`` of no subclass, code nor cause, so told by its first
    words (``_NOT_RPC``), the only sign the SDK gives; a remote cannot put words there (the
    SDK's errors of a remote's words begin with words of its own).
    """
    if not isinstance(error, A2AClientError):
        return False
    if isinstance(error.__cause__, json.JSONDecodeError):
        return True
    return type(error) is A2AClientError and str(error).startswith(_NOT_RPC)


_NOT_RPC = "Invalid JSON-RPC response: "
"""How the SDK's error of JSON that is no JSON-RPC answer begins (a2a-sdk 1.3.0, its JSON-RPC
transport's check of an answer or event): the only sign it gives of it (see ``_says_not_rpc``;
a test pins them, so that an SDK that words it otherwise fails it instead of letting such an
answer be told as the remote failing the request)."""

_NO_RESULT = "Response has neither task nor message"
"""What the SDK's ``ValueError`` of a ``SendMessage`` answer of no task nor message says, whole
(a2a-sdk 1.3.0, ``BaseClient.send_message``): a bare ``ValueError``, of no type, code nor cause
of its own, so told by its words (see ``_says_no_result``; a test pins them, so that an SDK
that words it otherwise fails it instead of letting the ``ValueError`` out)."""


def _says_no_result(error: ValueError) -> bool:
    """Whether ``error`` is the SDK's of a ``SendMessage`` answer of no task nor message.

    Told by its type (a bare ``ValueError``) and its words, whole (``_NO_RESULT``): no
    subclass (ours, protobuf's) nor a sentence that merely holds them (a remote's words
    quoted) is taken for it.
    """
    return type(error) is ValueError and str(error) == _NO_RESULT


_TOO_DEEP = "Message too deep. Max recursion depth is "
"""How protobuf's ``ParseError`` of JSON nested past its parser's depth begins (protobuf 7.36.2,
``json_format._Parser.ConvertMessage``): an error of no type of
its own, so told by its words (see ``_nested_too_deep``; a test pins them)."""


def _nested_too_deep(error: ParseError | RecursionError) -> bool:
    """Whether ``error`` (the SDK's parse of an event) says the event is nested too deep.

    Python's ``RecursionError`` (its ``json.loads``), or protobuf's ``ParseError`` whose first
    cause (each field's parse wraps its field's error, ``raise ... from``) begins with
    ``_TOO_DEEP``: the words of that first error are protobuf's own from their start, where
    the wrapping errors' words quote the remote's (a field's name, a wrong value), which may
    say "too deep" anywhere.
    """
    if isinstance(error, RecursionError):
        return True
    first: BaseException = error
    while isinstance(first.__cause__, ParseError):
        first = first.__cause__
    return first.__cause__ is None and str(first).startswith(_TOO_DEEP)


_PARSER_SAID = 300
"""The most characters of the parser's words on an event it could not read that its error
quotes (they may hold the remote's bytes: quoted as ``quoted_words`` quotes them)."""


def _unreadable(alias: str, error: ParseError | RecursionError) -> A2AProtocolError:
    """The error of an event (or answer) of the remote that the SDK could not parse."""
    how = (
        "nested too deep to be read"
        if _nested_too_deep(error)
        else f"not of A2A's types (its parser said {quoted_words(str(error), _PARSER_SAID)})"
    )
    return A2AProtocolError(
        f"The remote agent {alias} sent an event that cannot be read: it is {how}. Its "
        "reply cannot be read; check that the remote speaks A2A 1.0 (its events as the "
        "protocol's JSON, a data part's JSON at most 100 levels deep)."
    )


def _translated(error: BaseException, alias: str) -> A2AError:
    """The SDK's ``error`` as this library's (see :mod:`miniagents.ext.a2a.errors`)."""
    if isinstance(error, A2AError):
        return error
    cause = error.__cause__
    if isinstance(error, A2AClientTimeoutError) or isinstance(cause, httpx.TransportError):
        return A2AConnectionError(
            f"The connection to the remote agent {alias} broke or timed out "
            f"({_cause_words(cause or error)})."
        )
    if isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code
        return A2AHTTPError(
            f"The remote agent {alias} answered HTTP {status}{_body(cause.response)}", status
        )
    if isinstance(error, SDKError) and not isinstance(error, A2AClientError):
        code = JSON_RPC_ERROR_CODE_MAP.get(type(error), Code.INTERNAL)
        said = (
            f"The remote agent {alias} refused the request ({code}): "
            f"{quoted_words(str(error.message), _SAID)}."
        )
        data = error.data
        if code == Code.TASK_NOT_FOUND:
            return A2ATaskNotFoundError(said, code, data)
        if code in _INVALID:
            return A2AInvalidRequestError(said, code, data)
        if code in _UNSUPPORTED:
            return A2AUnsupportedOperationError(said, code, data)
        return A2ARemoteError(said, code, data)
    said = str(error)
    if type(error) is A2AClientError and said.startswith(_ERROR_EVENT):  # (its words, ours)
        return A2ARemoteError(
            f"The remote agent {alias} ended its stream with an error event (an SSE event "
            "named error) whose data is no JSON-RPC error: "
            f"{quoted_words(said.removeprefix(_ERROR_EVENT), _SAID)}. Its reply ends there; "
            "ask the remote's operator what failed.",
            Code.INTERNAL,
        )
    return A2ARemoteError(
        f"The remote agent {alias} failed the request: {quoted_words(said, _SAID)}.",
        Code.INTERNAL,
    )


_ERROR_EVENT = "SSE stream error: "
"""How the SDK's error of a stream's error event whose data is no JSON-RPC error begins
(a2a-sdk 1.3.0, its JSON-RPC transport's ``_handle_sse_error``), the event's data after it: a
bare ``A2AClientError`` of no subclass, code nor cause, so told by its first words (a test
pins them), its data quoted in a sentence of ours."""


_SAID = 500
"""The most characters of the remote's words (an HTTP error's body, its JSON-RPC error's
message) that the error of a request it refused quotes."""


def _body(response: httpx.Response) -> str:
    """The end of the sentence of an HTTP error: its body's text, quoted (``quoted_words``)."""
    try:
        text = response.text
    except httpx.ResponseNotRead:
        return " (its body was not read)."
    return f": {quoted_words(text, _SAID)}." if text.strip() else " (with no body)."
