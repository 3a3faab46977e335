"""The run recorder: the agent tree of a program's run, every message, token and model call.

::

    from miniagents.ext.studio import record_runs

    record_runs()            # this program's run goes to miniagents_runs.sqlite

(or run the program with ``miniagents run program.py``, unchanged). A :class:`Recorder`
plugs into the three hooks that tracing uses (no events of its own): the interaction
observer of :mod:`miniagents.miniagents.lowlevel`, the model calls' of
:mod:`miniagents.ext.llm.observing` and the tool calls' of
:mod:`miniagents.ext.tools.observing`, plugged in beside the observers there
(OpenTelemetry's, installed before it or while it records), which stay as they are, and
unplugged alone when it closes. What it is told becomes the run's events (see
:mod:`miniagents.ext.studio.events`): each interaction a node (its parent: the node in
whose task it started, so who inquired whom, or which tool call ran it), with its input
and reply messages, each call of a model with its full request (and the call cache's key
of it: a fork replays the call by it), every piece it streamed with its time, its
``Finish`` and cost; each tool call a node, with its arguments, the decision on it if it
waited for approval, and its result; the errors of each.

The program's loop only queues a tuple per event (no JSON, no query there); a
:class:`~miniagents.ext.studio.store.RunWriter` thread writes them in batches. Messages are
recorded when complete (a recorder never reads a stream: it follows its end, so it
changes nothing for the agents); the pieces of the model calls as they come, so that the
studio shows them live.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import itertools
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from miniagents.arguments import check_seconds, refused_argument
from miniagents.ext.llm.observing import (
    LLMCallWatch,
    innermost_provider,
    llm_call_observers,
)
from miniagents.ext.llm.pricing import price_provider_of
from miniagents.ext.llm.provider import Finish, LLMCall, LLMEvent, LLMProvider, aclose_events
from miniagents.ext.studio.errors import StudioConfigurationError
from miniagents.ext.studio.events import MAX_TEXT, CallEnded, CallRequest, encode_batch
from miniagents.ext.studio.fork import (
    FORK_VARIABLE,
    Fork,
    replay_no_fork_here,
    replay_recorded_calls,
    replaying_fork,
)
from miniagents.ext.studio.store import (
    ABANDONED,
    FLUSH_INTERVAL,
    RunInfo,
    RunStatus,
    RunStore,
    RunWriter,
    new_run_id,
    store_path,
)
from miniagents.ext.tools.approval import ToolDecision
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.observing import (
    ToolCallWatch,
    tool_call_observers,
)
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise, is_ready
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.lowlevel import (
    InteractionWatch,
    ObservedAgent,
    interaction_observers,
)
from miniagents.promising.lowlevel import ReplayCore, core_of, loop_runs

__all__ = ["Recorder", "record_runs"]

_now = time.time_ns  # (an int: JSON writes it faster than a float)


class Recorder:
    """Records a program's run into a store of runs (see the module).

    Use it as a context manager, or :meth:`start` it and :meth:`close` it (or use
    :func:`record_runs`, which closes it as the program exits)::

        with Recorder("runs.sqlite", name="nightly"):
            asyncio.run(main())

    In async code, ``async with Recorder(...):`` ends through :meth:`aclose` (the run's end
    is written as the block ends, without blocking the loop); a plain ``with`` block there
    ends without waiting for the writer's thread (see :meth:`close`).

    Several recorders may record side by side in a process (each into its own run): each
    keeps its own node of each task, so that its runs' parents are its own nodes. A fork's
    recorder records and replays the program it runs again: what starts, from its start on,
    in the context it was started in (the interactions started there and all they cause),
    so that two forks run side by side in one process, each in a task of its own, each
    replay and record their own. What starts in a context where no fork was started (a
    ``threading.Thread``'s, ``loop.run_in_executor``'s) is the process's only fork's, if
    one alone is running, and none's if several are (see
    :func:`~miniagents.ext.studio.fork.replay_recorded_calls`); a recorder of no fork makes
    the calls of its context as they are, whatever fork runs beside it, and records none of
    a fork's.

    The hooks hold a recorder weakly: one dropped unclosed (or open as the interpreter
    exits) is unplugged, writes what it recorded and ends its run as ``"abandoned"``, with
    a ``ResourceWarning`` (as an unclosed file does).

    Args:
        store: The store: a :class:`RunStore`, or its file; ``None``: :func:`store_path`
            (``MINIAGENTS_STUDIO``, else ``miniagents_runs.sqlite``).
        name: The run's name (default: the program's file name).
        command: How to run the program again, for forks (default: this interpreter and
            ``sys.argv``, when ``sys.argv[0]`` is a file; else the run cannot be forked).
        fork: The fork this run is (``None``: the one ``MINIAGENTS_STUDIO_FORK`` names, if
            any): the calls of the run it forks are replayed, the one it edits changed
            (see :mod:`miniagents.ext.studio.fork`).
        flush_interval: Seconds at most between two batches written (what a live view of
            the run lags behind it).

    Raises:
        StudioConfigurationError: for an empty name, a ``flush_interval`` that is not a
            positive number of seconds, a ``store`` that is neither a store nor a path (or
            is a directory), or a ``command`` that is not a sequence of str (a str alone is
            refused).
        StudioForkError: if ``MINIAGENTS_STUDIO_FORK`` holds no fork.
    """

    def __init__(
        self,
        store: RunStore | str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        command: Sequence[str] | None = None,
        fork: Fork | None = None,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.flush_interval = check_seconds(
            flush_interval, "flush_interval", error=StudioConfigurationError
        )
        self.store = store if isinstance(store, RunStore) else RunStore(store_path(store))
        if command is None:
            program = sys.argv[0] if sys.argv else ""
            command = (sys.executable, *sys.argv) if program and Path(program).is_file() else ()
        if name is None:
            name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "run"
        if not isinstance(name, str) or not name.strip():
            raise StudioConfigurationError(f"A run's name must be a non-empty str, got {name!r}.")
        self.name = name
        given: object = command  # (typed as wanted; given untyped too)
        parts = None if isinstance(given, str) or not isinstance(given, Iterable) else tuple(given)
        if parts is None or not all(isinstance(part, str) for part in parts):
            raise refused_argument(
                command,
                "command",
                "a sequence of str (the program and its arguments)",
                owner="Recorder",
                fix='Pass e.g. command=["python", "program.py"], or command=() for none.',
                error=StudioConfigurationError,
            )
        self.command: tuple[str, ...] = parts
        self._fork_from_environment = fork is None
        self.fork = fork if fork is not None else Fork.from_environment()
        self.run_id = new_run_id() if self.fork is None else self.fork.child
        self._ids = itertools.count(1).__next__
        # the node of this recorder whose task this is (an interaction's, a tool call's): the
        # parent of what starts here (another recorder's nodes are not this one's parents)
        self._current: contextvars.ContextVar[_AgentWatch | _ToolWatch | None] = (
            contextvars.ContextVar(f"miniagents_studio_node_{self.run_id}", default=None)
        )
        self._writer: RunWriter | None = None
        self._unroute: Callable[[], None] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Recorder({self.store!r}, run_id={self.run_id!r})"

    # -- its life ------------------------------------------------------------------------

    def start(self) -> Recorder:
        """Open the run and start recording (and, for a fork, replaying); return ``self``.

        Raises:
            StudioConfigurationError: if it was started before.
            StudioStoreError: if the store cannot be written.
            StudioNotFoundError: if the fork's run is not in the store.
            StudioRunTooLargeError: if the fork's run has more events than the fork's
                ``max_events`` (it grew since the fork was planned).
        """
        if self._writer is not None or self._closed:
            raise StudioConfigurationError("This Recorder was started already; make a new one.")
        fork = self.fork
        if fork is not None:
            self._unroute = replay_recorded_calls(self.store, fork)
        else:  # (not another task's fork's either: its only one would replay the calls here)
            replay_no_fork_here()
        try:
            self.store.open_run(
                RunInfo(
                    id=self.run_id,
                    name=self.name,
                    command=self.command,
                    cwd=os.getcwd(),
                    started=time.time(),
                    ended=None,
                    status="running",
                    error=None,
                    forked_from=None if fork is None else fork.run,
                    fork=None if fork is None else fork.as_json(),
                )
            )
        except BaseException:
            if self._unroute is not None:
                self._unroute()  # (no run: nothing replays either)
            raise
        if fork is not None and self._fork_from_environment:  # (the process's first recorder
            os.environ.pop(FORK_VARIABLE, None)  # is the fork: not another, nor a child's)
        self._writer = writer = RunWriter(
            self.store, self.run_id, encode_batch, self.flush_interval
        )
        # (what the hooks and their watches put the events into: a task's context that
        # outlives the recorder keeps its watches, and through them this alone)
        self._sink = sink = _Sink(writer.put)
        self._plug = plug = _Plug(weakref.ref(self))
        _plugged(plug, True)
        self._dropped = weakref.finalize(
            self, _abandoned, plug, sink, writer, self._unroute, self.run_id
        )
        return self

    def close(self, error: BaseException | None = None) -> None:
        """Stop recording, write what is left and say how the run ended (once).

        The writer's thread writes the last batch, then says how the run ended. Called in
        a running loop (the end of a ``with`` block in async code) it does not wait for
        that thread (a loop waits for no thread): a read of the run in this process waits
        for it instead; :meth:`aclose` waits for it without blocking the loop.

        Args:
            error: The error the program ended with (``None``: it ended well).
        """
        writer = self._stopped()
        if writer is not None:
            writer.close(0.0 if loop_runs() else 60.0, ending=_ending(error))

    async def aclose(self, error: BaseException | None = None) -> None:
        """Close it (see :meth:`close`) in async code: wait, in a thread, for the run's end.

        Args:
            error: The error the program ended with (``None``: it ended well).
        """
        writer = self._stopped()
        if writer is not None:
            ending = _ending(error)
            await asyncio.to_thread(lambda: writer.close(60.0, ending=ending))

    def _stopped(self) -> RunWriter | None:
        """Stop recording (once): its writer, to close, the first time (else ``None``)."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
        writer = self._writer
        if writer is None:
            return None
        self._dropped.detach()
        _plugged(self._plug, False)
        self._sink.put = _dropped
        if self._unroute is not None:
            self._unroute()
        return writer

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(error)

    async def __aenter__(self) -> Recorder:
        return self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose(error)

    def flush(self) -> None:
        """Write what was recorded so far now (in this thread)."""
        if self._writer is not None:
            self._writer.flush()

    def _outside(self) -> bool:
        """Whether another fork than this recorder's (or, for a fork's, none) replays here.

        A recorder of no fork leaves out what a fork beside it runs, as a fork's leaves out
        what runs outside it: their runs never hold each other's calls.
        """
        return replaying_fork() is not self.fork

    # -- the interactions (miniagents.miniagents.lowlevel.InteractionObserver) -----------

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        """A node for the interaction, a child of the node whose task inquired it."""
        if self._outside():
            return None
        writer = self._sink
        node = _AgentWatch(writer, self._ids())
        parent = self._current.get()
        parent_id = None if parent is None else parent.id
        writer.put(("node", node.id, parent_id, "agent", agent.alias, _now(), None))
        self._current.set(node)  # (in the interaction's own task)
        return node

    def carrier(self) -> Mapping[str, str]:
        """None: the recorder follows no trace across processes."""
        return {}

    # -- the calls of models (miniagents.ext.llm.observing.LLMCallObserver) --------------

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        """A call of the model, in the node of the agent that makes it."""
        if self._outside():
            return None
        node = self._current.get()
        price_provider = price_provider_of(innermost_provider(provider))
        writer = self._sink
        watch = _CallWatch(writer, self._ids(), call.model, price_provider)
        request = CallRequest(provider, call)
        writer.put(("call", watch.id, None if node is None else node.id, _now(), request))
        return watch

    # -- the tool calls (miniagents.ext.tools.observing.ToolCallObserver) ----------------

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        """A node for the tool call, in the call's own task (what it inquires is its child)."""
        if self._outside():
            return None
        parent = self._current.get()
        writer = self._sink
        node = _ToolWatch(writer, self._ids(), result)
        extra = {"arguments": call.text or "", "call_id": call.call_id}
        parent_id = None if parent is None else parent.id
        writer.put(("node", node.id, parent_id, "tool", tool.name, _now(), extra))
        self._current.set(node)  # (in the call's own task)
        return node


