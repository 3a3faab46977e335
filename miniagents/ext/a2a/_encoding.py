"""A reply as A2A events, and a task as its events make it: the protocol, for the run manager.

A job of the run manager is an A2A task: its key is the task's id, its group the task's
context, and it pauses under its own id (the next message to the task resumes it). Its
events are the JSON of A2A ``StreamResponse`` payloads (``statusUpdate``,
``artifactUpdate``), one per SSE event; a request's response wraps each in its JSON-RPC
envelope (see :mod:`miniagents.ext.a2a.server`). How the reply's parts become events::

    reply part               A2A event (MiniAgents' metadata: see miniagents.ext.a2a._wire)
    -----------------------  -----------------------------------------------------------------
    (the job starts)         statusUpdate WORKING
    text message             artifactUpdate: its first chunk (kind text, role, agentAlias),
                             a chunk per token (append), its images' file parts (if any),
                             the last chunk (done, usage, model)
    A2AFile, A2AData         artifactUpdate: the whole artifact, one chunk (kind file or data:
                             a file part, after a text part if it has text; a data part)
    tool call                artifactUpdate: kind tool-call, a chunk per piece of the
                             arguments' JSON, the last with the parsed arguments
    tool result              artifactUpdate: kind tool-result, a chunk per token as the tool
                             produces it (a sub-agent's reply), the last with isError, denied
    a call waits for its     statusUpdate INPUT_REQUIRED, its message asking for each call
    approval                 that waits (the stream ends; the task waits for a message)
    the agent asks a         statusUpdate INPUT_REQUIRED (an AuthRequest: AUTH_REQUIRED), its
    question                 message the question (the stream ends; the next message answers)
    the task resumed         statusUpdate WORKING
    the reply has ended      statusUpdate COMPLETED (its usage: every call of a model the
                             task's reply caused, its agents called as tools' too; if any)
    the agent failed         statusUpdate FAILED (its message names the error's class and a
                             reference the server's log has it under, or, with error_texts,
                             is the error's text; errorType its class, errorReference)
    the agent rejected it    statusUpdate REJECTED (it raised A2ATaskRejectedError: its message)
    the task was cancelled   statusUpdate CANCELED

:class:`TaskFold` reads a task's events back into the JSON of an A2A ``Task``: its status,
its artifacts (each text whole), its history (the client's messages, and the agent's
questions between them); and, for a task answered as one message, that message's parts.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial

from miniagents.ext.a2a._parts import parts_of
from miniagents.ext.a2a._webhooks import Poster, Webhook
from miniagents.ext.a2a._wire import (
    APPROVAL_REQUEST,
    AUTH_REQUIRED,
    CANCELED,
    COMPLETED,
    DATA,
    DECISION_SCHEMA,
    FAILED,
    FILE,
    INPUT_REQUIRED,
    META,
    PAUSED_STATES,
    REJECTED,
    SUBMITTED,
    TEXT,
    TOOL_CALL,
    TOOL_RESULT,
    WORKING,
    ours,
    usage_json,
)
from miniagents.ext.a2a.errors import A2ATaskRejectedError
from miniagents.ext.a2a.messages import A2AData, A2AFile
from miniagents.ext.input_requests import AuthRequest, InputRequest
from miniagents.ext.llm.messages import reply_metadata
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.web.lowlevel import (
    ApprovalAsked,
    ApprovalFlow,
    AwaitingApproval,
    CallDelta,
    CallEnd,
    CallStart,
    Encoder,
    Item,
    JobIds,
    JobUsage,
    Part,
    ResultDelta,
    ResultEnd,
    ResultStart,
    TextDelta,
    TextEnd,
    TextStart,
    ToldError,
    WebProtocol,
    json_text,
    plain,
)

__all__ = ["A2A_HEADERS", "A2AEncoder", "A2AProtocol", "TaskFold", "agent_message", "now"]

_logger = logging.getLogger("miniagents.ext.a2a")

A2A_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Sent with every A2A stream (``Content-Type: text/event-stream`` besides)."""


def now() -> str:
    """The time now, as A2A's timestamps say it (RFC 3339, UTC)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def agent_message(
    task_id: str, context_id: str, parts: list[dict[str, object]]
) -> dict[str, object]:
    """The JSON of a message of the agent's to the client, of ``parts``."""
    return {
        "messageId": str(uuid.uuid4()),
        "contextId": context_id,
        "taskId": task_id,
        "role": "ROLE_AGENT",
        "parts": parts,
    }


