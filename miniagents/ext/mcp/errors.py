"""Errors of MCP sessions; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.ext.tools.errors import ToolError

__all__ = ["MCPSessionError"]


class MCPSessionError(ToolError):
    """An MCP session could not be opened, or its tools were used while it was not open."""