class _Plug:
    """What the hooks hold of a recorder: the recorder, weakly (one dropped unclosed goes)."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: weakref.ref[Recorder]) -> None:
        self.recorder = recorder

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        """The recorder's node for the interaction (none once it is gone)."""
        recorder = self.recorder()
        return None if recorder is None else recorder.interaction_started(agent)

    def carrier(self) -> Mapping[str, str]:
        """None: the recorder follows no trace across processes."""
        return {}

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        """The recorder's watch of the call of a model (none once it is gone)."""
        recorder = self.recorder()
        return None if recorder is None else recorder.llm_call_started(agent_alias, provider, call)

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        """The recorder's node for the tool call (none once it is gone)."""
        recorder = self.recorder()
        return None if recorder is None else recorder.tool_call_started(tool, call, result)


def _plugged(plug: _Plug, plugged: bool) -> None:
    """Plug ``plug`` into the three hooks a recorder is told by (``False``: out of them)."""
    for hook in (interaction_observers, llm_call_observers, tool_call_observers):
        if plugged:
            hook.add(plug)
        else:
            hook.remove(plug)


class _Sink:
    """Where a recorder's hooks and watches put its events: its writer's queue, until it closes."""

    __slots__ = ("put",)

    def __init__(self, put: Callable[[tuple[Any, ...]], None]) -> None:
        self.put = put


