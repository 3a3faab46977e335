"""MiniAgents tools served as an MCP server, called by an MCP client (in-process and stdio)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from miniagents import MiniAgents
from miniagents.ext.errors import MissingExtraError
from miniagents.ext.mcp import MCPSession, mcp_server, serve_stdio
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage, ToolSet
from tests.ext.mcp.served import divide, poet

ROOT = Path(__file__).resolve().parents[3]
SAFETY = 30.0


def call(tool_name: str, call_id: str = "c1", **arguments: object) -> ToolCallMessage:
    return ToolCallMessage(tool_name=tool_name, arguments=arguments, call_id=call_id)


async def check_served_tools(session: MCPSession) -> None:
    poem_tool, divide_tool = session.tools
    assert (poem_tool.name, poem_tool.description) == (
        "POET",
        "Write a one-line poem about a subject.",
    )
    assert poem_tool.parameters == {
        "additionalProperties": False,
        "properties": {"subject": {"description": "What the poem is about.", "type": "string"}},
        "required": ["subject"],
        "type": "object",
    }
    assert divide_tool.name == "divide"
    async with MiniAgents():
        messages = await asyncio.wait_for(
            ToolSet(session).run_all(
                [
                    call("POET", subject="tokens"),
                    call("divide", a=1, b=4),
                    call("divide", a=1, b=0),
                    call("divide", a="one", b=2),
                ]
            ),
            SAFETY,
        )
    results = [message for message in messages if isinstance(message, ToolResultMessage)]
    poem, divided, refused, invalid = results
    assert str(poem) == "Streams flow, tokens glow."
    assert str(divided) == "0.25"
    assert (str(refused), refused.is_error) == ("Cannot divide by zero.", True)
    assert invalid.is_error
    assert str(invalid).startswith("Invalid arguments for the tool divide: 'a'")


async def test_agents_and_functions_served_in_process() -> None:
    async with MCPSession(mcp_server([poet, divide], name="poetry")) as session:
        await check_served_tools(session)


async def test_agents_and_functions_served_over_stdio() -> None:
    served = MCPSession.stdio(sys.executable, ["-m", "tests.ext.mcp.served"], cwd=ROOT)
    async with served as session:
        await check_served_tools(session)


def test_serving_checks_the_tools_at_once() -> None:
    from miniagents.ext.tools import ToolNameConflictError

    with pytest.raises(ToolNameConflictError):
        mcp_server([divide, divide])


async def test_without_the_sdk_serve_stdio_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [name for name in sys.modules if name == "mcp" or name.startswith("mcp.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import mcp...` now fails
    with pytest.raises(MissingExtraError, match=r'pip install "miniagents\[mcp\]"'):
        await serve_stdio([divide])
