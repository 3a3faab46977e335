"""``ToolLike`` (what may stand where a tool is expected) and ``as_tool``."""

from __future__ import annotations

from functools import partial
from types import CodeType
from typing import Any, Protocol, TypeAlias, TypeVar, overload

from miniagents.ext.tools.agent_tool import AgentTool
from miniagents.ext.tools.function_tool import FunctionTool
from miniagents.ext.tools.tool import Tool
from miniagents.miniagents.agent import MiniAgent

__all__ = ["ToolFunction", "ToolLike", "as_tool"]

ToolT = TypeVar("ToolT", bound=Tool)


class ToolFunction(Protocol):
    """A function (``def``, ``async def``, a lambda or a method), not a class.

    A class is callable too, but it is no tool: the ``__code__`` that only functions have
    lets mypy refuse one where a tool is expected (``tools=[SomeModel]``). An object with
    a ``__call__`` method still runs as a tool, but mypy cannot tell it from a class: give
    its bound method instead (``tools=[doubler.__call__]``), which types well.
    """

    __code__: CodeType

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        """Call the function."""


ToolLike: TypeAlias = Tool | MiniAgent[...] | ToolFunction | partial[Any]
"""A ``Tool``, a ``MiniAgent`` or a typed function (sync or async, or a ``functools.partial``
of one): the items of ``tools=[...]``. A class is refused (by mypy and at run time)."""


@overload
def as_tool(tool: ToolT, /) -> ToolT: ...


@overload
def as_tool(tool: MiniAgent[...], /) -> AgentTool: ...


@overload
def as_tool(tool: ToolFunction | partial[Any], /) -> FunctionTool: ...


def as_tool(tool: ToolLike, /) -> Tool:
    """``tool`` as a ``Tool``: a ``Tool`` as it is, an ``AgentTool`` or a ``FunctionTool``.

    Raises:
        ToolDefinitionError: if ``tool`` cannot be a tool (the reason and the fix named).
    """
    if isinstance(tool, Tool):
        return tool
    if isinstance(tool, MiniAgent):
        return AgentTool(tool)
    return FunctionTool(tool)