class A2AProtocol(WebProtocol):
    """A2A, for the run manager: a job is a task (its key), of a context (its group)."""

    name = "a2a"
    headers = A2A_HEADERS
    compact = True
    takes_answers = True  # (the next message to a task that asks is the answer)
    answers_from_kept = True  # (GetTask and ListTasks read the task its encoder keeps)
    cuts_live_runs = True  # (a turn past max_live_run_bytes fails: WebRunTooLargeError)
    tells_errors = True  # (a failed task's status says what the run manager tells)

    logger = _logger

    def __init__(self, poster: Poster | None = None) -> None:
        self.poster = poster  # (the push notifications' posts, if the app sends them)

    paused_hint = (
        'send the task a message whose data parts decide its calls: {"toolCallId": ..., '
        '"approved": true or false, "arguments"?: {...}, "reason"?: "..."} each.'
    )

    def ids(self, key: str, group: str) -> JobIds:
        """A task ``key`` of the context ``group``: it pauses under its own id."""
        return JobIds(key=key, group=group, pause_key=key, prefix=key)

    def told_as_written(self, error: Exception) -> bool:
        """As any protocol's, and a task's rejection (``A2ATaskRejectedError``) besides.

        A rejection's text is the status message A2A gives a rejected task, for its client
        to read: the served agent's own (``raise A2ATaskRejectedError("I only answer about
        rivers.")``), or, an ``a2a_agent``'s relayed, a sentence that names the remote agent
        and its task, then quotes the remote's words (on one line, in quotes they cannot
        close, at most 400 characters: see ``quoted_words``). Only A2A says it so: the
        error's class does not (its text may be a remote's, and a client of AG-UI or the AI
        SDK is told it by its class and a reference, as any error).
        """
        return super().told_as_written(error) or isinstance(error, A2ATaskRejectedError)

    def encoder(
        self, ids: JobIds, flow: ApprovalFlow, keep_for: float, usage: JobUsage
    ) -> A2AEncoder:
        """A new encoder of the task ``ids`` (A2A asks for approvals in its own way only).

        ``usage``: the meter of the task's reply, whose usage its completed status says.
        """
        # (an error handed to it untold, a run cut, is told as written, never by its text
        # otherwise: what the run manager tells, error_texts as its settings stand, is given)
        told = partial(self.told, error_texts=False)
        return A2AEncoder(ids, self.poster, told=told, usage=usage)

    def failed(self, encoder: Encoder, error: Exception, told: ToldError) -> list[str]:
        """The task fails with ``error``, its status saying ``told`` (its text and reference)."""
        assert isinstance(encoder, A2AEncoder)  # (made by encoder())
        return encoder.failed(error, told)

    def item(self, event: Mapping[str, object], opened: tuple[str, ...] | None) -> Item:
        """No item: a durable agent is not served over A2A."""
        return None

    def closing(self, kind: str, names: tuple[str, ...]) -> list[str]:
        """Nothing: an A2A client's artifact ends with its task."""
        return []

    def renamed_keys(self, event: Mapping[str, object]) -> tuple[str, ...]:
        """None: no item is renamed."""
        return ()

    def asking(self, encoder: Encoder, message_id: str, request: InputRequest) -> list[str]:
        """The task asks its client ``request`` (see :meth:`A2AEncoder.asking`)."""
        assert isinstance(encoder, A2AEncoder)  # (made by encoder())
        return encoder.asking(request)

    def ended(self, encoder: Encoder, runs: Sequence[Sequence[str]]) -> int:
        """The task has ended: its encoder keeps the task whole (see :meth:`A2AEncoder.ended`)."""
        assert isinstance(encoder, A2AEncoder)  # (made by encoder())
        return encoder.ended(runs)


