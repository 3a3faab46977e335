"""A remote task's events read into the reply of an ``a2a_agent`` interaction, token by token.

Each artifact of the task becomes a message of the reply as soon as its first chunk comes
(its kind, said in MiniAgents' metadata, picks the class: a text is an ``A2AMessage``, a
tool call an ``LLMToolCallMessage``, a tool's result an ``LLMToolResultMessage``; another
server's artifacts are texts), each chunk's text its next token, and its last chunk (or the
task's end) ends it. A file part is an ``A2AFile`` and a data part an ``A2AData``, each a
message of its own, whole (an image in a text's artifact is that text's image instead); a
direct answer (a message, no task) is an ``A2AMessage`` of its texts and a message per
file or data part. A question of the task (input or authentication required, no approval
in it) is an ``A2AInputRequest`` (``A2AAuthRequest``) the caller answers.

A ``Task`` event (the first of a stream, and what ``GetTask`` gives)
is read against what was read before: an artifact's text that goes on from what the reply
has goes on from there, so a stream that broke and was followed again gives each token
once; a text that does not go on from it breaks the protocol.

What a remote sends is bounded: the reply's texts hold at most ``max_chars`` characters in
all (files' bytes and data's JSON counted in), and it has at most ``max_messages`` messages
(artifacts' texts, files and data, calls that wait for approval, questions; a question's
words are counted among the characters too); one more fails the reply with
``A2AReplyTooLargeError``.
"""

from __future__ import annotations

import asyncio
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

from miniagents.ext.a2a._parts import message_of, text_of
from miniagents.ext.a2a._wire import (
    APPROVAL_REQUEST,
    AUTH_REQUIRED,
    CANCELED,
    COMPLETED,
    DATA,
    FILE,
    FINAL_STATES,
    PAUSED_STATES,
    REJECTED,
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
    A2ATaskRejectedError,
)
from miniagents.ext.a2a.messages import (
    A2AAuthRequest,
    A2AFile,
    A2AInputRequest,
    A2AMessage,
)
from miniagents.ext.input_requests import quoted_words, request_input
from miniagents.ext.llm.messages import LLMToolCallMessage, LLMToolResultMessage
from miniagents.messages.appender import MessageTokenAppender
from miniagents.messages.image import ImagePart
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
    """An artifact being read: the message its text streams into, and its other parts so far."""

    __slots__ = ("appender", "extras", "images", "kind", "metadata", "name")

    def __init__(self, kind: str | None, name: str) -> None:
        self.appender: MessageTokenAppender[MiniMessage] | None = None  # (once text comes)
        self.kind = kind  # (MiniAgents' kind, if the server said it)
        self.name = name
        self.metadata: dict[str, object] = {}
        self.images: list[ImagePart] = []  # (a text's images: its image files)
        self.extras = 0  # how many of its file and data parts were read


