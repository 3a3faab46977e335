"""The run recorder: the agent tree of a program's run, every message, token and model call.

::

    from miniagents.ext.studio import record_runs

    record_runs()            # this program's run goes to miniagents_runs.sqlite

(or run the program with ``miniagents run program.py``, unchanged). A :class:`Recorder`
plugs into the three hooks that tracing uses (no events of its own): the interaction
observer of :mod:`miniagents.miniagents.lowlevel`, the model calls' of
:mod:`miniagents.ext.llm.observing` and the tool calls' of
:mod:`miniagents.ext.tools.observing` (an observer set before it, OpenTelemetry's, is
still told everything). What it is told becomes the run's events (see
:mod:`miniagents.ext.studio.store`)::

    node      an interaction starts (kind "agent": the agent's alias) or a tool call
              (kind "tool": the tool's name, its arguments); its parent is the node in
              whose task it started: who inquired whom, or which tool call ran it
    input     an input message of an interaction, once it is complete
    reply     a message of its replies, once complete (with when it entered them)
    call      a call of a model: its provider, model, full request and request key
              (the call cache's: a fork replays the call by it)
    tokens    what the call streamed, each piece with its time (text, tool calls)
    call_end  its Finish (tokens as reported), its cost, whether it was replayed
    decision  a person's decision on a tool call that waited for approval
    end       the node ended: its error (an agent's), or a tool call's result

The program's loop only queues what it is told (a tuple each: no JSON, no query there);
a :class:`~miniagents.ext.studio.store.RunWriter` thread writes it in batches. Messages
are recorded when complete (a recorder never reads a stream: it follows its end, so it
changes nothing for the agents); the tokens of the model calls as they come, so that the
studio shows them live. A message's text is kept up to :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import atexit
import contextvars
import dataclasses
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from miniagents.ext.llm.cache.keys import canonical_request, request_key
from miniagents.ext.llm.cache.stores import events_to_json
from miniagents.ext.llm.messages import TokenUsage
from miniagents.ext.llm.observing import LLMCallWatch, observe_llm_calls
from miniagents.ext.llm.pricing import cost_usd, price_provider_of
from miniagents.ext.llm.provider import Finish, LLMCall, LLMEvent, LLMProvider
from miniagents.ext.studio.errors import StudioConfigurationError
from miniagents.ext.studio.fork import Fork, replay_recorded_calls
from miniagents.ext.studio.store import (
    FLUSH_INTERVAL,
    RunInfo,
    RunStore,
    RunWriter,
    new_run_id,
    store_path,
)
from miniagents.ext.tools.approval import ToolDecision
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.observing import ToolCallWatch, observe_tool_calls
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message import Message
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents.lowlevel import (
    InteractionWatch,
    ObservedAgent,
    observe_interactions,
)
from miniagents.promising.lowlevel import ReplayCore, core_of

__all__ = ["MAX_TEXT", "Recorder", "record_runs"]

MAX_TEXT = 200_000
"""The most characters of a message's text a recording keeps (the rest is cut, and said)."""

_now = time.time

_current: contextvars.ContextVar[_Node | None] = contextvars.ContextVar(
    "miniagents_studio_node", default=None
)
"""The node whose task this is (an interaction's, a tool call's): the parent of what starts
here."""