class A2AEncoder:
    """One task's reply as A2A events (see the module docstring), and what the task holds.

    Attributes:
        client_messages: The client's messages to the task (its first, then each that
            answered a question), as their JSON.
        fold: The task as its events make it.
        answered: Whether the task was answered as one message (no task to its client).
        webhooks: The webhooks its client set (push notifications), by id.
        resumed_at: When its client last answered its question or approvals, until its run
            says it works again: the time of that status (so that each read of the task
            gives one time, and ``ListTasks`` pages keep it in its place).
    """

    def __init__(
        self,
        ids: JobIds,
        poster: Poster | None = None,
        *,
        told: Callable[[Exception, str], ToldError],
        usage: JobUsage,
    ) -> None:
        self._task = ids.key
        self._context = ids.group
        self._prefix = ids.prefix
        self._usage = usage  # (the meter of the task's reply: its runs since it started)
        self._whole: set[str] = set()  # the messages sent whole (files, data), being read
        self._poster = poster
        self._told = told  # (its protocol's: what its client is told of an error)
        self.client_messages: list[object] = []
        self.fold = TaskFold(ids.key, ids.group)
        self.answered = False
        self.webhooks: dict[str, Webhook] = {}  # the client's, by id: each change posted
        self.resumed_at: str | None = None

    def task(
        self, runs: Sequence[Sequence[str]], history_length: int | None = None
    ) -> dict[str, object]:
        """The task's JSON, its events of ``runs`` read (see :meth:`TaskFold.task`)."""
        self.fold.catch_up(runs)
        return self.fold.task(self.client_messages, history_length)

    # -- the task's life --------------------------------------------------------------------

    def opening(self) -> list[str]:
        """The task starts working."""
        return [self._status(WORKING)]

    def resuming(self, run_key: str) -> list[str]:
        """The task works again, its calls decided (or its question answered) at ``resumed_at``."""
        stamp, self.resumed_at = self.resumed_at, None
        return [self._status(WORKING, stamp=stamp)]

    def pausing(self, waiting: Sequence[ToolApprovalRequest]) -> list[str]:
        """The task asks for the decisions of the ``waiting`` calls."""
        parts: list[dict[str, object]] = []
        for request in waiting:
            arguments = json.dumps(plain(request.arguments), ensure_ascii=False, default=str)
            parts.append(
                {
                    "text": f"The call {request.call_id!r} of {request.tool_name} with "
                    f"{arguments} waits for your approval: answer this task with a data "
                    f'part {{"toolCallId": {json.dumps(request.call_id)}, "approved": true}} '
                    '(or false, with a "reason").'
                }
            )
            asked = {
                "toolCallId": request.call_id,
                "toolName": request.tool_name,
                "arguments": plain(request.arguments),
                "responseSchema": DECISION_SCHEMA,
            }
            parts.append({"data": {APPROVAL_REQUEST: asked}, "mediaType": "application/json"})
        message = agent_message(self._task, self._context, parts)
        return [self._status(INPUT_REQUIRED, message=message)]

    def asking(self, request: InputRequest) -> list[str]:
        """The task asks its client ``request``: input (or authentication) is required."""
        parts: list[dict[str, object]] = [{"text": str(request)}]
        parts += parts_of(request)  # (its images)
        message = agent_message(self._task, self._context, parts)
        state = AUTH_REQUIRED if isinstance(request, AuthRequest) else INPUT_REQUIRED
        return [self._status(state, message=message)]

    def finished(self) -> list[str]:
        """The task has completed, with its usage if it called a model.

        Its usage is what the task's reply spent since the task started (its runs before
        each pause too), metered as the web apps meter a reply: every call of a model it
        caused, the agents it called as tools included (see
        :class:`~miniagents.ext.web.lowlevel.JobUsage`).
        """
        total = self._usage.job_usage()
        extra: dict[str, object] | None = None
        if total is not None:
            extra = {"usage": usage_json(total)}
        return [self._status(COMPLETED, extra=extra)]

    def failed(self, error: Exception, told: ToldError | None = None) -> list[str]:
        """The task has failed with ``error`` (rejected: the agent raised that).

        Its client (and every later reader, and its webhooks) gets the error's class's name
        and ``told``, what the run manager tells of it (:meth:`A2AProtocol.failed`):
        by default a sentence that names the agent, the class and a reference (*"The agent
        RESEARCHER failed with ValueError. ..."*; a step of the server's own that failed,
        the server), under which the server's log has the error whole (logged once: an
        error's text may hold what its client must not see, a URL with a key, a path);
        with ``error_texts``, the error's message (``str(error)``, or its ``repr`` if that
        is empty). The errors written for the client (:meth:`A2AProtocol.told_as_written`:
        a rejection, ``A2ATaskRejectedError``, and a cut, ``WebRunTooLargeError``, among
        them) always say their message, with no reference; so does an error given with no
        ``told`` (a cut's), if written so, else its class and a reference. Never its
        traceback, its causes, nor a file of the agent's or the library's (see
        :meth:`~miniagents.ext.web.lowlevel.WebProtocol.told`).
        """
        kind = type(error).__name__
        extra: dict[str, object] = {"errorType": kind}
        if told is None:
            told = self._told(error, f"The A2A task {self._task}")
        text, reference = told
        if reference:
            extra["errorReference"] = reference
        message = agent_message(self._task, self._context, [{"text": text}])
        state = REJECTED if isinstance(error, A2ATaskRejectedError) else FAILED
        return [self._status(state, message=message, extra=extra)]

    def cancelled(self) -> list[str]:
        """The task was cancelled (by the client, or as the app stopped)."""
        return [self._status(CANCELED)]

    def ended(self, runs: Sequence[Sequence[str]]) -> int:
        """The task has ended: its fold reads the rest of ``runs`` and keeps each text whole.

        From now on the task is answered from the fold alone (its runs are let go of). A
        task that ends while it waits for its client (its wait expired, it was cancelled,
        the app stopped) was cancelled there: its run had ended, so its status says so now.

        Returns:
            The bytes of the task's JSON (its client's messages, questions and artifacts),
            with those of its webhooks (an ended task takes no more): about what the task
            keeps from now on.
        """
        self.fold.catch_up(runs)
        self.fold.settle()
        if self.fold.state in PAUSED_STATES:
            self.fold.cancelled()
            for event in self.fold.ending():
                self._post(event)
        kept = len(json_text(self.fold.task(self.client_messages), compact=True).encode())
        return kept + sum(webhook.size for webhook in self.webhooks.values())

    def _status(
        self,
        state: str,
        *,
        message: dict[str, object] | None = None,
        extra: dict[str, object] | None = None,
        stamp: str | None = None,
    ) -> str:
        status: dict[str, object] = {"state": state, "timestamp": stamp or now()}
        if message is not None:
            status["message"] = message
        update: dict[str, object] = {
            "taskId": self._task,
            "contextId": self._context,
            "status": status,
        }
        if extra is not None:
            update["metadata"] = {META: extra}
        event = json_text({"statusUpdate": update}, compact=True)
        self._post(event)
        return event

    def _post(self, event: str) -> None:
        """Post a change of the task's state to its webhooks, if it has any."""
        if self._poster is not None and self.webhooks:
            self._poster.post(list(self.webhooks.values()), event)

    # -- the reply's parts ------------------------------------------------------------------

    def events(self, part: Part) -> list[str]:
        """The events of one part of the reply."""
        if isinstance(part, TextDelta):  # (the most frequent first)
            if part.message_id in self._whole:
                return []  # (sent whole, at its end)
            return [self._chunk(part.message_id, part.delta)]
        if isinstance(part, ResultDelta):
            return [self._chunk(part.message_id, part.delta)]
        if isinstance(part, CallDelta):
            return [self._chunk(self._call_artifact(part.call_id), part.delta)]
        if isinstance(part, TextStart):
            if issubclass(part.message_class, A2AFile | A2AData):
                self._whole.add(part.message_id)
                return []
            about: dict[str, object] = {"kind": TEXT, "role": part.role}
            if part.agent_alias:
                about["agentAlias"] = part.agent_alias
            return [self._first(part.message_id, part.agent_alias or part.role, about)]
        if isinstance(part, TextEnd):
            if part.message_id in self._whole:
                self._whole.discard(part.message_id)
                return [self._whole_artifact(part)]
            found = parts_of(part.message) if part.message is not None else []
            images = [self._chunk_of(part.message_id, found)] if found else []
            return [*images, self._last(part.message_id, self._text_end(part))]
        if isinstance(part, CallStart):
            about = {"kind": TOOL_CALL, "toolCallId": part.call_id, "toolName": part.tool_name}
            return [self._first(self._call_artifact(part.call_id), part.tool_name, about)]
        if isinstance(part, CallEnd):
            ended = {"done": True, "arguments": part.arguments}
            return [self._last(self._call_artifact(part.call_id), ended)]
        if isinstance(part, ResultStart):
            about = {"kind": TOOL_RESULT, "toolCallId": part.call_id, "toolName": part.tool_name}
            return [self._first(part.message_id, part.tool_name, about)]
        if isinstance(part, ResultEnd):
            ended = {"done": True, "isError": part.is_error, "denied": part.denied}
            return [self._last(part.message_id, ended)]
        assert isinstance(part, ApprovalAsked | AwaitingApproval)
        return []  # asked where the task pauses

    def _call_artifact(self, call_id: str) -> str:
        return f"{self._prefix}-call-{call_id}"

    def _text_end(self, part: TextEnd) -> dict[str, object]:
        ended: dict[str, object] = {"done": True}
        usage, model, finish_reason = reply_metadata(part.message)
        self._usage.note(part.message)  # (a durable agent's job counts its texts')
        if usage is not None:
            ended["usage"] = usage_json(usage)
        if model is not None:
            ended["model"] = model
        if finish_reason is not None:
            ended["finishReason"] = finish_reason
        return ended

    def _first(self, artifact_id: str, name: str, about: dict[str, object]) -> str:
        artifact: dict[str, object] = {
            "artifactId": artifact_id,
            "name": name,
            "parts": [{"text": ""}],
            "metadata": {META: about},
        }
        return self._artifact(artifact, append=False, last=False)

    def _chunk(self, artifact_id: str, text: str) -> str:
        return self._chunk_of(artifact_id, [{"text": text}])

    def _chunk_of(self, artifact_id: str, parts: list[dict[str, object]]) -> str:
        artifact: dict[str, object] = {"artifactId": artifact_id, "parts": parts}
        return self._artifact(artifact, append=True, last=False)

    def _whole_artifact(self, part: TextEnd) -> str:
        """A file's or data's message as one artifact, whole (its first and last chunk)."""
        message = part.message
        assert message is not None  # (the reply's parts end a text with its message)
        kind = FILE if isinstance(message, A2AFile) else DATA
        name = getattr(message, "filename", None) or kind
        about: dict[str, object] = {"kind": kind, "done": True}
        alias = getattr(message, "agent_alias", None)
        if isinstance(alias, str):
            about["agentAlias"] = alias
        artifact: dict[str, object] = {
            "artifactId": part.message_id,
            "name": name,
            "parts": parts_of(message),
            "metadata": {META: about},
        }
        return self._artifact(artifact, append=False, last=True)

    def _last(self, artifact_id: str, about: dict[str, object]) -> str:
        artifact: dict[str, object] = {
            "artifactId": artifact_id,
            "parts": [{"text": ""}],
            "metadata": {META: about},
        }
        return self._artifact(artifact, append=True, last=True)

    def _artifact(self, artifact: dict[str, object], *, append: bool, last: bool) -> str:
        update = {
            "taskId": self._task,
            "contextId": self._context,
            "artifact": artifact,
            "append": append,
            "lastChunk": last,
        }
        return json_text({"artifactUpdate": update}, compact=True)


