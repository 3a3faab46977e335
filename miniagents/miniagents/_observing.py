"""Observing interactions: the one hook that tracing (e.g. ``miniagents.ext.otel``) plugs into.

An :class:`InteractionObserver`, once set with :func:`observe_interactions`, is told when
each interaction starts (in the interaction's own task, before the agent function runs, so
that what it puts in context variables there is what the agent and everything it starts
see), and its :class:`InteractionWatch` when the interaction's reply stream has ended: the
sequence and every message in it, to the last token (or the error)::

    inquire ......... [task starts] agent runs ... returns     last token of a reply |
    observer:          interaction_started(agent) -> watch
    watch:                                                      interaction_ended(error)

A watch may also want the messages (a run recorder does; tracing does not): one with an
``interaction_input`` method is given the interaction's input sequence as it starts, and
one with an ``interaction_replied`` method each message as it enters the replies (before
the caller can read it), both as they are, maybe still streaming
(:class:`InteractionMessagesWatch`). Reading them would make the watch one of their
consumers: a watch that only follows them (``core_of(message).when_done(...)``) changes
nothing for the agents.

With no observer set (the default) an interaction costs one call of
:func:`interaction_ending` that finds none, and nothing per message or token.

Several observers may observe at once (the evals' recorder beside tracing): each one plugs
itself in with ``interaction_observers.add(observer)`` and out with
``interaction_observers.remove(observer)`` (the hook :data:`interaction_observers`), in any
order, and the others stay as they were. The hook then holds one observer that tells each
of them in turn (in the order they were added), and whose watch tells each of their
watches; an error of one is logged once (for its class and method), and the others are
told all the same.

A trace that crosses processes (a Ray worker) travels as a *carrier*: the observer's
:meth:`~InteractionObserver.carrier` (e.g. a W3C ``traceparent``) is sent along
(:func:`outgoing_carrier`), and the other process makes it current with
:func:`adopt_carrier`, for its observer to read with :func:`incoming_carrier`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from miniagents.messages.message_promise import MessagePromise, is_ready
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.miniagents._hooks import Fanout, Hook, observer_hook
from miniagents.miniagents.logged_once import LoggedOnce
from miniagents.promising.lowlevel import ReplayCore, core_of

__all__ = [
    "InteractionEnding",
    "InteractionMessagesWatch",
    "InteractionObserver",
    "InteractionWatch",
    "ObservedAgent",
    "adopt_carrier",
    "incoming_carrier",
    "interaction_ending",
    "interaction_observers",
    "observe_interactions",
    "outgoing_carrier",
]


class ObservedAgent(Protocol):
    """What an observer is told about the agent of an interaction (a ``MiniAgent`` is one)."""

    @property
    def alias(self) -> str:
        """The agent's name."""
        ...

    @property
    def description(self) -> str | None:
        """What the agent does."""
        ...


class InteractionWatch(Protocol):
    """What an observer keeps for one interaction, to be told when its replies have ended."""

    def interaction_ended(self, error: BaseException | None) -> None:
        """The reply stream has ended: its sequence and every message in it.

        Args:
            error: The error that ended the sequence (``StreamCancelledError`` when it was
                cancelled), else the first error that ended one of its messages, else
                ``None``.
        """
        ...


class InteractionMessagesWatch(InteractionWatch, Protocol):
    """A watch that is also given the interaction's input and each message it replies."""

    def interaction_input(self, inputs: MessageSequencePromise) -> None:
        """The interaction's input messages (maybe still streaming), as it starts."""
        ...

    def interaction_replied(self, message: MessagePromise) -> None:
        """A message enters the replies (maybe still streaming), in the replies' order."""
        ...


class InteractionObserver(Protocol):
    """Told about every interaction that starts while it is set (see the module docstring).

    Its methods must be quick and must not raise: an error they raise is logged (once per
    its class and method) and the interaction goes on unobserved by it.
    """

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        """An interaction of ``agent`` starts, in its own task; ``None``: do not watch it."""
        ...

    def carrier(self) -> Mapping[str, str]:
        """What another process needs to continue the current trace (e.g. ``traceparent``)."""
        ...


class _Observers(Fanout[InteractionObserver]):
    """Several observers as one (what the hook holds while more than one is plugged in)."""

    __slots__ = ()

    def interaction_started(self, agent: ObservedAgent) -> InteractionWatch | None:
        return self.watch(
            "interaction_started", lambda told: told.interaction_started(agent), _watches
        )

    def carrier(self) -> Mapping[str, str]:
        carrier: dict[str, str] = {}
        for carried in self.each("carrier", lambda told: told.carrier()):
            carrier.update(carried)
        return carrier


class _Watches(Fanout[InteractionWatch]):
    """The watches of one interaction by several observers, as one."""

    __slots__ = ()

    def interaction_ended(self, error: BaseException | None) -> None:
        self.each("interaction_ended", lambda watch: watch.interaction_ended(error))


class _MessagesWatches(_Watches):
    """The watches of one interaction by several observers, some wanting the messages."""

    __slots__ = ()

    def interaction_input(self, inputs: MessageSequencePromise) -> None:
        self._tell("interaction_input", inputs)

    def interaction_replied(self, message: MessagePromise) -> None:
        self._tell("interaction_replied", message)

    def _tell(self, what: str, argument: object) -> None:
        self.each(what, lambda watch: _call_with(getattr(watch, what, None), argument))


