"""An agent's reply read in order, as the parts both protocols describe: texts, calls, results.

Each message of the reply is read as it streams, in the order a reader of the reply sees
them: a ``ToolCallMessage`` is a tool call (its tokens: the arguments' JSON as the model
writes it), a ``ToolApprovalRequest`` a call that waits for a person's decision, a
``ToolResultMessage`` a tool's result (its tokens: the tool's output, e.g. a sub-agent's
reply, as it is produced), an ``InputRequest`` the agent's question to its caller (read
whole: ``InputAsked``, where a protocol whose clients answer pauses the run), any other
message a text (its ``TextStart`` says its class, for a protocol that sends some classes
otherwise than as text). Before a result whose call still waits for its decision, an
``AwaitingApproval`` says that the reader of the reply can go no further until someone
decides (where the protocols' own approval flows pause the run). A result that tells the
model a tool's exception is read as its clients are told it (:class:`ToldResult`): the
exception's class and a reference, not its text, unless the app tells error texts.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeAlias

from miniagents.ext.input_requests import InputRequest
from miniagents.ext.told_errors import ToldResult
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.frozen.model import plain
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise

__all__ = [
    "ApprovalAsked",
    "AwaitingApproval",
    "CallDelta",
    "CallEnd",
    "CallStart",
    "InputAsked",
    "Part",
    "ReadPart",
    "ResultDelta",
    "ResultEnd",
    "ResultStart",
    "TextDelta",
    "TextEnd",
    "TextStart",
    "as_text",
    "plain",
    "reply_parts",
]


@dataclass(frozen=True)
class TextStart:
    message_id: str
    role: str
    agent_alias: str | None
    message_class: type[Message] = Message  # (the promise's: a protocol may send some apart)


@dataclass(frozen=True)
class TextDelta:
    message_id: str
    delta: str


@dataclass(frozen=True)
class TextEnd:
    message_id: str
    message: Message | None = None  # the whole message, for its fields (an LLM's usage)


@dataclass(frozen=True)
class CallStart:
    call_id: str
    tool_name: str


@dataclass(frozen=True)
class CallDelta:
    call_id: str
    delta: str


@dataclass(frozen=True)
class CallEnd:
    call_id: str
    tool_name: str
    arguments: dict[str, object]
    text: str


@dataclass(frozen=True)
class ApprovalAsked:
    call_id: str
    tool_name: str
    arguments: dict[str, object]
    request: ToolApprovalRequest


@dataclass(frozen=True)
class AwaitingApproval:
    call_id: str
    request: ToolApprovalRequest


@dataclass(frozen=True)
class ResultStart:
    call_id: str
    tool_name: str
    message_id: str


@dataclass(frozen=True)
class ResultDelta:
    call_id: str
    message_id: str
    delta: str


@dataclass(frozen=True)
class ResultEnd:
    call_id: str
    tool_name: str
    message_id: str
    text: str
    is_error: bool
    denied: bool


@dataclass(frozen=True)
class InputAsked:
    message_id: str
    request: InputRequest  # (the agent's question, whole; pending while the agent waits)


Part: TypeAlias = (
    TextStart
    | TextDelta
    | TextEnd
    | CallStart
    | CallDelta
    | CallEnd
    | ApprovalAsked
    | AwaitingApproval
    | ResultStart
    | ResultDelta
    | ResultEnd
)
"""A part of a reply, as a protocol's encoder writes it."""

ReadPart: TypeAlias = Part | InputAsked
"""A part of a reply as it is read: a question is the run manager's (see ``InputAsked``)."""


