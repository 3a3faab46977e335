"""Observing the calls of the model: the hook that tracing (``miniagents.ext.otel``) plugs into.

An :class:`LLMCallObserver`, once set with :func:`observe_llm_calls`, is told when an LLM
agent calls its model (once per call: a tool loop or a structured answer's retry makes
several per interaction), in the agent's task, once the budgets have admitted the call and
before its request is sent: a call that a budget refuses sends nothing, and is not
observed (its ``BudgetExceededError`` fails the interaction). Its :class:`LLMCallWatch`
sees the provider's events as they stream (it passes them through, so it sees the first
token and the ``Finish``; each step of its stream runs a step of the provider's, the SDK's
request included, so it may set context variables around them: tracing makes the call's
span current there), and is told when the call has ended::

    agent:     call 1 ............................ | tools ... | call 2 ........ |
    observer:  llm_call_started -> watch
    watch:       events(...): "Hel" "lo" Finish    call_ended(None)

With no observer set (the default) a call costs one call of :func:`watch_llm_call` that
finds none, and nothing per token. An observer's error is logged once and the call goes
on unobserved.

Several observers may observe at once (the evals' recorder beside tracing): each plugs
itself in with ``llm_call_observers.add(observer)`` and out with
``llm_call_observers.remove(observer)`` (the hook :data:`llm_call_observers`), in any order,
the others staying as they were. The hook then holds one observer that asks
each of them in turn for its watch; the events pass through every watch's ``events`` (the
first observer's outermost), and each watch is told the call's end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from miniagents.ext.llm.provider import LLMCall, LLMEvent, LLMOptions, LLMProvider
from miniagents.miniagents.lowlevel import Fanout, Hook, observer_hook

__all__ = [
    "LLMCallObserver",
    "LLMCallWatch",
    "end_llm_call",
    "innermost_provider",
    "llm_call_observers",
    "observe_llm_calls",
    "observed_options",
    "watch_llm_call",
    "watched_events",
]


class LLMCallWatch(Protocol):
    """What an observer keeps for one call of the model."""

    def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        """The provider's events, passed through unchanged (closing it closes ``events``).

        ``events`` has not started: its first step sends the request.
        """
        ...

    def call_ended(self, error: BaseException | None) -> None:
        """The call has ended: after its last event, or with ``error`` (translated)."""
        ...


class LLMCallObserver(Protocol):
    """Told about every call of a model that starts while it is set."""

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        """The agent ``agent_alias`` sends ``call`` to ``provider``; ``None``: do not watch it."""
        ...


class _Observers(Fanout[LLMCallObserver]):
    """Several observers as one (what the hook holds while more than one is plugged in)."""

    __slots__ = ()

    def llm_call_started(
        self, agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
    ) -> LLMCallWatch | None:
        return self.watch(
            "llm_call_started",
            lambda told: told.llm_call_started(agent_alias, provider, call),
            _Watches,
        )


class _Watches(Fanout[LLMCallWatch]):
    """The watches of one call by several observers, as one."""

    __slots__ = ()

    def events(self, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        for watch in reversed(self.plugged):  # (the first watch's outermost)
            events = watched_events(watch, events)
        return events

    def call_ended(self, error: BaseException | None) -> None:
        self.each("call_ended", lambda watch: watch.call_ended(error))


llm_call_observers: Hook[LLMCallObserver]
llm_call_observers, _failures = observer_hook("an LLM call observer", "the calls", _Observers)
"""The LLM call observers: ``add`` plugs one in beside the others, ``remove`` unplugs it."""


def observe_llm_calls(observer: LLMCallObserver | None) -> LLMCallObserver | None:
    """Set the observer of the calls that start from now on; return the one before.

    It replaces every observer plugged in; to observe beside them, use
    ``llm_call_observers.add``.
    """
    return llm_call_observers.set(observer)


def watch_llm_call(
    agent_alias: str, provider: LLMProvider[Any, Any], call: LLMCall
) -> LLMCallWatch | None:
    """The observer's watch of a call that starts now (``None`` without an observer)."""
    observer = llm_call_observers.current
    if observer is None:
        return None
    return _failures.call(
        "llm_call_started", observer, observer.llm_call_started, agent_alias, provider, call
    )


def watched_events(watch: LLMCallWatch, events: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
    """``events`` through ``watch.events``; if that raises (logged once), ``events`` unwatched.

    Only the call of ``events`` is guarded: an error that the iterator it returns raises
    as it is read is the call's (a watch passes the provider's errors through, and they
    cannot be told apart).
    """
    watched = _failures.call("events", watch, watch.events, events)
    return events if watched is None else watched


def end_llm_call(watch: LLMCallWatch, error: BaseException | None) -> None:
    """Tell ``watch`` that its call has ended (an error of the watch is logged once)."""
    _failures.call("call_ended", watch, watch.call_ended, error)


def innermost_provider(provider: object) -> object:
    """The provider that an observed call's ``provider`` wraps, if it wraps one.

    An observer is given the agent's provider as the budgets' meter wraps it (its
    ``wrapped``): the provider's own attributes (``provider_name``, ``price_provider``,
    ``in_process``) are those of the innermost one.
    """
    for _ in range(8):
        inner = getattr(provider, "wrapped", None)
        if inner is None:
            break
        provider = inner
    return provider


def observed_options(provider: object) -> LLMOptions | None:
    """The agent's options of an observed call, if its ``provider`` is the meter that knows them.

    An observer is given the agent's provider as the budgets' meter wraps it, which holds
    the agent's options (its ``options``): what a call cache's key needs beside the call
    (the API they pick, ``request_api``). ``None`` for any other provider (a realtime
    session's).
    """
    options = getattr(provider, "options", None)
    return options if isinstance(options, LLMOptions) else None
