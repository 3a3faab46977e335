"""A small MCP server (the SDK's ``MCPServer``, formerly FastMCP) for the tests.

``python -m tests.ext.mcp.server stdio`` serves over stdin and stdout;
``python -m tests.ext.mcp.server http`` serves streamable HTTP on a free port of 127.0.0.1 and
prints that port first, on a line of its own.
"""

from __future__ import annotations

import os
import socket
import sys

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("miniagents-test-server", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@server.tool(name="text.shout")
def shout(text: str) -> str:
    """Shout a text."""
    return text.upper() + "!"


@server.tool()
def refuse(reason: str) -> str:
    """Refuse, always."""
    raise ToolError(f"Refused: {reason}")


_arrived: dict[str, anyio.Event] = {}


@server.tool()
async def meet(me: str, other: str) -> str:
    """Wait for the other caller: two calls finish only if they run at the same time."""
    _arrived.setdefault(me, anyio.Event()).set()
    await _arrived.setdefault(other, anyio.Event()).wait()
    return f"{me} met {other}"


_cancelled: dict[str, anyio.Event] = {}


@server.tool()
async def hang(me: str) -> str:
    """Arrive (see ``meet``), then never answer; note a cancellation (see ``cancelled``)."""
    _arrived.setdefault(me, anyio.Event()).set()
    try:
        await anyio.sleep_forever()
    finally:
        _cancelled.setdefault(me, anyio.Event()).set()
    return "never"


@server.tool()
async def cancelled(me: str) -> str:
    """Answer once the call of ``hang`` by ``me`` has been cancelled."""
    await _cancelled.setdefault(me, anyio.Event()).wait()
    return f"{me} was cancelled"


@server.tool()
def big(chars: int, blocks: int = 1) -> list[str]:
    """Answer ``blocks`` text blocks of ``chars`` characters each (a result too big to pass on)."""
    return [str(block) * chars for block in range(blocks)]


@server.tool()
def pid() -> int:
    """The server's process id (a test kills the process)."""
    return os.getpid()


def _serve_http() -> None:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(listener.getsockname()[1], flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    anyio.run(uvicorn.Server(config).serve, [listener])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        _serve_http()
    else:
        server.run("stdio")