class ReplyWriter:
    """Reads one remote task's events into an interaction's reply (see the module docstring).

    Args:
        ctx: The interaction whose reply it writes.
        alias: The ``a2a_agent``'s alias: the ``agent_alias`` of texts the remote names none of.
        max_chars: The most characters the reply's texts hold, in all.
        max_messages: The most messages the reply has (artifacts, and approval requests).
        questions: ``"ask"``: a question of the task is an ``A2AInputRequest`` of the
            reply (see :meth:`question`); ``"raise"``: it fails the reply (:meth:`check`).
    """

    def __init__(
        self,
        ctx: InteractionContext,
        alias: str,
        *,
        max_chars: int,
        max_messages: int,
        questions: str = "ask",
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
        self.questions = questions  # "ask": a question is a request in the reply; "raise"
        self.answered: set[str] = set()  # the questions answered (their messages' ids)
        self._tasked = False  # whether the stream read now is a task's (takes no message)
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

    @property
    def final(self) -> bool:
        """Whether the task has ended for good (a final state, or a direct answer)."""
        state = self.state
        return state is not None and (state in FINAL_STATES or state == MESSAGE_STATE)

    def stream_begins(self, *, of_task: bool) -> None:
        """Say that a new stream is read from here: a task's (``of_task``), or a send's.

        A send's stream is one message, or a task and its updates (A2A's ``StreamResponse``);
        once it has told a task, or when it is a task's from its start (``SubscribeToTask``),
        it takes no message (see :meth:`read`).
        """
        self._tasked = of_task

    def read(self, event: StreamResponse) -> None:
        """Read one event of the task's stream.

        Raises:
            A2AProtocolError: if it is of another task, or a text breaks with what was read,
                or it is a message in a task's stream (A2A allows none there).
        """
        which = event.WhichOneof("payload")
        if which != "message":
            self._tasked = True
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
        state = self._named(task.status.state)
        ended = state in FINAL_STATES or state in PAUSED_STATES
        artifacts = list(task.artifacts)
        for place, artifact in enumerate(artifacts):
            done = ended or place < len(artifacts) - 1
            self._whole(artifact, done)
        metadata = MessageToDict(task.metadata) if task.HasField("metadata") else {}
        self._state(task.status, metadata)

    # -- the task's state ---------------------------------------------------------------------

    def _own(self, task_id: str, context_id: str) -> None:
        """Check that an event of ``task_id`` in ``context_id`` is the task's (the first sets it).

        A2A 1.0's task belongs to one context, which its events name: an event naming
        another context (an id that is not empty) is refused as one of another task is.

        Raises:
            A2AProtocolError: if it names another task, or another context.
        """
        if self.task_id is None:
            self.task_id = task_id or None
            self.context_id = context_id or None
        elif task_id and task_id != self.task_id:
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent an event of the task "
                f"{_quoted_id(task_id)} in the stream of the task "
                f"{_quoted_id(self.task_id)}; a stream is one task's."
            )
        elif context_id and self.context_id and context_id != self.context_id:
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent an event of its task "
                f"{_quoted_id(self.task_id)} in the context {_quoted_id(context_id)}, while "
                f"the task is in the context {_quoted_id(self.context_id)}; a task belongs to "
                "one context (A2A 1.0). Its reply cannot be read; check that the remote "
                "speaks A2A 1.0."
            )
        else:
            self.context_id = self.context_id or context_id or None

    def _named(self, state: int) -> str:
        """The name of a task state the remote sent.

        Raises:
            A2AProtocolError: if A2A defines no such state (a number protobuf's JSON takes).
        """
        try:
            return TaskState.Name(state)
        except ValueError:
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent the task state {state}, which A2A does "
                "not define (a remote of another version of A2A?); its reply cannot be read."
            ) from None

    def _state(self, status: TaskStatus, metadata: Mapping[str, object]) -> None:
        state = self._named(status.state)
        self.state = state
        self._status = status
        self._status_metadata = metadata
        asked = self._asked()
        if asked and all(ask.call_id in self.decided for ask in asked):
            self.state = WORKING  # (a task as it stood before it took the decisions sent)
        if state in PAUSED_STATES and not asked and status.message.message_id in self.answered:
            self.state = WORKING  # (as it stood before it took the answer sent)
        if state == COMPLETED:
            self._end_all()

    def check(self) -> None:
        """Raise the error of a task that failed, was cancelled, or asks a question.

        Raises:
            A2ATaskFailedError: it failed or was rejected (``A2ATaskCanceledError``: cancelled).
            A2AInputRequiredError: it asks for input other than approvals, or for
                authentication.
            A2AReplyTooLargeError: it asks so, in words that take the reply's texts over
                ``max_chars`` characters (a question's words are of the reply).
        """
        state = self.state
        if state is None or state in (COMPLETED, MESSAGE_STATE):
            return
        said = _text(self._status.message.parts) if self._status is not None else ""
        task_id = self.task_id or ""
        if state in FINAL_STATES:
            if state == REJECTED:
                raise A2ATaskRejectedError(
                    f"The remote agent {self.alias} rejected its task "
                    f"{_quoted_id(task_id)}{_said(said)}",
                    task_id=task_id,
                    state=state,
                    remote_type=_string(ours(self._status_metadata).get("errorType")),
                )
            if state == CANCELED:
                raise A2ATaskCanceledError(
                    f"The task {_quoted_id(task_id)} of the remote agent {self.alias} was "
                    f"cancelled there before it completed{_said(said)}",
                    task_id=task_id,
                    state=state,
                )
            remote_type = ours(self._status_metadata).get("errorType")
            named = f" ({remote_type})" if isinstance(remote_type, str) else ""
            raise A2ATaskFailedError(
                f"The task {_quoted_id(task_id)} of the remote agent {self.alias} ended "
                f"{state.removeprefix('TASK_STATE_').lower()}{named}{_said(said)}",
                task_id=task_id,
                state=state,
                remote_type=remote_type if isinstance(remote_type, str) else None,
            )
        if state in PAUSED_STATES and not self.approvals() and self.questions == "raise":
            self._count(len(said), 0)  # (its words are of the reply: bounded as its texts)
            raise A2AInputRequiredError(
                f"The remote agent {self.alias} asks for "
                f"{'authentication' if state != 'TASK_STATE_INPUT_REQUIRED' else 'input'} "
                f"that this agent cannot give (its task {_quoted_id(task_id)} waits for it)"
                f"{_said(said)} Call it with everything it needs in the first message.",
                task_id=task_id,
                context_id=self.context_id or "",
                state=state,
                question=said,
            )

    def question(self) -> A2AInputRequest | None:
        """The task's question to its caller, as a pending request (``None``: it asks none).

        Counted among the reply's messages, its words among its characters of text (see
        :meth:`check`); once answered (:meth:`answered` holds its id),
        the task as it stood before it took the answer is working.
        """
        if self.state not in PAUSED_STATES or self._status is None or self._asked():
            return None
        message = self._status.message
        said = _text(message.parts)
        self._count(len(said), 1)  # (its words are of the reply: bounded as its texts)
        request = request_input(
            said or "(the remote agent asks for input)",
            request_class=A2AAuthRequest if self.state == AUTH_REQUIRED else A2AInputRequest,
            task_id=self.task_id,
            context_id=self.context_id,
            agent_alias=self.alias,
        )
        if message.message_id:
            self.answered.add(message.message_id)
        return request

    def answered_now(self) -> None:
        """The task was sent its answer (or decisions): it works again, until it says otherwise."""
        self.state = WORKING

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
                task = f"its task {_quoted_id(self.task_id)}" if self.task_id else "its reply"
                raise A2AReplyTooLargeError(
                    f"The remote agent {self.alias} sent over {most} {what} in {task}, the "
                    f"most this a2a_agent takes; give the agent a higher {limit} if such a "
                    "reply is expected (or ask the remote for less).",
                    task_id=self.task_id or "",
                    limit=limit,
                )

    def _asked(self) -> list[ApprovalAsk]:
        if self._status is None or self._named(self._status.state) not in PAUSED_STATES:
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
            if part.WhichOneof("content") != "text":
                self._extra(artifact_id, opened, part)
                opened.extras += 1
            elif part.text:
                self._count(len(part.text), 0)
                self._text(artifact_id, opened).append(part.text)
        if last:
            self._end(artifact_id)

    def _whole(self, artifact: Artifact, done: bool) -> None:
        """An artifact as it stands: what goes on from the reply's messages, or new messages."""
        artifact_id = artifact.artifact_id
        metadata = ours(MessageToDict(artifact.metadata)) if artifact.HasField("metadata") else {}
        opened = self._open.get(artifact_id)
        if opened is None:
            if artifact_id in self._seen:
                return  # (read whole already)
            kind = metadata.get("kind")
            opened = self._open[artifact_id] = _Open(_string(kind), artifact.name)
            self._seen.add(artifact_id)
        opened.metadata.update(metadata)
        parts = list(artifact.parts)
        text = text_of(parts)
        others = [part for part in parts if part.WhichOneof("content") != "text"]
        if opened.kind in (FILE, DATA):  # (a MiniAgents file or data: its text is the file's)
            for place, part in enumerate(others[opened.extras :], start=opened.extras):
                self._extra(artifact_id, opened, part, text if place == 0 else None)
            opened.extras = len(others)
        else:
            if text or opened.kind in (TOOL_CALL, TOOL_RESULT) or not others:
                self._grow(artifact_id, opened, text)
            for part in others[opened.extras :]:
                self._extra(artifact_id, opened, part)
            opened.extras = len(others)
        if done or opened.metadata.get("done") is True:
            self._end(artifact_id)

    def _grow(self, artifact_id: str, opened: _Open, text: str) -> None:
        """The artifact's text as it stands now: what goes on from what the reply has."""
        appender = self._text(artifact_id, opened)
        had = appender.appended
        if not text.startswith(had):
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent the artifact {_quoted_id(artifact_id)} of "
                f"its task {_quoted_id(self.task_id)} with a text that does not go on from the "
                f"{len(had)} characters sent before; an artifact's text only grows."
            )
        if len(text) > len(had):
            self._count(len(text) - len(had), 0)
            appender.append(text[len(had) :])

    def _text(self, artifact_id: str, opened: _Open) -> MessageTokenAppender[MiniMessage]:
        """The message the artifact's text streams into (made at its first text)."""
        if opened.appender is not None:
            return opened.appender
        self._count(0, 1)
        metadata = opened.metadata
        common = self._common(metadata, artifact_id)
        appender: MessageTokenAppender[MiniMessage]
        if opened.kind in (TOOL_CALL, TOOL_RESULT):
            message_class = LLMToolCallMessage if opened.kind == TOOL_CALL else LLMToolResultMessage
            del common["artifact_id"]
            appender = MessageTokenAppender(
                message_class=message_class,
                tool_name=_string(metadata.get("toolName")) or opened.name,
                call_id=_string(metadata.get("toolCallId")) or artifact_id,
                **common,
            )
        else:
            role = _string(metadata.get("role")) or "assistant"
            appender = MessageTokenAppender(message_class=A2AMessage, role=role, **common)
        appender.cancel_when_abandoned(self._task)
        opened.appender = appender
        self.ctx.reply(appender.promise)
        return appender

    def _common(self, metadata: Mapping[str, object], artifact_id: str) -> dict[str, object]:
        return {
            "agent_alias": _string(metadata.get("agentAlias")) or self.alias,
            "task_id": self.task_id,
            "context_id": self.context_id,
            "artifact_id": artifact_id,
        }

    def _extra(self, artifact_id: str, opened: _Open, part: Part, text: str | None = None) -> None:
        """A file or data part of an artifact: a message of its own (a text's image: its own)."""
        found = message_of(
            part,
            task_id=self.task_id,
            context_id=self.context_id,
            artifact_id=artifact_id,
            agent_alias=_string(opened.metadata.get("agentAlias")) or self.alias,
        )
        if found is None:
            return
        size = len(found.data) if isinstance(found, A2AFile) and found.data else len(str(found))
        if opened.appender is not None and opened.kind not in (FILE, DATA) and found.images:
            self._count(size, 0)
            opened.images.extend(found.images)  # (an image of the text: its image)
            return
        self._count(size, 1)
        if text:
            found = found.model_copy(update={"text": text})
        self.ctx.reply(found)

    def _end(self, artifact_id: str) -> None:
        opened = self._open.pop(artifact_id, None)
        if opened is None or opened.appender is None or opened.appender.closed:
            return
        metadata = opened.metadata
        found: dict[str, object] = {}
        if opened.kind in (TOOL_CALL, TOOL_RESULT):
            if opened.kind == TOOL_RESULT and metadata.get("isError") is True:
                found["is_error"] = True
        else:
            usage = usage_of(metadata.get("usage"))
            if usage is not None:
                found["usage"] = usage
            for key, field in (("model", "model"), ("finishReason", "finish_reason")):
                if value := _string(metadata.get(key)):
                    found[field] = value
            if opened.images:
                found["images"] = tuple(opened.images)
        if found:
            opened.appender.update_metadata(**found)
        opened.appender.complete()

    def _end_all(self) -> None:
        for artifact_id in list(self._open):
            self._end(artifact_id)

    def fail_open(self, error: BaseException) -> None:
        """End the messages still streaming with ``error`` (the interaction's)."""
        for opened in self._open.values():
            if opened.appender is not None:
                opened.appender.fail(error)
        self._open.clear()

    def _message(self, message: Message) -> None:
        """A reply the remote gave as one message, with no task: its text, files and data.

        Raises:
            A2AProtocolError: if it comes in a task's stream (whatever task it names, if
                any): A2A's stream is one message alone, or a task and its updates only,
                the task's words to its client being in its status's message. Or if it
                names another context than the one it was asked in (the task's, whose
                question it answers), as an event of the task would be.
        """
        if self.task_id is not None and message.task_id:
            self._own(message.task_id, message.context_id)  # (another task's: refused)
        if self._tasked:
            task = f"the task {_quoted_id(self.task_id)}" if self.task_id else "a task"
            raise A2AProtocolError(
                f"The remote agent {self.alias} sent a message in the stream of {task}, "
                "which A2A does not allow (a task's stream holds its status and artifact "
                "updates; a message is a reply of its own); its reply cannot be read."
            )
        if message.context_id and self.context_id and message.context_id != self.context_id:
            raise A2AProtocolError(
                f"The remote agent {self.alias} answered in the context "
                f"{_quoted_id(message.context_id)}, while it was asked in the context "
                f"{_quoted_id(self.context_id)}; an answer is in the context it is asked in "
                "(A2A 1.0). Its reply cannot be read; check that the remote speaks A2A 1.0."
            )
        self.context_id = message.context_id or self.context_id
        metadata = ours(MessageToDict(message.metadata)) if message.HasField("metadata") else {}
        task_id, context_id = message.task_id or None, message.context_id or None
        text = _text(message.parts)
        found: list[MiniMessage] = []
        images: list[ImagePart] = []
        for part in message.parts:
            extra = message_of(
                part,
                task_id=task_id,
                context_id=context_id,
                artifact_id=None,
                agent_alias=_string(metadata.get("agentAlias")) or self.alias,
            )
            if extra is None:
                continue
            if text and extra.images:
                images.extend(extra.images)
            else:
                found.append(extra)
        if text or not found:
            alias = _string(metadata.get("agentAlias")) or self.alias
            answer = A2AMessage(
                text=text,
                agent_alias=alias,
                images=tuple(images),
                task_id=task_id,
                context_id=context_id,
            )
            found.insert(0, answer)
        for reply in found:
            size = len(reply.data) if isinstance(reply, A2AFile) and reply.data else len(str(reply))
            self._count(size, 1)
            self.ctx.reply(reply)
        self.state = MESSAGE_STATE


