"""Observing tool calls: the hook that tracing (``miniagents.ext.otel``) plugs into.

A :class:`ToolCallObserver`, once set with :func:`observe_tool_calls`, is told when a tool
call starts (in the call's own task, before the tool runs, so that what it puts in context
variables there is what the tool, and an agent it inquires, see), and its
:class:`ToolCallWatch` when the call's result has ended::

    run_tool_call:  [task starts] tool runs: "Sun" "ny" ... | result complete
    observer:        tool_call_started(tool, call, result) -> watch
    watch:                                                    tool_call_ended(None)

With no observer set (the default) a call costs one call of :func:`watch_tool_call` that
finds none. An observer's error is logged once and the call goes on unobserved.
"""

from __future__ import annotations

from typing import Protocol

from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.tool import Tool
from miniagents.messages.message_promise import MessagePromise
from miniagents.miniagents.lowlevel import Hook
from miniagents.promising.lowlevel import logger

__all__ = [
    "ToolCallObserver",
    "ToolCallWatch",
    "end_tool_call",
    "observe_tool_calls",
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


class ToolCallObserver(Protocol):
    """Told about every tool call that starts while it is set."""

    def tool_call_started(
        self, tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
    ) -> ToolCallWatch | None:
        """``call`` of ``tool`` starts; ``result`` is its result. ``None``: do not watch it."""
        ...


_observer: Hook[ToolCallObserver] = Hook("the tool call observer")
_warned: set[str] = set()


def observe_tool_calls(observer: ToolCallObserver | None) -> ToolCallObserver | None:
    """Set the observer of the tool calls that start from now on; return the one before."""
    return _observer.set(observer)


def watch_tool_call(
    tool: Tool, call: ToolCallMessage, result: MessagePromise[ToolResultMessage]
) -> ToolCallWatch | None:
    """The observer's watch of a call that starts now (``None`` without an observer)."""
    observer = _observer.current
    if observer is None:
        return None
    try:
        return observer.tool_call_started(tool, call, result)
    except Exception as error:
        _warn_once("tool_call_started", error)
        return None


def end_tool_call(watch: ToolCallWatch, error: BaseException | None) -> None:
    """Tell ``watch`` that its call has ended (an error of the watch is logged once)."""
    try:
        watch.tool_call_ended(error)
    except Exception as failure:
        _warn_once("tool_call_ended", failure)


def _warn_once(what: str, error: Exception) -> None:
    if what not in _warned:
        _warned.add(what)
        logger.warning(
            "The tool call observer failed in %s (%s: %s); the calls go on unobserved "
            "there. This is logged once.",
            what,
            type(error).__name__,
            error,
        )
