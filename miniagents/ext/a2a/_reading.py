"""A remote task's events read into the reply of an ``a2a_agent`` interaction, token by token.

Each artifact of the task becomes a message of the reply as soon as its first chunk comes
(its kind, said in MiniAgents' metadata, picks the class: a text is an ``A2AMessage``, a
tool call an ``LLMToolCallMessage``, a tool's result an ``LLMToolResultMessage``; another
server's artifacts are texts), each chunk's text its next token, and its last chunk (or the
task's end) ends it. A ``Task`` event (the first of a stream, and what ``GetTask`` gives)
is read against what was read before: an artifact's text that goes on from what the reply
has goes on from there, so a stream that broke and was followed again gives each token
once; a text that does not go on from it breaks the protocol.

What a remote sends is bounded: the reply's texts hold at most ``max_chars`` characters in
all, and it has at most ``max_messages`` messages (artifacts, and calls that wait for
approval); one more fails the reply with ``A2AReplyTooLargeError``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from a2a.types import (
    Artifact,
    Message,
    Part,
    StreamResponse,
    Task,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from google.protobuf.json_format import MessageToDict

from miniagents.ext.a2a._wire import (
    APPROVAL_REQUEST,
    CANCELED,
    COMPLETED,
    FINAL_STATES,
    PAUSED_STATES,
    TOOL_CALL,
    TOOL_RESULT,
    WORKING,
    ours,
    usage_of,
)
from miniagents.ext.a2a.errors import (
    A2AInputRequiredError,
    A2AProtocolError,
    A2AReplyTooLargeError,
    A2ATaskCanceledError,
    A2ATaskFailedError,
)
from miniagents.ext.a2a.messages import A2AMessage
from miniagents.ext.llm.messages import LLMToolCallMessage, LLMToolResultMessage
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.message import Message as MiniMessage
from miniagents.miniagents.agent import InteractionContext

__all__ = ["ApprovalAsk", "ReplyWriter"]

_MESSAGES = "messages (artifacts and approval requests)"
"""What ``max_messages`` counts, for its error."""

MESSAGE_STATE = "MESSAGE"
"""The state of a reply the remote gave as one message, with no task (it has ended)."""


@dataclass(frozen=True)
class ApprovalAsk:
    """A call of the remote task that waits for a person's decision."""

    call_id: str
    tool_name: str
    arguments: Mapping[str, object]


class _Open:
    """An artifact being read: the message it streams into."""

    __slots__ = ("appender", "kind", "metadata")

    def __init__(self, appender: MessageTokenAppender[MiniMessage], kind: str) -> None:
        self.appender = appender
        self.kind = kind
        self.metadata: dict[str, object] = {}