async def reply_parts(
    reply: MessageSequencePromise[Message],
    id_prefix: str,
    *,
    approvals_last: bool = False,
    error_texts: bool,
) -> AsyncGenerator[ReadPart, None]:
    """The parts of ``reply``, each as soon as it is known (ids are ``{id_prefix}-{n}``).

    A tool's result is its clients' (:class:`~miniagents.ext.told_errors.ToldResult`): a
    tool's exception, not written for the model, is told as its class and the reference the
    log has it under, unless ``error_texts``.

    The parts keep the reply's order of messages, unless ``approvals_last``: then, in a
    round of tool calls, the results of the calls that asked for no approval come before
    the results of the calls that did (whose ``AwaitingApproval`` is where a run pauses).
    So when a run pauses, every call of the round that can run has its result, as the AI
    SDK's ``useChat`` needs: it sends the approvals back only once each call of the last
    step has an output or an approval response. (The LLM agents put a round's results in
    the reply at once, so reading past a result that waits never waits for its decision;
    the pause waits for the other calls of the round to end, as the AI SDK's own agents
    do.)

    An error of the reply (an agent's exception) is raised after the parts before it.

    Closed early (its reader stopped part-way), it closes the generators it reads from
    before it ends, each where it was suspended.
    """
    reader = _Reader(reply, id_prefix, approvals_last, error_texts)
    async with aclosing(reader.parts()) as read:
        async for part in read:
            yield part


class _Reader:
    """Reads a reply's messages in order, one ahead where a round's results are reordered."""

    def __init__(
        self,
        reply: MessageSequencePromise[Message],
        id_prefix: str,
        approvals_last: bool,
        error_texts: bool,
    ) -> None:
        self._numbers = itertools.count()
        self._error_texts = error_texts  # (a tool's exception: its text, or told apart)
        self._id_prefix = id_prefix
        self._approvals_last = approvals_last
        self._asked: dict[str, ToolApprovalRequest] = {}
        self._unanswered: list[str] = []  # the calls of the round so far without results
        self._promises = aiter(reply)
        self._later: _Numbered | None = None  # read ahead, and not a result of the round

    async def _anext(self) -> _Numbered | None:
        try:
            promise = await anext(self._promises)
        except StopAsyncIteration:
            return None
        return _Numbered(promise, f"{self._id_prefix}-{next(self._numbers)}")

    async def parts(self) -> AsyncGenerator[ReadPart, None]:
        """The parts of the reply's messages, in order (see :func:`reply_parts`)."""
        while (read := self._later or await self._anext()) is not None:
            self._later = None
            promise, message_id = read.promise, read.message_id
            message_class = promise.message_class
            if issubclass(message_class, ToolCallMessage):
                self._unanswered.append(_field(promise, "call_id", message_id))
                async with aclosing(_call_parts(promise, message_id)) as call_parts:
                    async for part in call_parts:
                        yield part
            elif issubclass(message_class, ToolApprovalRequest):
                request = await promise
                if isinstance(request, ToolApprovalRequest):
                    self._asked[request.call_id] = request
                    yield _approval_asked(request)
            elif issubclass(message_class, ToolResultMessage):
                async with aclosing(self._results(read)) as results:
                    async for part in results:
                        yield part
            elif issubclass(message_class, InputRequest):
                self._unanswered.clear()  # (a question: the round is over)
                request = await promise
                if isinstance(request, InputRequest):
                    yield InputAsked(message_id, request)
            else:
                self._unanswered.clear()  # (a text: the round is over)
                async with aclosing(_text_parts(promise, message_id)) as text_parts:
                    async for part in text_parts:
                        yield part

    async def _results(self, read: _Numbered) -> AsyncGenerator[Part, None]:
        """A result's parts; if it may wait for a decision, the round's that wait for none first."""
        asked, unanswered = self._asked, self._unanswered
        call_id = _field(read.promise, "call_id", read.message_id)
        _answered(unanswered, call_id)
        held = [read]
        while (
            self._approvals_last
            and call_id in asked
            and any(call not in asked for call in unanswered)
        ):
            ahead = await self._anext()
            if ahead is None:
                break
            ahead_call = _field(ahead.promise, "call_id", ahead.message_id)
            if not issubclass(ahead.promise.message_class, ToolResultMessage) or (
                ahead_call not in unanswered
            ):
                self._later = ahead
                break
            _answered(unanswered, ahead_call)
            if ahead_call in asked:
                held.append(ahead)
                continue
            async with aclosing(_result_parts(ahead, asked, self._error_texts)) as result_parts:
                async for part in result_parts:
                    yield part
        for result in held:
            async with aclosing(_result_parts(result, asked, self._error_texts)) as result_parts:
                async for part in result_parts:
                    yield part