class Recorder:
    """Records a program's run into a store of runs (see the module).

    Use it as a context manager, or :meth:`start` it and :meth:`close` it (or use
    :func:`record_runs`, which closes it as the program exits)::

        with Recorder("runs.sqlite", name="nightly"):
            asyncio.run(main())

    One recorder records at a time in a process (the hooks are the process's).

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
        StudioConfigurationError: for an empty name, or a ``flush_interval`` that is not a
            positive number of seconds.
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
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, (int, float))
            or not flush_interval > 0
        ):
            raise StudioConfigurationError(
                f"flush_interval must be a positive number of seconds, got {flush_interval!r}."
            )
        self.flush_interval = float(flush_interval)
        self.store = store if isinstance(store, RunStore) else RunStore(store_path(store))
        if command is None:
            program = sys.argv[0] if sys.argv else ""
            command = (sys.executable, *sys.argv) if program and Path(program).is_file() else ()
        if name is None:
            name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "run"
        if not isinstance(name, str) or not name.strip():
            raise StudioConfigurationError(f"A run's name must be a non-empty str, got {name!r}.")
        self.name = name
        self.command = tuple(command)
        self.fork = fork if fork is not None else Fork.from_environment()
        self.run_id = new_run_id() if self.fork is None else self.fork.child
        self._ids = iter(range(1, sys.maxsize)).__next__
        self._writer: RunWriter | None = None
        self._before: tuple[Any, Any, Any] = (None, None, None)
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
        """
        if self._writer is not None or self._closed:
            raise StudioConfigurationError("This Recorder was started already; make a new one.")
        fork = self.fork
        if fork is not None:
            self._unroute = replay_recorded_calls(self.store, fork)
        self.store.open_run(
            RunInfo(
                id=self.run_id,
                name=self.name,
                command=self.command,
                cwd=os.getcwd(),
                started=_now(),
                ended=None,
                status="running",
                error=None,
                forked_from=None if fork is None else fork.run,
                fork=None if fork is None else fork.as_json(),
            )
        )
        self._writer = writer = RunWriter(
            self.store, self.run_id, _Encoder().encode, self.flush_interval
        )
        self._put = writer.put
        self._before = (
            observe_interactions(self),
            observe_llm_calls(self),
            observe_tool_calls(self),
        )
        return self

    def close(self, error: BaseException | None = None) -> None:
        """Stop recording, write what is left and say how the run ended (once).

        Args:
            error: The error the program ended with (``None``: it ended well).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        writer = self._writer
        if writer is None:
            return
        interactions, calls, tools = self._before
        _restore(observe_interactions, self, interactions)
        _restore(observe_llm_calls, self, calls)
        _restore(observe_tool_calls, self, tools)
        if self._unroute is not None:
            self._unroute()
        writer.close()
        if error is None or _clean_exit(error):
            self.store.end_run(self.run_id, "ok", None)
        else:
            self.store.end_run(self.run_id, "failed", _error_text(error))

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(error)

    def flush(self) -> None:
        """Write what was recorded so far now (in this thread)."""
        if self._writer is not None:
            self._writer.flush()

    # -- the interactions (miniagents.miniagents.lowlevel.InteractionObserver) -----------

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        """A node for the interaction, a child of the node whose task inquired it."""
        before = self._before[0]
        other = None if before is None else before.interaction_started(agent)
        parent = _current.get()
        node = _AgentWatch(self._put, self._ids(), other)
        self._put(
            (
                "node",
                node.id,
                None if parent is None else parent.id,
                "agent",
                agent.alias,
                _now(),
                None,
            )
        )
        _current.set(node)  # (in the interaction's own task)
        return node

    def carrier(self) -> Mapping[str, str]:
        """The carrier of the observer set before, if any (the recorder has none)."""
        before = self._before[0]
        return {} if before is None else before.carrier()

    # -- the calls of models (miniagents.ext.llm.observing.LLMCallObserver) --------------

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        """A call of the model, in the node of the agent that makes it."""
        before = self._before[1]
        other = None if before is None else before.llm_call_started(agent_alias, provider, call)
        node = _current.get()
        watch = _CallWatch(self._put, self._ids(), other)
        self._put(("call", watch.id, None if node is None else node.id, _now(), provider, call))
        return watch

    # -- the tool calls (miniagents.ext.tools.observing.ToolCallObserver) ----------------

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        """A node for the tool call, in the call's own task (what it inquires is its child)."""
        before = self._before[2]
        other = None if before is None else before.tool_call_started(tool, call, result)
        parent = _current.get()
        node = _ToolWatch(self._put, self._ids(), other, result)
        extra = {"arguments": call.text or "", "call_id": call.call_id}
        self._put(
            (
                "node",
                node.id,
                None if parent is None else parent.id,
                "tool",
                tool.name,
                _now(),
                extra,
            )
        )
        _current.set(node)  # (in the call's own task)
        return node


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


def _restore(observe: Callable[[Any], Any], recorder: Recorder, before: object) -> None:
    """Put back the observer set before ``recorder`` (unless another replaced it since)."""
    current = observe(before)
    if current is not recorder:  # (someone set theirs after the recorder's: it stays)
        observe(current)


def _clean_exit(error: BaseException) -> bool:
    return isinstance(error, SystemExit) and error.code in (None, 0)


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:2_000]


# -- the watches ---------------------------------------------------------------------------

_Put = Callable[[tuple[Any, ...]], None]