def _dropped(_item: tuple[Any, ...]) -> None:
    """What a closed recorder's sink does with what is put: nothing."""


def _abandoned(
    plug: _Plug,
    sink: _Sink,
    writer: RunWriter,
    unroute: Callable[[], None] | None,
    run_id: str,
) -> None:
    """A recorder dropped unclosed (or open at exit): unplug it, write its run, end it, warn.

    Dropped in a running loop, it returns at once: the writer's thread writes the last batch
    and ends the run (a loop waits for no thread); elsewhere it waits for them (at exit,
    the thread would not outlive the interpreter).
    """
    _plugged(plug, False)
    sink.put = _dropped
    if unroute is not None:
        unroute()
    # (in a running loop the thread writes on: a loop waits for no thread)
    writer.close(0.0 if loop_runs() else 60.0, ending=("abandoned", ABANDONED))
    warnings.warn(
        f"A Recorder of the run {run_id!r} was dropped without being closed; what it recorded "
        "was written and its run ended as abandoned. Close it (its `with` block, or close()), "
        "or use record_runs().",
        ResourceWarning,
        stacklevel=2,
    )


def record_runs(
    store: RunStore | str | os.PathLike[str] | None = None, *, name: str | None = None
) -> Recorder:
    """Record this program's run from now on, until it exits: the one line to add.

    The run ends when the program does (an error that ends it, uncaught, is the run's);
    its command is this interpreter and ``sys.argv``, so the studio can fork it. Started
    as a fork (``MINIAGENTS_STUDIO_FORK`` set, by the studio or ``miniagents studio
    fork``), the run replays the recorded calls (see :mod:`miniagents.ext.studio.fork`).

    Args:
        store: The store (see :class:`Recorder`).
        name: The run's name (default: the program's file name).

    Returns:
        The recorder (``recorder.run_id`` is the run's id).
    """
    recorder = Recorder(store, name=name).start()
    failure: list[BaseException] = []
    hook = sys.excepthook

    def noted(
        kind: type[BaseException], error: BaseException, traceback: TracebackType | None
    ) -> None:
        failure.append(error)
        hook(kind, error, traceback)

    sys.excepthook = noted
    atexit.register(lambda: recorder.close(failure[0] if failure else None))
    return recorder


