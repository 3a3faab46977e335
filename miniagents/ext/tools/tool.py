"""``Tool``: what a model can call — a name, a description, a JSON schema and a way to run."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping

from miniagents.ext.tools._names import tool_name

__all__ = ["Tool"]


class Tool(ABC):
    """A tool a model can call: subclass it (implement :meth:`run`) for full control.

    Agents and typed functions become tools without this (see ``as_tool``); a subclass
    is for tools whose schema you write yourself, or that wrap another system (MCP tools
    are ``Tool`` subclasses too).

    Args:
        name: The name the model calls the tool by; made valid for the providers
            (``^[a-zA-Z0-9_-]{1,64}$``: other characters become ``_``).
        description: What the tool does, for the model.
        parameters: The JSON schema of the arguments (an ``object`` schema); by default,
            no arguments.

    Attributes:
        name: The tool's name, valid for every provider.
        description: What the tool does ("" when nothing was said).
        parameters: The JSON schema of the arguments (a new copy at each access: plain
            dicts and lists, ready for an SDK).

    Example:
        >>> class Clock(Tool):
        ...     async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        ...         yield "12:00"
        >>> Clock(name="clock", description="The time now.").parameters
        {'type': 'object', 'properties': {}}
    """

    __slots__ = ("_parameters", "description", "name")

    def __init__(
        self,
        *,
        name: str,
        description: str = "",
        parameters: Mapping[str, object] | None = None,
    ) -> None:
        """Describe the tool (see the class docstring)."""
        self.name = tool_name(name, f"The tool {type(self).__name__}")
        self.description = description
        self._parameters: dict[str, object] = (
            {"type": "object", "properties": {}}
            if parameters is None
            else copy.deepcopy(dict(parameters))
        )

    @property
    def parameters(self) -> dict[str, object]:
        """The JSON schema of the arguments (a copy: changing it changes nothing)."""
        return copy.deepcopy(self._parameters)

    def validate(self, arguments: Mapping[str, object]) -> Mapping[str, object]:
        """Check the model's arguments before :meth:`run`; return the ones to run with.

        The default accepts them as they are; function and agent tools validate them with
        pydantic.

        Raises:
            ToolCallError: telling the model what is wrong with them.
        """
        return arguments

    @abstractmethod
    def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        """Run the tool with validated ``arguments``; yield its reply, piece by piece.

        Raise ``ToolCallError`` to answer with an error result of exactly its message;
        any other exception also becomes an error result. The pieces reach the caller
        as they are yielded.
        """

    def __repr__(self) -> str:
        """Show the class and the name."""
        return f"<{type(self).__name__} {self.name}>"
