"""The durable cleaner that the approval programs run: each of its tool calls waits for approval."""

from __future__ import annotations

import json

_PROGRAM = """
from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import CallTool, offline_agent, one_per_call
from miniagents.ext.tools import FunctionTool

URL = <URL>


def remove(name: str) -> str:
    \"\"\"Remove a file.\"\"\"
    print("removing", name, flush=True)
    return f"removed {name}"


cleaner = durable(
    offline_agent.fork(
        alias="CLEANER",
        tools=[FunctionTool(remove, requires_approval=True)],
        reply=one_per_call(<CALLS>, "Done."),
        token_delay=0,
    ),
    database_url=URL,
)
"""


def cleaner_removing(*names: str, url: str = '"sqlite:///runs.sqlite"') -> str:
    """A part of a program (after its imports): ``URL`` and ``cleaner``.

    ``URL`` is the database of its durable runs (``url``, an expression of the program);
    ``cleaner`` is a durable offline agent whose first reply calls ``remove`` once for each
    of ``names``, at once (``{"name": <name>}``: each call waits for approval; ``remove``
    prints ``removing <name>`` when it runs), and whose second says ``Done.``.
    """
    calls = [f'CallTool("remove", {{"name": {json.dumps(name)}}})' for name in names]
    program = _PROGRAM.replace("<URL>", url)
    return program.replace("<CALLS>", calls[0] if len(calls) == 1 else f"[{', '.join(calls)}]")


CLEANER = cleaner_removing("a.txt")
"""The cleaner of one call: ``remove`` of ``a.txt``."""
