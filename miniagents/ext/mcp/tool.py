"""``MCPTool``: one tool of an MCP server, callable like any other ``Tool``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from miniagents.ext.mcp._content import result_text
from miniagents.ext.mcp.errors import MCPToolError
from miniagents.ext.tools.tool import Tool

if TYPE_CHECKING:
    from mcp.types import CallToolResult

__all__ = ["DEFAULT_MAX_RESULT_CHARS", "MCPTool"]

DEFAULT_MAX_RESULT_CHARS = 1_000_000
"""The most characters of a tool's result that go on to the model (``max_result_chars``)."""

CallTool = Callable[[str, dict[str, object]], Awaitable["CallToolResult"]]
"""Calls a tool of the server by its own name, with arguments."""


class MCPTool(Tool):
    """A tool of an MCP server (made by ``MCPSession``, which keeps the connection).

    Its description and JSON schema are the server's own. The arguments go to the server
    as they are (the server validates them against its schema and answers an error result
    if they do not fit). The reply is the result's content as text; a result the server
    marks ``isError`` is an error result (``is_error=True``) of that text, raised as an
    ``MCPToolError``: a server of ours tells its own clients its class and a reference, not
    the other server's text. A text longer than ``max_result_chars`` is cut there, with a
    note to the model that says so.

    Attributes:
        server_name: The tool's name on the server (``name`` is made valid for the
            providers and may carry the session's prefix).
    """

    __slots__ = ("_call", "_max_result_chars", "server_name")

    def __init__(
        self,
        *,
        name: str,
        server_name: str,
        description: str,
        parameters: Mapping[str, object],
        call: CallTool,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ) -> None:
        """Describe one tool of a server; ``call`` calls it (see ``MCPSession``)."""
        super().__init__(name=name, description=description, parameters=parameters)
        self.server_name = server_name
        self._call = call
        self._max_result_chars = max_result_chars

    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        """Call the tool on the server; yield the result's text."""
        result = await self._call(self.server_name, dict(arguments))
        text = result_text(result, self._max_result_chars)
        if result.is_error:  # (the server's text: the model's, not our clients')
            raise MCPToolError(text or f"The MCP tool {self.server_name} failed.")
        yield text
