"""``ToolSet``: the tools of one agent, by name, and the running of the model's calls."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar, overload

from miniagents.ext.tools.approval import ToolApprovalRequest, request_approval
from miniagents.ext.tools.errors import ToolNameConflictError
from miniagents.ext.tools.messages import ToolCallMessage, ToolResultMessage
from miniagents.ext.tools.running import ResultT, checked_call, error_result, run_tool_call
from miniagents.ext.tools.tool import Tool
from miniagents.ext.tools.tool_like import ToolLike, as_tool
from miniagents.messages.message_promise import MessagePromise
from miniagents.messages.sequence import MessageSequencePromise
from miniagents.root_error import ArgumentError

__all__ = ["ToolSet"]

RequestT = TypeVar("RequestT", bound=ToolApprovalRequest)
"""The class of an approval request: a ``ToolApprovalRequest`` subclass (``request_class``)."""


class ToolSet:
    """Tools by name: made once from ``tools=[...]``, then used for every call of the model.

    Args:
        tools: Agents, typed functions and ``Tool`` objects, in the order the model is to
            be shown them.

    Raises:
        ToolDefinitionError: if one of them cannot be a tool.
        ToolNameConflictError: if two of them have the same name.

    Examples:
        >>> def add(a: int, b: int) -> int:
        ...     '''Add two numbers.'''
        ...     return a + b
        >>> tools = ToolSet([add])
        >>> [(tool.name, tool.description) for tool in tools]
        [('add', 'Add two numbers.')]
    """

    __slots__ = ("_by_name",)

    def __init__(self, tools: Iterable[ToolLike] = ()) -> None:
        """Turn each item into a ``Tool`` and index them by name (see the class docstring)."""
        self._by_name: dict[str, Tool] = {}
        for item in tools:
            tool = as_tool(item)
            other = self._by_name.get(tool.name)
            if other is not None:
                raise ToolNameConflictError(
                    f"Two tools are named {tool.name!r} ({other!r} and {tool!r}), so a model "
                    "could not tell them apart. Rename one: an agent with "
                    "agent.fork(alias=...), a function with FunctionTool(func, name=...), an "
                    "MCP server's tools with a prefix for its session, e.g. "
                    'MCPSession(..., prefix="web_").'
                )
            self._by_name[tool.name] = tool

    def __iter__(self) -> Iterator[Tool]:
        """The tools, in the order they were given."""
        return iter(self._by_name.values())

    def __len__(self) -> int:
        """How many tools there are."""
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        """Whether a tool has this name."""
        return name in self._by_name

    def __getitem__(self, name: str) -> Tool:
        """The tool named ``name``.

        Raises:
            KeyError: if no tool has this name.
        """
        return self._by_name[name]

    @overload
    def run(
        self,
        call: ToolCallMessage,
        *,
        result_class: type[ResultT],
        approval: ToolApprovalRequest | None = ...,
        **metadata: object,
    ) -> MessagePromise[ResultT]: ...

    @overload
    def run(
        self,
        call: ToolCallMessage,
        *,
        result_class: type[ToolResultMessage] = ...,
        approval: ToolApprovalRequest | None = ...,
        **metadata: object,
    ) -> MessagePromise[ToolResultMessage]: ...

    def run(
        self,
        call: ToolCallMessage,
        *,
        result_class: type[ToolResultMessage] = ToolResultMessage,
        approval: ToolApprovalRequest | None = None,
        **metadata: object,
    ) -> MessagePromise[ToolResultMessage]:
        """Start ``call`` now; return its ``ToolResultMessage`` as it streams.

        See ``run_tool_call`` (and its ``result_class``, ``approval`` and ``metadata``); a
        call of a tool that is not in the set gets an error result that lists the tools
        there are. The result's type says its class: ``MessagePromise[result_class]``.

        Raises:
            NoActiveContextError: outside of a ``MiniAgents`` context.
            ArgumentError: if ``call`` is not a ``ToolCallMessage``.
        """
        tool = self._by_name.get(checked_call(call, "ToolSet.run").tool_name)
        if tool is None:
            names = ", ".join(self._by_name) or "none"
            return error_result(
                call,
                f"There is no tool named {_shown_name(call.tool_name)}. The tools are: {names}. "
                "Call one of them by its exact name.",
                result_class=result_class,
                **metadata,
            )
        return run_tool_call(tool, call, result_class=result_class, approval=approval, **metadata)

    @overload
    def approval_request(
        self, call: ToolCallMessage, *, request_class: type[RequestT], **metadata: object
    ) -> RequestT | None: ...

    @overload
    def approval_request(
        self,
        call: ToolCallMessage,
        *,
        request_class: type[ToolApprovalRequest] = ...,
        **metadata: object,
    ) -> ToolApprovalRequest | None: ...

    def approval_request(
        self,
        call: ToolCallMessage,
        *,
        request_class: type[ToolApprovalRequest] = ToolApprovalRequest,
        **metadata: object,
    ) -> ToolApprovalRequest | None:
        """A pending approval request for ``call`` if its tool needs one, else ``None``.

        The request is a ``request_class`` (``ToolApprovalRequest`` by default), which its
        type says. Give it to :meth:`run` (``approval=``) and to whoever decides (e.g. in
        the reply).
        """
        tool = self._by_name.get(call.tool_name)
        if tool is None or call.arguments_error is not None:
            return None
        if len(call.text or "") > tool.max_argument_chars:  # not run: nobody is to be asked
            return None
        if not tool.needs_approval(call.arguments):
            return None
        return request_approval(call, tool=tool, request_class=request_class, **metadata)

    def run_all(
        self, calls: Iterable[ToolCallMessage]
    ) -> MessageSequencePromise[ToolResultMessage]:
        """Start every call at once, to run concurrently; return their results in call order.

        The results stream as they come: each result's tokens as its tool produces them,
        whatever the order the tools finish in.

        Raises:
            ArgumentError: if ``calls`` is not an iterable of ``ToolCallMessage`` s (e.g.
                one call, which is iterable too); no call has started then.
        """
        given: object = calls  # (typed so; code mypy does not check may pass anything)
        if isinstance(given, ToolCallMessage):
            raise ArgumentError(
                "ToolSet.run_all takes the calls, not one call: pass a list of them, e.g. "
                "run_all([call]), or run one with run(call)."
            )
        checked = [checked_call(call, "ToolSet.run_all") for call in calls]
        # a sequence of ToolResultMessage promises
        return MessageSequencePromise([self.run(call) for call in checked])  # type: ignore[return-value]

    def __repr__(self) -> str:
        """Show the names of the tools."""
        return f"<ToolSet {list(self._by_name)}>"


_MAX_SHOWN_NAME = 100
"""The most characters of an unknown tool's name that its error result quotes."""


def _shown_name(name: str) -> str:
    """``name``, a model's (so of any length), quoted, cut to ``_MAX_SHOWN_NAME`` characters."""
    if len(name) > _MAX_SHOWN_NAME:
        name = name[: _MAX_SHOWN_NAME - 1] + "…"
    return repr(name)
