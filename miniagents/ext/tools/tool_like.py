"""``ToolLike`` (what may stand where a tool is expected) and ``as_tool``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, TypeVar, Union, overload

from miniagents.ext.tools.agent_tool import AgentTool
from miniagents.ext.tools.function_tool import FunctionTool
from miniagents.ext.tools.tool import Tool
from miniagents.miniagents.agent import MiniAgent

__all__ = ["ToolLike", "as_tool"]

ToolT = TypeVar("ToolT", bound=Tool)

ToolLike: TypeAlias = Union[Tool, MiniAgent[...], Callable[..., object]]  # noqa: UP007
"""A ``Tool``, a ``MiniAgent`` or a typed function (sync or async): the items of ``tools=[...]``."""


@overload
def as_tool(tool: ToolT, /) -> ToolT: ...


@overload
def as_tool(tool: MiniAgent[...], /) -> AgentTool: ...


@overload
def as_tool(tool: Callable[..., object], /) -> FunctionTool: ...


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