def _ending(error: BaseException | None) -> tuple[RunStatus, str | None]:
    """How a run that ended with ``error`` (``None``: well) stands, and its error."""
    if error is None or (isinstance(error, SystemExit) and error.code in (None, 0)):
        return ("ok", None)
    return ("failed", _error_text(error))


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:2_000]


# -- the watches ---------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _AgentWatch:
    """The watch of an interaction: its input, its reply messages, its end."""

    writer: _Sink
    id: int
    replies: int = 0

    def interaction_input(self, inputs: MessageSequencePromise) -> None:
        core = core_of(inputs)
        core.when_done(lambda: self._inputs(core))

    def _inputs(self, core: ReplayCore[Any]) -> None:
        for index, promise in enumerate(core.pieces, core.base):
            _follow(self.writer, self.id, "input", index, promise)

    def interaction_replied(self, message: MessagePromise) -> None:
        index = self.replies
        self.replies = index + 1
        if is_ready(message):  # (the common case, inline: a ready message)
            whole = message.message_now()
            text = whole.text
            t = _now()
            if type(whole) is Message and text is not None and len(text) <= MAX_TEXT:
                self.writer.put(("message", self.id, "reply", index, None, t, text, None))
            else:
                self.writer.put(("message", self.id, "reply", index, None, t, whole, None))
        else:
            _follow(self.writer, self.id, "reply", index, message)

    def interaction_ended(self, error: BaseException | None) -> None:
        self.writer.put(("end", self.id, _now(), error, None))


