"""Observing tool calls: the hook that tracing (``miniagents.ext.otel``) plugs into.

A :class:`ToolCallObserver`, once set with :func:`observe_tool_calls`, is told when a tool
call starts (in the call's own task, before the tool runs, so that what it puts in context
variables there is what the tool, and an agent it inquires, see), and its
:class:`ToolCallWatch` when the call's result has ended::

    run_tool_call:  [task starts] tool runs: "Sun" "ny" ... | result complete
    observer:        tool_call_started(tool, call, result) -> watch
    watch:                                                    tool_call_ended(None)

A call that waited for a person's approval tells its watch the decision (who decided, when)
before the tool runs, if the watch has a ``tool_call_decided`` method
(:class:`ToolCallDecisionWatch`): tracing records it on the call's span.

With no observer set (the default) a call costs one call of :func:`watch_tool_call` that
finds none. An observer's error is logged once and the call goes on unobserved.

Several observers may observe at once (the evals' recorder beside tracing): each plugs
itself in with ``tool_call_observers.add(observer)`` and out with
``tool_call_observers.remove(observer)`` (the hook :data:`tool_call_observers`), in any
order, the others staying as they were. The hook
then holds one observer that asks each of them in turn for its watch, and each watch is
told the call's decision and end.
"""

from __future__ import annotations

from typing import Protocol

from miniagents.ext.tools.approval import ToolDecision
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.lowlevel import Fanout, Hook, observer_hook

__all__ = [
    "ToolCallDecisionWatch",
    "ToolCallObserver",
    "ToolCallWatch",
    "decided_tool_call",
    "end_tool_call",
    "observe_tool_calls",
    "tool_call_observers",
    "watch_tool_call",
]


class ToolCallWatch(Protocol):
    """What an observer keeps for one tool call."""

    def tool_call_ended(self, error: BaseException | None) -> None:
        """The call's result has ended.

        Args:
            error: What the tool raised (the model got it as an error result), the
                cancellation that stopped it, or ``None``.
        """
        ...


class ToolCallDecisionWatch(ToolCallWatch, Protocol):
    """A watch that is also told the decision of a call that waited for approval."""

    def tool_call_decided(self, decision: ToolDecision) -> None:
        """A person decided the call (``decision.decided_by``, ``decision.decided_at``)."""
        ...


class ToolCallObserver(Protocol):
    """Told about every tool call that starts while it is set."""

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        """``call`` of ``tool`` starts; ``result`` is its result. ``None``: do not watch it."""
        ...


class _Observers(Fanout[ToolCallObserver]):
    """Several observers as one (what the hook holds while more than one is plugged in)."""

    __slots__ = ()

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        return self.watch(
            "tool_call_started", lambda told: told.tool_call_started(tool, call, result), _Watches
        )


class _Watches(Fanout[ToolCallWatch]):
    """The watches of one tool call by several observers, as one."""

    __slots__ = ()

    def tool_call_decided(self, decision: ToolDecision) -> None:
        for watch in self.plugged:
            decided_tool_call(watch, decision)

    def tool_call_ended(self, error: BaseException | None) -> None:
        self.each("tool_call_ended", lambda watch: watch.tool_call_ended(error))


tool_call_observers: Hook[ToolCallObserver]
tool_call_observers, _failures = observer_hook("a tool call observer", "the calls", _Observers)
"""The tool call observers: ``add`` plugs one in beside the others, ``remove`` unplugs it."""


def observe_tool_calls(observer: ToolCallObserver | None) -> ToolCallObserver | None:
    """Set the observer of the tool calls that start from now on; return the one before.

    It replaces every observer plugged in; to observe beside them, use
    ``tool_call_observers.add``.
    """
    return tool_call_observers.set(observer)


def watch_tool_call(
    tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
) -> ToolCallWatch | None:
    """The observer's watch of a call that starts now (``None`` without an observer)."""
    observer = tool_call_observers.current
    if observer is None:
        return None
    return _failures.call(
        "tool_call_started", observer, observer.tool_call_started, tool, call, result
    )


def end_tool_call(watch: ToolCallWatch, error: BaseException | None) -> None:
    """Tell ``watch`` that its call has ended (an error of the watch is logged once)."""
    _failures.call("tool_call_ended", watch, watch.tool_call_ended, error)


def decided_tool_call(watch: ToolCallWatch | None, decision: ToolDecision) -> None:
    """Tell ``watch`` the decision on its call, if it listens (an error is logged once)."""
    told = getattr(watch, "tool_call_decided", None)
    if told is not None:
        _failures.call("tool_call_decided", watch, told, decision)
