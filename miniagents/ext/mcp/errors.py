"""Errors of MCP sessions; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.ext.tools.errors import ToolCallError, ToolError

__all__ = ["MCPSessionError", "MCPToolError"]


class MCPSessionError(ToolError):
    """An MCP session could not be opened, or its tools were used while it was not open."""


class MCPToolError(ToolCallError):
    """An MCP server answered a call of its tool with an error result (``isError``).

    The model gets the server's text as it is; that text is a third party's (it may name
    the server's paths, queries or keys), so a web app (or an MCP server of ours) tells its
    own clients the class and a reference, as for any exception of a tool, unless it tells
    error texts.
    """

    told_as_written = False
    traceback_logged = False  # (the remote text and the reference say it all)
