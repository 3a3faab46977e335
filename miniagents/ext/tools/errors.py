"""Errors of tools; the whole hierarchy is drawn in :mod:`miniagents.errors`.

::

    ToolError
    ├── ToolDefinitionError (also TypeError)   not usable as a tool (named, with the fix)
    ├── ToolNameConflictError (also ValueError) two tools of one list have the same name
    ├── ToolCallError                           raised by a tool: the model gets its message
    │   └── MCPToolError                         (miniagents.ext.mcp) an MCP server's error result
    ├── ToolApprovalError (also RuntimeError)   a request not pending, or its edit refused
    └── MCPSessionError                         (miniagents.ext.mcp) a server unreachable, ...

The first two are raised where tools are defined (``as_tool``, ``ToolSet``), before any
model sees them. A tool call never raises: invalid arguments and the exceptions of the
tool become a ``ToolResultMessage`` with ``is_error=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from miniagents.promising.errors import MiniAgentsError

__all__ = [
    "ToolApprovalError",
    "ToolCallError",
    "ToolDefinitionError",
    "ToolError",
    "ToolNameConflictError",
]


class ToolError(MiniAgentsError):
    """A tool could not be defined, or a call of it failed."""

    told_as_written: ClassVar[bool] = True
    """Whether a server tells its clients the error's text as the model reads it (the text
    is the library's or the tool's); else, a third party's, it is told as any exception of a
    tool is: its class and a reference (see ``ToolErrorPart``)."""

    traceback_logged: ClassVar[bool] = True
    """Whether the log of the error (an ``ERROR`` under its reference, for one not told as
    written) carries its traceback: not for an error a remote tool answered (an MCP
    server's error result), whose traceback would only show the library's own raise."""


class ToolDefinitionError(ToolError, TypeError):
    """An agent, a function or a ``Tool`` cannot be used as a tool (the reason is named)."""


class ToolNameConflictError(ToolError, ValueError):
    """Two tools of one list have the same name, so the model could not tell them apart."""


class ToolCallError(ToolError):
    """Raise it in a tool to answer the call with an error result of exactly this message.

    Any other exception also becomes an error result, with its type and message (the
    library's own tool errors, ``ToolError``, such as an MCP session's ``MCPSessionError``,
    with their message only: a sentence); this one lets the tool tell the model precisely
    what to do differently, e.g.
    ``raise ToolCallError("No city named 'Pari'. Did you mean 'Paris'?")``. Raised without
    a message (or a blank one), it answers that the tool failed, as any other exception.
    """


class ToolApprovalError(ToolError, RuntimeError):
    """A decision a request cannot take: it is not pending, or its edited arguments are refused.

    It was decided already (a call is decided once), or it was not made for a call that
    waits (e.g. read back from a history); or it was approved with edited arguments that
    the tool refuses, which decides nothing (the request stays ``pending``).

    Attributes:
        problems: What is wrong with the edited arguments, one problem each (empty for a
            request that is not pending).
    """

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        """The error ``message``, and the ``problems`` of refused arguments, if any."""
        super().__init__(message)
        self.problems = tuple(problems)