class ReplyWriter:
    """Reads one remote task's events into an interaction's reply (see the module docstring).

    Args:
        ctx: The interaction whose reply it writes.
        alias: The ``a2a_agent``'s alias: the ``agent_alias`` of texts the remote names none of.
        max_chars: The most characters the reply's texts hold, in all.
        max_messages: The most messages the reply has (artifacts, and approval requests).
    """

    def __init__(
        self, ctx: InteractionContext, alias: str, *, max_chars: int, max_messages: int
    ) -> None:
        self.ctx = ctx
        self.alias = alias
        self.max_chars = max_chars
        self.max_messages = max_messages
        self.chars = 0  # the characters of the reply's texts so far
        self.messages = 0  # the reply's messages so far
        self.task_id: str | None = None
        self.context_id: str | None = None
        self.state: str | None = None
        self._status: TaskStatus | None = None
        self._status_metadata: Mapping[str, object] = {}
        self._open: dict[str, _Open] = {}
        self._seen: set[str] = set()  # the artifacts read (open or ended)
        self.decided: set[str] = set()  # the calls whose decisions were sent
        task = asyncio.current_task()
        assert task is not None  # (an interaction runs in its task)
        self._task = task

    @property
    def ended(self) -> bool:
        """Whether the task has ended or waits for the client (its stream ends there)."""
        state = self.state
        return state is not None and (
            state in FINAL_STATES or state in PAUSED_STATES or state == MESSAGE_STATE
        )

    def read(self, event: StreamResponse) -> None:
        """Read one event of the task's stream.

        Raises:
            A2AProtocolError: if it is of another task, or a text breaks with what was read.
        """
        which = event.WhichOneof("payload")
        if which == "artifact_update":  # (the most frequent first)
            update = event.artifact_update
            self._own(update.task_id, update.context_id)
            self._artifact(update.artifact, update.append, update.last_chunk)
        elif which == "status_update":
            update_status = event.status_update
            self._own(update_status.task_id, update_status.context_id)
            metadata = (
                MessageToDict(update_status.metadata) if update_status.HasField("metadata") else {}
            )
            self._state(update_status.status, metadata)
        elif which == "task":
            self.read_task(event.task)
        elif which == "message":
            self._message(event.message)

    def read_task(self, task: Task) -> None:
        """Read a task as it stands (a stream's first event, or what ``GetTask`` gave)."""
        self._own(task.id, task.context_id)
        state = TaskState.Name(task.status.state)
        ended = state in FINAL_STATES or state in PAUSED_STATES
        artifacts = list(task.artifacts)
        for place, artifact in enumerate(artifacts):
            done = ended or place < len(artifacts) - 1
            self._whole(artifact, done)
        metadata = MessageToDict(task.metadata) if task.HasField("metadata") else {}
        self._state(task.status, metadata)

    # -- the task's state ---------------------------------------------------------------------

    def _own(self, task_id: str, context_id: str) -> None:
        if self.task_id is None:
            self.task_id = task_id or None
            self.context_id = context_id or None
        elif task_id and task_id != self.task_id:
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent an event of the task {task_id!r} in the "
                f"stream of the task {self.task_id!r}; a stream is one task's."
            )

    def _state(self, status: TaskStatus, metadata: Mapping[str, object]) -> None:
        state = TaskState.Name(status.state)
        self.state = state
        self._status = status
        self._status_metadata = metadata
        asked = self._asked()
        if asked and all(ask.call_id in self.decided for ask in asked):
            self.state = WORKING  # (a task as it stood before it took the decisions sent)
        if state == COMPLETED:
            self._end_all()

    def check(self) -> None:
        """Raise the error of a task that failed, was cancelled, or asks a question.

        Raises:
            A2ATaskFailedError: it failed or was rejected (``A2ATaskCanceledError``: cancelled).
            A2AInputRequiredError: it asks for input other than approvals, or for
                authentication.
        """
        state = self.state
        if state is None or state in (COMPLETED, MESSAGE_STATE):
            return
        said = _text(self._status.message.parts) if self._status is not None else ""
        task_id = self.task_id or ""
        if state in FINAL_STATES:
            if state == CANCELED:
                raise A2ATaskCanceledError(
                    f"The task {task_id!r} of the remote agent {self.alias} was cancelled "
                    f"there before it completed{_said(said)}",
                    task_id=task_id,
                    state=state,
                )
            remote_type = ours(self._status_metadata).get("errorType")
            named = f" ({remote_type})" if isinstance(remote_type, str) else ""
            raise A2ATaskFailedError(
                f"The task {task_id!r} of the remote agent {self.alias} ended "
                f"{state.removeprefix('TASK_STATE_').lower()}{named}{_said(said)}",
                task_id=task_id,
                state=state,
                remote_type=remote_type if isinstance(remote_type, str) else None,
            )
        if state in PAUSED_STATES and not self.approvals():
            raise A2AInputRequiredError(
                f"The remote agent {self.alias} asks for "
                f"{'authentication' if state != 'TASK_STATE_INPUT_REQUIRED' else 'input'} "
                f"that this agent cannot give (its task {task_id!r} waits for it)"
                f"{_said(said)} Call it with everything it needs in the first message.",
                task_id=task_id,
                context_id=self.context_id or "",
                state=state,
                question=said,
            )

    def approvals(self) -> list[ApprovalAsk]:
        """The calls the task waits for the decisions of (a MiniAgents server's approvals)."""
        if self.state not in PAUSED_STATES:
            return []
        return [ask for ask in self._asked() if ask.call_id not in self.decided]

    def take(self, asks: Sequence[ApprovalAsk]) -> None:
        """Count ``asks`` among the reply's messages (each becomes an approval request in it).

        Raises:
            A2AReplyTooLargeError: if they make the reply more messages than it may have.
        """
        self._count(0, len(asks))

    def _count(self, chars: int, messages: int) -> None:
        """Count what the reply takes in; refuse what goes over its limits.

        Raises:
            A2AReplyTooLargeError: if the reply would go over ``max_chars`` or ``max_messages``.
        """
        self.chars += chars
        self.messages += messages
        if self.chars <= self.max_chars and self.messages <= self.max_messages:
            return  # (each token comes here: the usual case first)
        for taken, most, what, limit in (
            (self.chars, self.max_chars, "characters of text", "max_reply_chars"),
            (self.messages, self.max_messages, _MESSAGES, "max_reply_messages"),
        ):
            if taken > most:
                task = f"its task {self.task_id!r}" if self.task_id else "its reply"
                raise A2AReplyTooLargeError(
                    f"The remote agent {self.alias} sent over {most} {what} in {task}, the "
                    f"most this a2a_agent takes; give the agent a higher {limit} if such a "
                    "reply is expected (or ask the remote for less).",
                    task_id=self.task_id or "",
                    limit=limit,
                )

    def _asked(self) -> list[ApprovalAsk]:
        if self._status is None or TaskState.Name(self._status.state) not in PAUSED_STATES:
            return []
        asks: list[ApprovalAsk] = []
        for part in self._status.message.parts:
            if part.WhichOneof("content") != "data":
                continue
            data = MessageToDict(part).get("data")
            asked = data.get(APPROVAL_REQUEST) if isinstance(data, dict) else None
            if not isinstance(asked, dict):
                continue
            call_id, tool_name = asked.get("toolCallId"), asked.get("toolName")
            arguments = asked.get("arguments")
            if isinstance(call_id, str) and isinstance(tool_name, str):
                arguments = arguments if isinstance(arguments, dict) else {}
                asks.append(ApprovalAsk(call_id, tool_name, arguments))
        return asks

    # -- artifacts ----------------------------------------------------------------------------

    def _artifact(self, artifact: Artifact, append: bool, last: bool) -> None:
        artifact_id = artifact.artifact_id
        opened = self._open.get(artifact_id)
        if opened is None or not append:
            if opened is None and artifact_id in self._seen:
                return  # (a chunk of an artifact that has ended: nothing more is its)
            self._whole(artifact, last)
            return
        metadata = ours(MessageToDict(artifact.metadata)) if artifact.HasField("metadata") else {}
        opened.metadata.update(metadata)
        for part in artifact.parts:
            token = _part_text(part)
            if token:
                self._count(len(token), 0)
                opened.appender.append(token)
        if last:
            self._end(artifact_id)

    def _whole(self, artifact: Artifact, done: bool) -> None:
        """An artifact as it stands: what goes on from the reply's message, or a new message."""
        artifact_id = artifact.artifact_id
        metadata = ours(MessageToDict(artifact.metadata)) if artifact.HasField("metadata") else {}
        text = _text(artifact.parts)
        opened = self._open.get(artifact_id)
        if opened is None:
            if artifact_id in self._seen:
                return  # (read whole already)
            opened = self._start(artifact_id, artifact.name, metadata)
            had = ""
        else:
            had = opened.appender.appended
        opened.metadata.update(metadata)
        if not text.startswith(had):
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent the artifact {artifact_id!r} of its task "
                f"{self.task_id!r} with a text that does not go on from the {len(had)} "
                "characters sent before; an artifact's text only grows."
            )
        if len(text) > len(had):
            self._count(len(text) - len(had), 0)
            opened.appender.append(text[len(had) :])
        if done or opened.metadata.get("done") is True:
            self._end(artifact_id)

    def _start(self, artifact_id: str, name: str, metadata: Mapping[str, object]) -> _Open:
        self._count(0, 1)
        kind = metadata.get("kind")
        common: dict[str, object] = {
            "agent_alias": _string(metadata.get("agentAlias")) or self.alias,
            "task_id": self.task_id,
            "context_id": self.context_id,
        }
        appender: MessageTokenAppender[MiniMessage]
        if kind in (TOOL_CALL, TOOL_RESULT):
            message_class = LLMToolCallMessage if kind == TOOL_CALL else LLMToolResultMessage
            appender = MessageTokenAppender(
                message_class=message_class,
                tool_name=_string(metadata.get("toolName")) or name,
                call_id=_string(metadata.get("toolCallId")) or artifact_id,
                **common,
            )
        else:
            kind = "text"
            role = _string(metadata.get("role")) or "assistant"
            appender = MessageTokenAppender(
                message_class=A2AMessage, role=role, artifact_id=artifact_id, **common
            )
        appender.cancel_when_abandoned(self._task)
        opened = self._open[artifact_id] = _Open(appender, kind)
        self._seen.add(artifact_id)
        self.ctx.reply(appender.promise)
        return opened

    def _end(self, artifact_id: str) -> None:
        opened = self._open.pop(artifact_id, None)
        if opened is None or opened.appender.closed:
            return
        metadata = opened.metadata
        if opened.kind == "text":
            usage = usage_of(metadata.get("usage"))
            found: dict[str, object] = {}
            if usage is not None:
                found["usage"] = usage
            for key, field in (("model", "model"), ("finishReason", "finish_reason")):
                if value := _string(metadata.get(key)):
                    found[field] = value
            if found:
                opened.appender.update_metadata(**found)
        elif opened.kind == TOOL_RESULT and metadata.get("isError") is True:
            opened.appender.update_metadata(is_error=True)
        opened.appender.complete()

    def _end_all(self) -> None:
        for artifact_id in list(self._open):
            self._end(artifact_id)

    def fail_open(self, error: BaseException) -> None:
        """End the messages still streaming with ``error`` (the interaction's)."""
        for opened in self._open.values():
            opened.appender.fail(error)
        self._open.clear()

    def _message(self, message: Message) -> None:
        """A reply the remote gave as one message, without a task: one text, whole."""
        self.context_id = message.context_id or self.context_id
        metadata = ours(MessageToDict(message.metadata)) if message.HasField("metadata") else {}
        text = _text(message.parts)
        self._count(len(text), 1)
        self.ctx.reply(
            A2AMessage(
                text=text,
                agent_alias=_string(metadata.get("agentAlias")) or self.alias,
                task_id=message.task_id or None,
                context_id=message.context_id or None,
            )
        )
        self.state = MESSAGE_STATE


def _metadata(holder: TaskStatusUpdateEvent) -> dict[str, object]:
    return MessageToDict(holder.metadata) if holder.HasField("metadata") else {}


def _part_text(part: Part) -> str:
    content = part.WhichOneof("content")
    if content == "text":
        return part.text
    if content == "data":
        return json.dumps(MessageToDict(part).get("data"), ensure_ascii=False)
    if content == "url":
        return part.url
    if content == "raw":
        return f"[{part.filename or 'a file'}: {len(part.raw)} bytes]"
    return ""


def _text(parts: Sequence[Part]) -> str:
    return "".join(_part_text(part) for part in parts)


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _said(said: str) -> str:
    """The end of a sentence: ``said`` after a colon (if any), and one full stop."""
    said = said.strip()
    if not said:
        return "."
    return f": {said}" if said.endswith((".", "!", "?")) else f": {said}."