def _approval_asked(request: ToolApprovalRequest) -> ApprovalAsked:
    return ApprovalAsked(request.call_id, request.tool_name, _arguments(request.arguments), request)


def _arguments(arguments: object) -> dict[str, object]:
    """A call's arguments as a plain dict (``{}`` for arguments that are no mapping)."""
    plain_arguments = plain(arguments)
    return plain_arguments if isinstance(plain_arguments, dict) else {}


@dataclass(frozen=True)
class _Numbered:
    """A message of the reply, with its id in the parts."""

    promise: MessagePromise[Message]
    message_id: str


def _answered(unanswered: list[str], call_id: str) -> None:
    if call_id in unanswered:
        unanswered.remove(call_id)


def _field(promise: MessagePromise[Message], name: str, default: str) -> str:
    value = promise.metadata.get(name)
    return value if isinstance(value, str) else default


def as_text(asked: InputAsked) -> list[Part]:
    """An agent's question as the parts of a text (for a protocol whose clients answer none)."""
    request = asked.request
    alias = getattr(request, "agent_alias", None)
    started = TextStart(
        asked.message_id, request.role, alias if isinstance(alias, str) else None, type(request)
    )
    text = str(request)
    said = [TextDelta(asked.message_id, text)] if text else []
    return [started, *said, TextEnd(asked.message_id, request)]


async def _text_parts(
    promise: MessagePromise[Message], message_id: str
) -> AsyncGenerator[Part, None]:
    alias = promise.metadata.get("agent_alias")
    yield TextStart(
        message_id,
        _field(promise, "role", "assistant"),
        alias if isinstance(alias, str) else None,
        promise.message_class,
    )
    streamed = False
    async for token in promise:
        if token:
            streamed = True
            yield TextDelta(message_id, token)
    message = await promise
    if not streamed:  # a message of no tokens: its text, as str() shows it
        text = str(message)
        if text:
            yield TextDelta(message_id, text)
    yield TextEnd(message_id, message)


async def _call_parts(
    promise: MessagePromise[Message], message_id: str
) -> AsyncGenerator[Part, None]:
    call_id = _field(promise, "call_id", message_id)
    tool_name = _field(promise, "tool_name", "")
    yield CallStart(call_id, tool_name)
    async for token in promise:
        if token:
            yield CallDelta(call_id, token)
    message = await promise
    if isinstance(message, ToolCallMessage):
        arguments = _arguments(message.arguments)
        yield CallEnd(message.call_id, message.tool_name, arguments, message.text or "")
    else:  # pragma: no cover - a promise of ToolCallMessage resolves to one
        yield CallEnd(call_id, tool_name, {}, str(message))


async def _result_parts(
    read: _Numbered, asked: Mapping[str, ToolApprovalRequest], error_texts: bool
) -> AsyncGenerator[Part, None]:
    promise, message_id = read.promise, read.message_id
    call_id = _field(promise, "call_id", message_id)
    tool_name = _field(promise, "tool_name", "")
    request = asked.get(call_id)
    if request is not None and request.pending:
        yield AwaitingApproval(call_id, request)
    yield ResultStart(call_id, tool_name, message_id)
    told = ToldResult(promise, error_texts=error_texts)
    async with aclosing(told.tokens()) as tokens:
        async for token in tokens:
            yield ResultDelta(call_id, message_id, token)
    message = await promise
    is_error = isinstance(message, ToolResultMessage) and message.is_error
    denied = is_error and request is not None and not request.pending
    if denied and request is not None:  # decided: its decision is there, no wait
        denied = not await _approved(request)
    yield ResultEnd(call_id, tool_name, message_id, told.text, is_error, denied)


async def _approved(request: ToolApprovalRequest) -> bool:
    """Whether ``request``, decided, was approved (a decision cancelled with its run was not).

    Its decision is done, so awaiting it does not suspend (no cancellation of ours lands here).
    """
    try:
        return (await request.adecision()).approved
    except asyncio.CancelledError:
        return False