# -- a task, as its events make it ----------------------------------------------------------


class _Artifact:
    """An artifact so far: its fields, and its parts (a text part's text as its chunks)."""

    __slots__ = ("artifact_id", "metadata", "name", "parts")

    def __init__(self, artifact_id: str) -> None:
        self.artifact_id = artifact_id
        self.name: str | None = None
        self.metadata: dict[str, object] = {}
        self.parts: list[list[str] | dict[str, object]] = []

    def add(self, artifact: Mapping[str, object], *, append: bool) -> None:
        if not append:
            self.parts = []
            self.metadata = {}
        name = artifact.get("name")
        if isinstance(name, str):
            self.name = name
        _merge(self.metadata, artifact.get("metadata"))
        parts = artifact.get("parts")
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and part.keys() == {"text"} and isinstance(part["text"], str):
                last = self.parts[-1] if self.parts else None
                if isinstance(last, list):
                    last.append(part["text"])
                elif part["text"] or not self.parts:  # (an empty one after a file: nothing)
                    self.parts.append([part["text"]])
            elif isinstance(part, dict):
                self.parts.append(part)

    def settle(self) -> None:
        """Join each text part's chunks into one (the artifact gets no more chunks)."""
        self.parts = [["".join(part)] if isinstance(part, list) else part for part in self.parts]

    def json(self) -> dict[str, object]:
        parts = [{"text": "".join(part)} if isinstance(part, list) else part for part in self.parts]
        found: dict[str, object] = {"artifactId": self.artifact_id, "parts": parts}
        if self.name is not None:
            found["name"] = self.name
        if self.metadata:
            found["metadata"] = self.metadata
        return found


