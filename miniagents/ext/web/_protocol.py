"""What a web protocol gives the run manager: its names, its encoder of a reply, its items.

The run manager (:mod:`miniagents.ext.web._runs`) runs agents, keeps their runs and serves
them over SSE, whatever the protocol; a protocol is one module that says three things:

- how a job is named (:meth:`WebProtocol.ids`: its key, group, pause key and id prefix);
- how a reply is written (:class:`Encoder`: the events that open a run, that each part of
  the reply becomes, that pause, resume, finish, fail or cancel it), as JSON text that any
  text leaves valid (:func:`json_text`);
- for a durable agent's runs, which events open, go on with or end an *item* (a text
  message, a call's input, a tool's output) and how a client's item is ended or renamed
  (see :mod:`miniagents.ext.web._event_log`).
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeAlias, TypeVar

from miniagents.ext.input_requests import InputRequest
from miniagents.ext.told_errors import ToldError, told_error
from miniagents.ext.tools.approval import ToolApprovalRequest
from miniagents.ext.tools.running import told_as_written
from miniagents.ext.web._reply_parts import Part
from miniagents.ext.web._usage import JobUsage

__all__ = [
    "ApprovalFlow",
    "Encoder",
    "Item",
    "ItemEncoder",
    "ItemProtocol",
    "JobIds",
    "OpenItems",
    "WebProtocol",
    "json_text",
]

ApprovalFlow: TypeAlias = Literal["protocol", "in_stream"]
"""How a run asks for approvals: ``"protocol"``, the protocol's own flow (the stream ends
where the run must wait, and the protocol's resume request decides); ``"in_stream"``, the
stream stays open and waits for a decision at the app's approvals URL."""

Item: TypeAlias = tuple[str, tuple[str, ...], bool] | Literal["same"] | None
"""What an event does to the item open before it: opens one (its kind, its names, and
whether it goes on with the open one), goes on with it (``"same"``), or is no item's."""

_E = TypeVar("_E")


