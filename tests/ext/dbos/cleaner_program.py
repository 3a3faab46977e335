"""The durable cleaner that the approval programs run: its one tool call waits for approval."""

from __future__ import annotations

CLEANER = """
from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool

URL = "sqlite:///runs.sqlite"


def remove(name: str) -> str:
    \"\"\"Remove a file.\"\"\"
    print("removing", name, flush=True)
    return f"removed {name}"


cleaner = durable(
    offline_agent.fork(
        alias="CLEANER",
        tools=[FunctionTool(remove, requires_approval=True)],
        reply=one_per_call(CallTool("remove", {"name": "a.txt"}), "Done."),
        token_delay=0,
    ),
    database_url=URL,
)
"""
"""A part of a program (after its imports): ``URL``, the database of its durable runs, and
``cleaner``, a durable offline agent that calls ``remove`` once, with ``{"name": "a.txt"}``
(a call that waits for approval; ``remove`` prints ``removing <name>`` when it runs), and
then says ``Done.``."""