class _Node:
    """A node of the tree: an interaction or a tool call."""

    __slots__ = ("id", "put")

    def __init__(self, put: _Put, node_id: int) -> None:
        self.put = put
        self.id = node_id


class _AgentWatch(_Node):
    """The watch of an interaction: its input, its reply messages, its end."""

    __slots__ = ("other", "replies")

    def __init__(self, put: _Put, node_id: int, other: InteractionWatch | None) -> None:
        super().__init__(put, node_id)
        self.other = other
        self.replies = 0

    def interaction_input(self, inputs: MessageSequencePromise) -> None:
        other = self.other
        told = None if other is None else getattr(other, "interaction_input", None)
        if told is not None:
            told(inputs)
        core = core_of(inputs)
        if core.done and not core.pieces:  # (no input: the common case of an agent called)
            return
        core.when_done(lambda: self._inputs(core))

    def _inputs(self, core: ReplayCore[Any]) -> None:
        for index, promise in enumerate(core.pieces, core.base):
            _follow(self.put, self.id, "input", index, promise)

    def interaction_replied(self, message: MessagePromise) -> None:
        other = self.other
        told = None if other is None else getattr(other, "interaction_replied", None)
        if told is not None:
            told(message)
        index = self.replies
        self.replies = index + 1
        _follow(self.put, self.id, "reply", index, message)

    def interaction_ended(self, error: BaseException | None) -> None:
        self.put(("end", self.id, _now(), error, None))
        if self.other is not None:
            self.other.interaction_ended(error)


def _follow(put: _Put, node: int, role: str, index: int, promise: MessagePromise) -> None:
    """Record ``promise`` once complete (now, if it is)."""
    entered = _now()
    core = core_of(promise)
    if core.done:
        _message(put, node, role, index, entered, promise, core)
    else:
        core.when_done(lambda: _message(put, node, role, index, entered, promise, core))


def _message(
    put: _Put,
    node: int,
    role: str,
    index: int,
    entered: float,
    promise: MessagePromise,
    core: ReplayCore[Any],
) -> None:
    error = core.error  # (read, never raised: its error is its readers' to receive)
    message = None if error is not None else promise.message_now()
    put(("message", node, role, index, entered, _now(), message, error))


class _CallWatch:
    """The watch of a call of a model: its events, each with its time, and its end."""

    __slots__ = ("finish", "id", "other", "put")

    def __init__(self, put: _Put, call_id: int, other: LLMCallWatch | None) -> None:
        self.put = put
        self.id = call_id
        self.other = other
        self.finish: Finish | None = None

    async def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        source = events if self.other is None else self.other.events(events)
        put, call = self.put, self.id
        try:
            async for event in source:
                if type(event) is str:
                    if event:
                        put(("token", call, _now(), event))
                elif isinstance(event, Finish):
                    self.finish = event
                else:
                    put(("token", call, _now(), event))
                yield event
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def call_ended(self, error: BaseException | None) -> None:
        self.put(("call_end", self.id, _now(), self.finish if error is None else None, error))
        if self.other is not None:
            self.other.call_ended(error)


class _ToolWatch(_Node):
    """The watch of a tool call: the decision on it, if it waited for one, and its result."""

    __slots__ = ("other", "result")

    def __init__(
        self,
        put: _Put,
        node_id: int,
        other: ToolCallWatch | None,
        result: MessagePromise[ToolResultMessage],
    ) -> None:
        super().__init__(put, node_id)
        self.other = other
        self.result = result

    def tool_call_decided(self, decision: ToolDecision) -> None:
        self.put(("decision", self.id, _now(), decision))
        told = getattr(self.other, "tool_call_decided", None)
        if told is not None:
            told(decision)

    def tool_call_ended(self, error: BaseException | None) -> None:
        core = core_of(self.result)
        result = None
        if core.done and core.error is None:
            result = self.result.message_now()
        self.put(("end", self.id, _now(), error, result))
        if self.other is not None:
            self.other.tool_call_ended(error)


# -- the events (in the writer's thread) ---------------------------------------------------


