"""An orchestrator that calls a researcher of another service over A2A, as one of its tools.

``python examples/a2a/orchestrator.py`` starts ``researcher.py`` in a process of its own
(``--port 0``: a free port), then asks the orchestrator, an LLM agent whose tool is the
researcher (``a2a_agent``): the researcher's tokens stream into the tool's result, and are
printed, as they are produced over there; then the orchestrator answers, and the researcher's
process is stopped. ``python examples/a2a/orchestrator.py http://127.0.0.1:8001/`` calls a
researcher that already runs there instead.

It sends the researcher's bearer token (``RESEARCHER_TOKEN``, ``demo-token-change-me`` by default).
Offline (no API key) both models are the offline one: the orchestrator calls the researcher
by its rule, and answers with what the researcher said.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from miniagents import MiniAgents
from miniagents.ext.a2a import a2a_agent, afetch_agent_card
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import ToolRule
from miniagents.ext.tools import ToolCallMessage, ToolResultMessage

RESEARCHER = Path(__file__).with_name("researcher.py")
TOKEN = os.environ.get("RESEARCHER_TOKEN", "demo-token-change-me")


async def orchestrate(url: str) -> None:
    """Ask the orchestrator a question that its researcher, at ``url``, answers."""
    async with MiniAgents():
        card = await afetch_agent_card(url)  # its name and skills: how a model picks the tool
        researcher = a2a_agent(card, headers={"Authorization": f"Bearer {TOKEN}"})
        orchestrator = llm_agent_from_env(
            system="Answer with the help of the researcher.",
            tools=[researcher],
            offline_tool_rules=[ToolRule(r"(?P<message>why .+)", researcher.alias)],
            token_delay=0,
        )
        async for promise in orchestrator.inquire("Why do rivers meander?"):
            if issubclass(promise.message_class, ToolResultMessage):
                print("the researcher, live: ", end="")
                async for token in promise:  # each token as the researcher produces it
                    print(token, end="", flush=True)
                print()
                continue
            message = await promise
            if isinstance(message, ToolCallMessage):
                print(f"calling {message.tool_name} over A2A")
            else:
                print(f"the orchestrator: {message}")


def main() -> None:
    if len(sys.argv) > 1:
        asyncio.run(orchestrate(sys.argv[1]))
        return
    started = [sys.executable, str(RESEARCHER), "--port", "0"]
    with subprocess.Popen(started, stdout=subprocess.PIPE, text=True) as service:
        try:
            assert service.stdout is not None
            url = service.stdout.readline().split()[-1]  # "RESEARCHER serves A2A at <url>"
            asyncio.run(orchestrate(url))
        finally:
            service.terminate()  # (leaving the block waits for it, and closes its pipe)


if __name__ == "__main__":
    main()