class OpenItems(Generic[_E]):
    """The items an encoder's events left open (a text, a call), each with the event that ends it.

    An encoder notes each event's item (:meth:`note`: its key, the event that ends it, and
    whether the event opens it or ends it); a run that fails, is cut or given up on ends
    what is open (:meth:`ended`), the last opened first. A cut run undoes its events that
    its client never got (:meth:`undo`).
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[str, _E] = {}  # (in the order they opened)

    def note(self, item: tuple[str, _E, bool] | None) -> None:
        """An event's ``item`` (``None``: no item's): opened, or ended."""
        if item is not None:
            key, end, opens = item
            if opens:
                self._open[key] = end
            else:
                self._open.pop(key, None)

    def undo(self, item: tuple[str, _E, bool] | None) -> None:
        """An event's ``item`` as if the event never came: what it opened is not open, what
        it ended is (events are undone the last first)."""
        if item is not None:
            key, end, opens = item
            self.note((key, end, not opens))

    def ended(self) -> list[_E]:
        """The events that end what is open, the last opened first; nothing is open after."""
        ends = [*reversed(self._open.values())]
        self._open.clear()
        return ends


class ItemEncoder(ABC, Generic[_E]):
    """An encoder whose events open and end items (AG-UI's and the AI SDK's): what they share.

    It notes the item of each event it makes (:meth:`events`), so that a run that fails, is
    cut or given up on ends what is open first (its ``_open``'s :meth:`~OpenItems.ended`);
    a cut run's events that its client never got are undone first (:meth:`cut`). A subclass
    writes its own protocol: the events of a part, each one's item, its text, the event of a
    text, and the events that end a failed run.
    """

    def __init__(self) -> None:
        self._open = OpenItems[_E]()

    def events(self, part: Part) -> list[str]:
        """The events of ``part`` (noting the items they open and end)."""
        found: list[str] = []
        for event in self._events(part):
            self._open.note(self._item_of(event))
            found.append(self._encode(event))
        return found

    def failed(self, error: Exception, text: str | None = None) -> list[str]:
        """The events that end the run with ``error``, what it left open ended first.

        ``text``: what its client is told (by default the error's own text).
        """
        return self._failure(error, (str(error) or repr(error)) if text is None else text)

    def cut(self, error: Exception, unlogged: Sequence[str]) -> list[str]:
        """The events that end a run cut with ``error``, which does not log ``unlogged``.

        Those are the last events it made: what they opened is not open for the client,
        what they ended is (undone the last first, so that each item is ended inside those
        around it).
        """
        for data in reversed(unlogged):
            event = self._decoded(data)
            self._open.undo(None if event is None else self._item_of(event))
        return self.failed(error)

    @abstractmethod
    def _events(self, part: Part) -> Iterator[_E]:
        """The protocol's events of ``part``."""

    @abstractmethod
    def _item_of(self, event: _E) -> tuple[str, _E, bool] | None:
        """The item ``event`` opens or ends, as :meth:`OpenItems.note` takes it (or ``None``)."""

    @abstractmethod
    def _encode(self, event: _E) -> str:
        """``event`` as the text of its SSE event."""

    @abstractmethod
    def _decoded(self, data: str) -> _E | None:
        """The event of the text ``data`` (``None``: one that opens or ends no item)."""

    @abstractmethod
    def _failure(self, error: Exception, text: str) -> list[str]:
        """The events that end the run with ``error``, telling ``text`` (what is open first)."""


_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def json_text(value: object, *, compact: bool = False) -> str:
    """``value`` as JSON text that is valid UTF-8 and one line in any reader, whatever it holds.

    A lone surrogate (which UTF-8 cannot encode) becomes U+FFFD (a pair of surrogates, the
    character they make); the characters some line readers split at besides CR and LF
    (U+2028, U+2029, U+0085) are escaped (JSON escapes the control characters itself), so
    a token holding ``"\\n\\ndata: ..."``, NUL or a line separator stays inside its event.
    """
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(value, ensure_ascii=False, separators=separators)
    if text.isascii():
        return text
    if _SURROGATE.search(text) is not None:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.translate(_LINE_BREAKS)


@dataclass(frozen=True)
class JobIds:
    """How a job is named: by the protocol, from its key and group.

    Attributes:
        key: The id its first run is found by (the AG-UI run id, the AI SDK chat id).
        group: What the key belongs to (the AG-UI thread, the AI SDK assistant message).
        pause_key: Where it waits when it pauses (a new job there replaces it).
        prefix: The prefix of the ids of its messages in the events.
    """

    key: str
    group: str
    pause_key: str
    prefix: str


class Encoder(Protocol):
    """One job's reply as a protocol's events (JSON text); it knows what it left open."""

    def opening(self) -> list[str]:
        """The events that start the job's first run."""
        ...

    def events(self, part: Part) -> list[str]:
        """The events of one part of the reply."""
        ...

    def pausing(self, waiting: Sequence[ToolApprovalRequest]) -> list[str]:
        """The events that end a run where the job waits for the ``waiting`` calls."""
        ...

    def resuming(self, run_key: str) -> list[str]:
        """The events that start the run ``run_key`` the job goes on in after a pause."""
        ...

    def finished(self) -> list[str]:
        """The events that end the job's last run when the reply has ended."""
        ...

    def failed(self, error: Exception) -> list[str]:
        """The events that end the run with the agent's ``error`` (what it left open ended
        first)."""
        ...

    def cancelled(self) -> list[str]:
        """The events that end a run given up on (what it left open ended first)."""
        ...


class WebProtocol(ABC):
    """A protocol the run manager serves runs in (see the module docstring)."""

    name: str
    """Its name in a durable run's workflow id (``ag-ui``, ``ai-sdk``)."""
    headers: Mapping[str, str]
    """Sent with every stream (``Content-Type: text/event-stream`` besides)."""
    approvals_last: bool = False
    """Whether a round's results that wait for no decision come before those that wait."""
    takes_answers: bool = False
    """Whether its clients answer an agent's input requests: then a job pauses at one (the
    events :meth:`asking` makes end its run) until the protocol's request answers it
    (:meth:`RunManager.answer <miniagents.ext.web._runs.RunManager.answer>`); else the
    request is withdrawn (the agent's ``aanswer()`` raises) and sent as a text."""
    paused_hint: str
    """How the calls of a paused job are decided (said in the 409 of the decision URL)."""

    @abstractmethod
    def ids(self, key: str, group: str) -> JobIds:
        """How the job ``key`` of ``group`` is named."""

    @abstractmethod
    def encoder(
        self, ids: JobIds, approval_flow: ApprovalFlow, keep_runs_for: float, usage: JobUsage
    ) -> Encoder:
        """A new encoder of the reply of the job ``ids`` (``keep_runs_for``: a pause's wait).

        ``usage``: the meter of the job's reply, whose usage it reports where its protocol
        puts usage.
        """

    @abstractmethod
    def item(self, event: Mapping[str, object], opened: tuple[str, ...] | None) -> Item:
        """What ``event`` does to the open item, named ``opened`` (see :data:`Item`)."""

    @abstractmethod
    def closing(self, kind: str, names: tuple[str, ...]) -> list[str]:
        """The events that end a client's item of ``kind`` named ``names``, as the protocol does."""

    @abstractmethod
    def renamed_keys(self, event: Mapping[str, object]) -> tuple[str, ...]:
        """The fields of ``event`` that hold an item's name (renamed for a client, see the log)."""

    compact: bool = False
    """Whether its events' JSON has no spaces (AG-UI's, as its models write it)."""
    answers_from_kept: bool = False
    """Whether it answers about an ended job only from what its encoder keeps (:meth:`ended`;
    A2A's task), never from the job's runs: then the run manager lets go of a job's ended
    runs as the job ends (but a run a client's stream still follows). Else they are kept
    for late readers (AG-UI's and the AI SDK's replays from ``Last-Event-ID``)."""
    cuts_live_runs: bool = False
    """Whether a live run whose events grow past ``max_live_run_bytes`` is cut there (its
    agent cancelled, the :meth:`Encoder.failed` events of a
    :class:`~miniagents.ext.errors.WebRunTooLargeError` its end): AG-UI's and the AI SDK's
    runs, whose one turn holds what it streams, and A2A's turns (its task then fails; a
    message to a task that holds more is refused besides)."""

    fails_stopped_runs: bool = False
    """Whether a live run that its server's stop ends fails with a
    :class:`~miniagents.ext.errors.WebServerStoppedError` (AG-UI's ``RUN_ERROR``, the AI
    SDK's error part: its client tells a stopped server from a finished run, and is told
    whether it can read the run again), rather than ending cancelled (A2A's task)."""

    tells_errors: bool = False
    """Whether the run manager tells its clients what
    :func:`~miniagents.ext.told_errors.told_error` says of an agent's error (by default its
    class and a reference, the error logged; its text with ``WebSettings.error_texts``, as
    the manager's settings stand) and of a step of the server's own that failed (a
    sentence that blames the server, not the agent), through :meth:`failed`: AG-UI's,
    the AI SDK's and A2A's. Else its encoder tells its own (:meth:`Encoder.failed`)."""

    def told_as_written(self, error: Exception) -> bool:
        """Whether its clients are told ``error``'s text as written, whatever ``error_texts`` says.

        See :meth:`told` (``error_texts``: ``WebSettings.error_texts``). By default, what
        every place that tells an error asks,
        :func:`~miniagents.ext.tools.running.told_as_written`: the errors whose class says
        they are written for their reader (``told_as_written``: a run cut or stopped,
        ``WebRunTooLargeError``, ``WebServerStoppedError``; a question withdrawn,
        ``InputRequestError``; a ``ToolError``). A protocol that writes more for its
        clients says so here, and only here (A2A: a task's rejection).
        """
        return told_as_written(error)

    logger: logging.Logger = logging.getLogger("miniagents.ext.web")
    """The logger that logs an agent's error whole, under the reference its client is told."""

    def told(
        self,
        error: Exception,
        failed: str,
        *,
        error_texts: bool,
        logged: str = "",
        who: str = "The agent",
    ) -> ToldError:
        """What its client is told of the agent's ``error``, what failed ``failed``.

        The errors the library wrote for its clients (:meth:`told_as_written`) are told as they
        are, with no reference (``""``), not logged; any other as
        :func:`~miniagents.ext.told_errors.told_error` says (its class and a reference, the
        error logged whole; its text with ``error_texts``; ``logged``: the reference the log
        has it under already, told again and not logged; ``who``: what failed, as the
        client's sentence begins, ``"The agent researcher"`` say). The run manager tells so
        where the protocol :attr:`tells_errors`, and an encoder that tells its own (A2A's)
        asks it so.
        """
        if self.told_as_written(error):
            return ToldError(str(error) or repr(error), "")
        return told_error(
            error, self.logger, failed, error_texts=error_texts, logged=logged, who=who
        )

    def failed(self, encoder: Encoder, error: Exception, told: ToldError) -> list[str]:
        """The events that end a run with ``error``, its client told ``told`` (text, reference).

        Called only for a protocol that :attr:`tells_errors`: what the run manager tells of
        an agent's error, or of a step of the server's own that failed. By default the
        encoder's :meth:`~Encoder.failed` events, which tell the error's own text (AG-UI's and
        the AI SDK's tell ``told``'s text; A2A's its reference apart too, ``errorReference``).
        """
        del told  # (its encoder tells its own)
        return encoder.failed(error)

    def cut(self, encoder: Encoder, error: Exception, unlogged: Sequence[str]) -> list[str]:
        """The events that end a run cut with ``error`` (``max_live_run_bytes``) as it stands.

        ``unlogged``: the last events ``encoder`` made, of one part, which the run does not
        hold (it was cut between two events of that part): what they open is not open for
        its clients, what they end is. By default the encoder's :meth:`~Encoder.failed`
        events (a protocol whose failure ends no item).
        """
        del unlogged  # (its failure's events end no item)
        return encoder.failed(error)

    def asking(self, encoder: Encoder, message_id: str, request: InputRequest) -> list[str]:
        """The events of the agent's question ``request`` where its job pauses for the answer.

        Called only for a protocol that :attr:`takes_answers`; ``message_id``: the
        question's id among the reply's parts. By default none.
        """
        del encoder, message_id, request  # (a protocol whose clients answer none)
        return []

    def ended(self, encoder: Encoder, runs: Sequence[Sequence[str]]) -> int:
        """A job has ended, its encoder ``encoder``; ``runs``: its runs' events, let go of next.

        A protocol that answers about an ended job (A2A: its task, for ``GetTask``) keeps
        from them, in its encoder, what that takes, as little as it can: each run is kept
        as long as the run manager keeps it for late readers, not as long as its job. By
        default nothing is kept (an ended run is answered from its own log).

        Returns:
            About how many bytes the encoder keeps so (the run manager bounds their sum,
            ``max_ended_run_bytes``): ``0`` by default.
        """
        del encoder, runs  # (nothing to keep)
        return 0


class ItemProtocol(WebProtocol):
    """A protocol whose encoder is an :class:`ItemEncoder`: AG-UI's and the AI SDK's.

    A failed run's events tell the text :meth:`~WebProtocol.told` gives; a cut run's end
    the items its client saw.
    """

    def failed(self, encoder: Encoder, error: Exception, told: ToldError) -> list[str]:
        """The encoder's events of ``error``, telling ``told``'s text."""
        assert isinstance(encoder, ItemEncoder)  # (its own)
        return encoder.failed(error, told.text)

    def cut(self, encoder: Encoder, error: Exception, unlogged: Sequence[str]) -> list[str]:
        """The encoder's ending, the items of the ``unlogged`` events as the client saw them."""
        assert isinstance(encoder, ItemEncoder)  # (its own)
        return encoder.cut(error, unlogged)