class _Encoder:
    """Turns the queued tuples into events (see the module), in the writer's thread.

    The pieces a call streamed in one batch become one ``tokens`` event, where the first
    of them was.
    """

    def __init__(self) -> None:
        self.models: dict[int, tuple[str, str | None]] = {}  # call id: model, price provider

    def encode(self, batch: list[tuple[Any, ...]]) -> list[tuple[float, str, Mapping[str, Any]]]:
        """The events of ``batch``, in order."""
        events: list[tuple[float, str, Mapping[str, Any]]] = []
        pieces: dict[int, list[Any]] = {}
        for item in batch:
            kind = item[0]
            if kind == "token":
                _, call, t, event = item
                found = pieces.get(call)
                if found is None:
                    found = pieces[call] = []
                    events.append((t, "tokens", {"call": call, "items": found}))
                found.append([t, event if type(event) is str else events_to_json([event])[0]])
            elif kind == "node":
                _, node, parent, node_kind, name, t, extra = item
                events.append(
                    (
                        t,
                        "node",
                        {
                            "id": node,
                            "parent": parent,
                            "kind": node_kind,
                            "name": name,
                            **(extra or {}),
                        },
                    )
                )
            elif kind == "message":
                _, node, role, index, entered, t, message, error = item
                data: dict[str, Any] = {"node": node, "index": index, "entered": entered}
                if message is not None:
                    data["message"] = _message_json(message)
                if error is not None:
                    data["error"] = _error_json(error)
                events.append((t, role, data))
            elif kind == "call":
                events.append(self._call(*item[1:]))
            elif kind == "call_end":
                events.append(self._call_end(*item[1:]))
            elif kind == "end":
                _, node, t, error, result = item
                data = {"id": node}
                if error is not None:
                    data["error"] = _error_json(error)
                if result is not None:
                    data["result"] = _message_json(result)
                events.append((t, "end", data))
            elif kind == "decision":
                _, node, t, decision = item
                events.append((t, "decision", {"node": node, **_decision_json(decision)}))
        return events

    def _call(
        self, call_id: int, node: int | None, t: float, provider: object, call: LLMCall
    ) -> tuple[float, str, Mapping[str, Any]]:
        provider = _innermost(provider)
        request = canonical_request(provider, call)
        self.models[call_id] = (call.model, price_provider_of(provider))
        return (
            t,
            "call",
            {
                "id": call_id,
                "node": node,
                "provider": request["provider"],
                "model": call.model,
                "key": request_key(request),
                "request": request,
            },
        )

    def _call_end(
        self, call_id: int, t: float, finish: Finish | None, error: BaseException | None
    ) -> tuple[float, str, Mapping[str, Any]]:
        model, price_provider = self.models.pop(call_id, ("", None))
        data: dict[str, Any] = {"id": call_id}
        if finish is not None:
            data["finish"] = dataclasses.asdict(finish)
            data["cost_usd"] = _cost(finish, model, price_provider)
        if error is not None:
            data["error"] = _error_json(error)
        return t, "call_end", data


def _innermost(provider: object) -> object:
    """The provider that ``provider`` wraps (the budgets' meter wraps the agent's own)."""
    for _ in range(8):
        inner = getattr(provider, "wrapped", None)
        if inner is None:
            break
        provider = inner
    return provider


def _cost(finish: Finish, model: str, price_provider: str | None) -> float | None:
    """What the call cost (0: replayed, no request made); ``None``: not known."""
    if finish.replayed:
        return 0.0
    if finish.input_tokens is None or finish.output_tokens is None:
        return None
    usage = TokenUsage(
        input_tokens=finish.input_tokens,
        output_tokens=finish.output_tokens,
        cached_input_tokens=finish.cached_input_tokens,
        cache_write_tokens=finish.cache_write_tokens,
        reasoning_tokens=finish.reasoning_tokens,
    )
    return cost_usd(finish.model or model, usage, price_provider, batch=finish.batch_id is not None)


def _message_json(message: Message) -> dict[str, Any]:
    text = message.text or ""
    shown: dict[str, Any] = {"class": type(message).__name__, "text": text[:MAX_TEXT]}
    if len(text) > MAX_TEXT:
        shown["cut"] = len(text)
    try:
        fields = message.model_dump(mode="json", exclude={"text"})
    except Exception:  # (a field pydantic cannot write as JSON: its repr)
        fields = {name: repr(value) for name, value in message if name != "text"}
    if fields:
        shown["fields"] = fields
    return shown


def _error_json(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__name__, "message": str(error)[:2_000]}


def _decision_json(decision: ToolDecision) -> dict[str, Any]:
    return {
        "approved": decision.approved,
        "decided_by": decision.decided_by,
        "reason": decision.reason,
        "edited": decision.arguments is not None,
    }