def _merge(into: dict[str, object], metadata: object) -> None:
    """Merge ``metadata`` (an A2A metadata object) into ``into``, MiniAgents' key one level deep."""
    if not isinstance(metadata, Mapping):
        return
    for key, value in metadata.items():
        held = into.get(key)
        if key == META and isinstance(held, dict) and isinstance(value, Mapping):
            held.update(value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


class TaskFold:
    """A task as its events make it: the JSON of an A2A ``Task``, caught up as they come.

    Args:
        task_id: The task's id.
        context_id: Its context's.
    """

    __slots__ = (
        "_artifacts",
        "_metadata",
        "_position",
        "_questions",
        "_run",
        "_status",
        "context_id",
        "task_id",
        "unsaid",
    )

    def __init__(self, task_id: str, context_id: str) -> None:
        self.task_id = task_id
        self.context_id = context_id
        self._status: dict[str, object] = {"state": SUBMITTED, "timestamp": now()}
        self._artifacts: dict[str, _Artifact] = {}
        self._metadata: dict[str, object] = {}
        self._questions: list[object] = []  # the agent's messages of its input-required statuses
        self._run = 0
        self._position = 0
        self.unsaid = False  # (its end was said by no event: cancelled where it waited)

    @property
    def status(self) -> Mapping[str, object]:
        """The task's status (its JSON), as its events say so far."""
        return self._status

    @property
    def state(self) -> str:
        """The task's state, as its events say so far."""
        state = self._status.get("state")
        return state if isinstance(state, str) else SUBMITTED

    def catch_up(self, runs: Sequence[Sequence[str]]) -> None:
        """Read the events of ``runs`` (each run's events, in order) not read yet.

        Runs before the last have ended: their events are read once.
        """
        while self._run < len(runs):
            events = runs[self._run]
            while self._position < len(events):
                self._read(events[self._position])
                self._position += 1
            if self._run == len(runs) - 1:
                return
            self._run += 1
            self._position = 0

    def cancelled(self) -> None:
        """The task was cancelled where it waited for its client (no event said so)."""
        self._status = {"state": CANCELED, "timestamp": now()}
        self.unsaid = True

    def ending(self) -> list[str]:
        """The event of how the task ended, if no event said so (else none)."""
        if not self.unsaid:
            return []
        update = {"taskId": self.task_id, "contextId": self.context_id, "status": self._status}
        return [json_text({"statusUpdate": update}, compact=True)]

    def settle(self) -> None:
        """The task has ended: keep each artifact's text whole, not as the chunks it came in."""
        for artifact in self._artifacts.values():
            artifact.settle()

    def _read(self, data: str) -> None:
        event = json.loads(data)
        update = event.get("statusUpdate")
        if isinstance(update, dict):
            status = update.get("status")
            if isinstance(status, dict):
                self._status = status
                message = status.get("message")
                if status.get("state") in PAUSED_STATES and message is not None:
                    self._questions.append(message)
            _merge(self._metadata, update.get("metadata"))
            return
        update = event.get("artifactUpdate")
        if isinstance(update, dict):
            artifact = update.get("artifact")
            if isinstance(artifact, dict) and isinstance(artifact.get("artifactId"), str):
                found = self._artifacts.get(artifact["artifactId"])
                if found is None:
                    found = self._artifacts[artifact["artifactId"]] = _Artifact(
                        artifact["artifactId"]
                    )
                found.add(artifact, append=bool(update.get("append")))

    def answer_parts(self) -> list[object]:
        """The parts of the task's texts, files and data, in order: its answer as one message.

        (Its tool calls and tools' results are left out: they are the agent's own work.)
        """
        found: list[object] = []
        for artifact in self._artifacts.values():
            if ours(artifact.metadata).get("kind") in (TOOL_CALL, TOOL_RESULT):
                continue
            parts = artifact.json()["parts"]
            assert isinstance(parts, list)  # (made so by json())
            found += [part for part in parts if part != {"text": ""}]
        return found

    def task(
        self, client_messages: Sequence[object], history_length: int | None = None
    ) -> dict[str, object]:
        """The task's JSON now: ``client_messages`` (the client's, in order) in its history.

        The history holds the client's messages and, after each but the last, the agent's
        question that the next one answered (the agent's last question is in the status).
        ``history_length``: at most that many of the most recent messages of the history.
        """
        history: list[object] = []
        for number, sent in enumerate(client_messages):
            if number > 0 and number - 1 < len(self._questions):
                history.append(self._questions[number - 1])
            history.append(sent)
        if history_length is not None:
            history = history[-history_length:] if history_length > 0 else []
        task: dict[str, object] = {
            "id": self.task_id,
            "contextId": self.context_id,
            "status": self._status,
        }
        if self._artifacts:
            task["artifacts"] = [artifact.json() for artifact in self._artifacts.values()]
        if history:
            task["history"] = history
        if self._metadata:
            task["metadata"] = self._metadata
        return task
