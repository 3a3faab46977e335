"""The two services of ``test_two_services.py``, which ``tests/benchmarks/a2a_latency.py`` times.

The researcher (``researcher_server.py``) runs in a process of its own; the orchestrator, an
LLM agent of this process, has it as a tool (``a2a_agent``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from miniagents import MessagePromise
from miniagents.ext.a2a import a2a_agent
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import ToolResultMessage
from tests.subprocesses import start_server

CHILD = Path(__file__).with_name("researcher_server.py")
"""The researcher's program."""


class Researcher:
    """The researcher's process, and its URL once it listens."""

    def __init__(self) -> None:
        self.process, self.url = start_server(CHILD, timeout=60)

    def stop(self) -> str:
        """End the researcher's process; what it wrote to stderr."""
        self.process.terminate()
        _, err = self.process.communicate(timeout=60)
        return err


def orchestrator(url: str) -> Any:
    """An LLM agent that calls the researcher at ``url`` as its tool once, then thanks it."""
    remote = a2a_agent(url, alias="RESEARCHER")
    return offline_agent.fork(
        alias="ORCHESTRATOR",
        tools=[remote],
        reply=one_per_call(CallTool("RESEARCHER", {"message": "rivers"}), "Thanks."),
        token_delay=0,
    )


async def tool_result(replies: Any) -> MessagePromise[Any]:
    """The promise of the tool result among the orchestrator's ``replies``."""
    async for promise in replies:
        if issubclass(promise.message_class, ToolResultMessage):
            return promise  # type: ignore[no-any-return]
    raise AssertionError("the orchestrator's reply had no tool result")