def _watches(watches: list[InteractionWatch], failures: LoggedOnce) -> InteractionWatch:
    wanting = any(hasattr(watch, "interaction_replied") for watch in watches)
    return (_MessagesWatches if wanting else _Watches)(watches, failures)


def _call_with(method: Callable[[object], None] | None, argument: object) -> None:
    if method is not None:
        method(argument)


interaction_observers: Hook[InteractionObserver]
interaction_observers, _failures = observer_hook(
    "an interaction observer", "the agents", _Observers
)
"""The interaction observers: ``add`` plugs one in beside the others, ``remove`` unplugs it."""
_incoming: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "miniagents_incoming_carrier", default=None
)


def observe_interactions(observer: InteractionObserver | None) -> InteractionObserver | None:
    """Set the observer of the interactions that start from now on; return the one before.

    It replaces every observer plugged in (``None``: none, the default); to observe beside
    the others, use ``interaction_observers.add``. Interactions started before keep the
    observer they had; one inquired before with a lazy start, and started after, gets the
    observer set at its start.
    """
    return interaction_observers.set(observer)


def interaction_ending(then: Callable[[MessagePromise], None]) -> InteractionEnding | None:
    """The ending to follow for an interaction that starts now (``None`` without an observer).

    ``then`` is the context's hook for each reply message still streaming (see
    :class:`InteractionEnding`).
    """
    observer = interaction_observers.current
    return None if observer is None else InteractionEnding(observer, then)


def outgoing_carrier() -> dict[str, str]:
    """The current trace, for another process (empty without an observer)."""
    observer = interaction_observers.current
    if observer is None:
        return {}
    try:
        return dict(observer.carrier())
    except Exception as error:
        _failures.failed(error, "carrier", observer)
        return {}


def adopt_carrier(carrier: Mapping[str, str]) -> None:
    """Make ``carrier`` (from :func:`outgoing_carrier` in another process) the incoming one.

    It is set in the current context (a task's own): the interactions started from here on
    (and their tasks) see it with :func:`incoming_carrier`.
    """
    _incoming.set(dict(carrier) if carrier else None)


def incoming_carrier() -> Mapping[str, str] | None:
    """The carrier adopted in this context (by a Ray worker, say), if any."""
    return _incoming.get()


class InteractionEnding:
    """The end of one observed interaction: its reply sequence, and every message in it.

    The agents make one per interaction when an observer is set: :meth:`adopt` sees each
    message enter the replies (before the context's own hook, ``then``), :meth:`start`
    asks the observer for its watch, and the watch is told once everything has ended.
    """

    __slots__ = ("_error", "_observer", "_pending", "_replied", "_sequence", "_then", "_watch")

    def __init__(
        self, observer: InteractionObserver, then: Callable[[MessagePromise], None]
    ) -> None:
        """Observe for ``observer``; ``then``: the context's hook for each streaming reply."""
        self._observer = observer
        self._then = then
        self._watch: InteractionWatch | None = None
        self._pending = 0
        self._sequence: ReplayCore[Any] | None = None
        self._error: BaseException | None = None
        self._replied: Callable[[MessagePromise], None] | None = None

    def adopt(self, promise: MessagePromise) -> None:
        """A message enters the replies: count it until it ends."""
        core = None if is_ready(promise) else core_of(promise)  # (None: the common case)
        if core is not None and not core.done:
            self._then(promise)  # (the context's hook has nothing to do for an ended one)
        replied = self._replied
        if replied is not None:  # (a watch that wants the messages)
            try:
                replied(promise)
            except Exception as error:
                _failures.failed(
                    error, "interaction_replied", getattr(replied, "__self__", replied)
                )
        if core is None:
            return
        if not core.done:
            self._pending += 1
            core.when_done(lambda: self._message_ended(core))
        elif core.error is not None and self._error is None:
            self._error = core.error

    def start(
        self,
        agent: ObservedAgent,
        sequence: ReplayCore[Any],
        inputs: MessageSequencePromise | None = None,
    ) -> None:
        """The interaction starts (in its task): ask for a watch, and follow ``sequence``.

        ``inputs``: the interaction's input, for a watch that wants it (see the module).
        """
        try:
            watch = self._watch = self._observer.interaction_started(agent)
        except Exception as error:
            _failures.failed(error, "interaction_started", self._observer)
            return
        if watch is not None:
            self._sequence = sequence
            sequence.when_done(self._check)
            self._replied = getattr(watch, "interaction_replied", None)
            told = getattr(watch, "interaction_input", None)
            if told is not None and inputs is not None:
                try:
                    told(inputs)
                except Exception as error:
                    _failures.failed(error, "interaction_input", watch)

    def _message_ended(self, core: ReplayCore[Any]) -> None:
        self._pending -= 1
        if core.error is not None and self._error is None:
            self._error = core.error
        self._check()

    def _check(self) -> None:
        sequence = self._sequence
        watch = self._watch
        if watch is None or sequence is None or not sequence.done or self._pending:
            return
        self._watch = None  # told once
        error = sequence.error if sequence.error is not None else self._error
        try:
            watch.interaction_ended(error)
        except Exception as failure:
            _failures.failed(failure, "interaction_ended", watch)
