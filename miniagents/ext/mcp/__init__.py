"""MCP: the tools of Model Context Protocol servers as MiniAgents tools (extra ``mcp``).

:class:`MCPSession` connects to a server (a child process over stdio, or streamable HTTP)
and lists its tools as :class:`MCPTool` objects: ``Tool`` s like any other, usable in
``ToolSet`` (and ``tools=[...]``) beside agents and functions, with the server's names (made
valid for the providers), descriptions and JSON schemas. Results are the text of the
server's content; a result the server marks ``isError`` is an error result. The session
lasts as long as its ``async with`` block.

The other way round, :func:`mcp_server` (and :func:`serve_stdio`) serves agents, functions
and ``Tool`` s as the tools of an MCP server, for any MCP client; :func:`mcp_http_app`
serves them over streamable HTTP behind the web apps' authentication and host checks.

Importing this package does not import the SDK; opening a session without it raises an
``MissingExtraError`` (an ``ImportError``) that says ``pip install "miniagents[mcp]"``.
"""

from miniagents.ext.mcp.errors import MCPSessionError as MCPSessionError
from miniagents.ext.mcp.errors import MCPToolError as MCPToolError
from miniagents.ext.mcp.serving import DEFAULT_MAX_SESSIONS as DEFAULT_MAX_SESSIONS
from miniagents.ext.mcp.serving import (
    DEFAULT_MAX_SESSIONS_PER_PRINCIPAL as DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
)
from miniagents.ext.mcp.serving import (
    DEFAULT_SESSION_IDLE_SECONDS as DEFAULT_SESSION_IDLE_SECONDS,
)
from miniagents.ext.mcp.serving import mcp_http_app as mcp_http_app
from miniagents.ext.mcp.serving import mcp_server as mcp_server
from miniagents.ext.mcp.serving import serve_stdio as serve_stdio
from miniagents.ext.mcp.session import DEFAULT_MAX_MESSAGE_BYTES as DEFAULT_MAX_MESSAGE_BYTES
from miniagents.ext.mcp.session import DEFAULT_MAX_TOOLS as DEFAULT_MAX_TOOLS
from miniagents.ext.mcp.session import DEFAULT_OPEN_TIMEOUT as DEFAULT_OPEN_TIMEOUT
from miniagents.ext.mcp.session import DEFAULT_READ_TIMEOUT as DEFAULT_READ_TIMEOUT
from miniagents.ext.mcp.session import MCPSession as MCPSession
from miniagents.ext.mcp.tool import DEFAULT_MAX_RESULT_CHARS as DEFAULT_MAX_RESULT_CHARS
from miniagents.ext.mcp.tool import MCPTool as MCPTool

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_RESULT_CHARS",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_MAX_SESSIONS_PER_PRINCIPAL",
    "DEFAULT_MAX_TOOLS",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_SESSION_IDLE_SECONDS",
    "MCPSession",
    "MCPSessionError",
    "MCPTool",
    "MCPToolError",
    "mcp_http_app",
    "mcp_server",
    "serve_stdio",
]
