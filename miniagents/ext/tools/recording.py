"""Recording tool calls: the hook that durable runs (``miniagents.ext.dbos``) plug into.

A :class:`ToolCallRecorder`, once set with :func:`record_tool_calls`, is given every tool
call about to run (in the call's task, after its arguments were checked and approved). It
returns the pieces of the tool's reply that the call streams: those of the live run (which
it may record as they pass, with the tool's error if it fails), or those it recorded before
(the tool does not run again; a recorded error is raised again)::

    run_tool_call:  validate | approve | tool runs: "Sun" "ny" | result
    recorder:                            live, recorded (or replayed: the tool does not run)

A call that waits for a person's approval asks the recorder for the decision too
(:func:`recorded_decision`): a durable run records it once made, and on recovery decides
the request made again with the recorded decision instead of asking again.

With no recorder set (the default) a call costs one call of :func:`recorded_tool_call`
that finds none. A recorder's error fails the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from miniagents.ext.tools.approval import ToolApprovalRequest, ToolDecision
from miniagents.ext.tools.messages import ToolCallMessage
from miniagents.ext.tools.tool import Tool
from miniagents.miniagents.lowlevel import Hook

__all__ = ["ToolCallRecorder", "record_tool_calls", "recorded_decision", "recorded_tool_call"]


class ToolCallRecorder(Protocol):
    """Given every tool call that runs while it is set."""

    def tool_call(
        self, tool: Tool, call: ToolCallMessage, start: Callable[[], AsyncIterator[str]]
    ) -> AsyncIterator[str]:
        """The pieces of ``call``'s reply: ``start()``'s, or recorded ones."""
        ...

    def decision(
        self, tool: Tool, call: ToolCallMessage, request: ToolApprovalRequest
    ) -> Awaitable[ToolDecision]:
        """The decision on ``request``: the person's (``request.adecision()``), or recorded."""
        ...


_recorder: Hook[ToolCallRecorder] = Hook("the tool call recorder")


def record_tool_calls(recorder: ToolCallRecorder | None) -> ToolCallRecorder | None:
    """Set the recorder of the tool calls that run from now on; return the one before."""
    return _recorder.set(recorder)


def recorded_tool_call(
    tool: Tool, call: ToolCallMessage, start: Callable[[], AsyncIterator[str]]
) -> AsyncIterator[str]:
    """The pieces of ``call``'s reply: ``start()``'s without a recorder, else the recorder's."""
    recorder = _recorder.current
    if recorder is None:
        return start()
    return recorder.tool_call(tool, call, start)


def recorded_decision(
    tool: Tool, call: ToolCallMessage, request: ToolApprovalRequest
) -> Awaitable[ToolDecision]:
    """The decision on ``request``: the person's without a recorder, else the recorder's."""
    recorder = _recorder.current
    if recorder is None:
        return request.adecision()
    return recorder.decision(tool, call, request)