def _follow(writer: _Sink, node: int, role: str, index: int, promise: MessagePromise) -> None:
    """Queue ``promise`` once complete (now, if it is)."""
    core = core_of(promise)
    if core.done:
        _message(writer, node, role, index, None, _now(), promise, core)
    else:
        entered = _now()
        core.when_done(lambda: _message(writer, node, role, index, entered, _now(), promise, core))


def _message(
    writer: _Sink,
    node: int,
    role: str,
    index: int,
    entered: int | None,
    t: int,
    promise: MessagePromise,
    core: ReplayCore[Any],
) -> None:
    error = core.error  # (read, never raised: its error is its readers' to receive)
    if error is not None:
        writer.put(("message", node, role, index, entered, t, None, error))
        return
    message = promise.message_now()
    text = message.text
    if type(message) is Message and text is not None and len(text) <= MAX_TEXT:
        writer.put(("message", node, role, index, entered, t, text, None))  # (its text says it all)
    else:
        writer.put(("message", node, role, index, entered, t, message, None))


@dataclass(slots=True, eq=False)
class _CallWatch:
    """The watch of a call of a model: its events, each with its time, and its end."""

    writer: _Sink
    id: int
    model: str
    price_provider: str | None
    finish: Finish | None = None

    async def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        writer, call = self.writer, self.id  # (writer.put read at each: it drops once closed)
        try:
            async for event in events:
                if type(event) is str:
                    if event:
                        writer.put(("token", call, _now(), event))
                elif isinstance(event, Finish):
                    self.finish = event
                else:
                    writer.put(("token", call, _now(), event))
                yield event
        finally:
            await aclose_events(events)

    def call_ended(self, error: BaseException | None) -> None:
        finish = self.finish
        ended = None
        if error is None and finish is not None:
            ended = CallEnded(finish, self.model, self.price_provider)
        self.writer.put(("call_end", self.id, _now(), ended, error))


@dataclass(slots=True, eq=False)
class _ToolWatch:
    """The watch of a tool call: the decision on it, if it waited for one, and its result."""

    writer: _Sink
    id: int
    result: MessagePromise[ToolResultMessage]

    def tool_call_decided(self, decision: ToolDecision) -> None:
        self.writer.put(("decision", self.id, _now(), decision))

    def tool_call_ended(self, error: BaseException | None) -> None:
        core = core_of(self.result)
        result = None
        if core.done and core.error is None:
            result = self.result.message_now()
        self.writer.put(("end", self.id, _now(), error, result))