def _metadata(holder: TaskStatusUpdateEvent) -> dict[str, object]:
    return MessageToDict(holder.metadata) if holder.HasField("metadata") else {}


def _text(parts: Sequence[Part]) -> str:
    """The text of a status's or a message's parts (its files and data aside)."""
    return text_of(parts)


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_ID_CHARS = 80
"""The most characters of a remote's id (a task's, an artifact's) that an error of ours quotes."""


def _quoted_id(an_id: str | None) -> str:
    """A remote's id in a sentence of ours: quoted as ``quoted_words`` quotes (bounded, one line).

    An id is the remote's word, as long as its event may be: cut to 80 characters, in
    quotes it cannot close, so that a hostile id cannot break or pose as our sentence.
    """
    return quoted_words(an_id or "", _ID_CHARS)


_SAID_CHARS = 400
"""The most characters of the remote's words that an error of ours quotes (``_said``)."""


def _said(said: str) -> str:
    """The end of a sentence: the remote's words ``said`` after a colon (if any), and a full stop.

    The words are the remote's, not ours: quoted as ``quoted_words`` quotes them (in quotes
    they cannot close, on one line), at most 400 characters, so that a sentence of ours that
    tells them (relayed by our server, to its client) stays ours, and short.
    """
    if not said.strip():
        return "."
    return f": {quoted_words(said, _SAID_CHARS)}."
