"""The official ``mcp`` SDK is imported only when a session is made, with an install hint."""

from __future__ import annotations

from miniagents.ext.errors import MissingExtraError

__all__ = ["require_mcp"]


def require_mcp() -> None:
    """Check that the MCP SDK can be imported (the modules that use it import it locally).

    Raises:
        MissingExtraError: naming the extra to install, if the SDK is missing (an
            ``ImportError``).
    """
    MissingExtraError.unless_importable(
        ["mcp"],
        "MCP tools need the official MCP SDK, version 2. Install it with: "
        'pip install "miniagents[mcp]"',
    )
