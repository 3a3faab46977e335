"""A program the durable tests run (and kill -9): one durable run of a tool loop, followed.

``python durable_child.py <workflow id>``, with ``DB_URL`` (the database of runs) and
``SIDE_EFFECTS`` (the file the ``note`` tool appends to). It prints, flushed, one line per
event: ``EVENT note <text>`` when the note tool runs, ``EVENT lookup <query>`` when the
lookup tool starts (it waits forever with ``HANG_IN_LOOKUP=1``), ``TOKEN <json>`` for each
token the reader of the reply sees, and ``REPLY <json>`` with the reply's messages at the
end; ``APPROVAL <call id> <pending>`` for a request to approve the ``remove`` tool, which
it approves with ``APPROVE=1``. ``SYSTEM`` changes the main agent's system prompt (its
code, for the version check). With ``OFFLINE=1`` the main agent is the offline model (no
SDK imported: a child starts sooner), which removes ``a.txt`` and then answers, printing
``MODEL`` at each of its calls (the calls made in this process, not replayed).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from miniagents import InteractionContext, miniagent
from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import CallTool, offline_agent
from miniagents.ext.llm.offline_script import ScriptedReply
from miniagents.ext.llm.openai import openai_agent
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools import FunctionTool, ToolApprovalRequest, ToolLike, ToolResultMessage
from miniagents.messages import Message
from tests.ext.dbos.followed_run import follow


def note(text: str) -> str:
    """Write a note down (a side effect: a line in a file)."""
    with Path(os.environ["SIDE_EFFECTS"]).open("a", encoding="utf-8") as file:
        file.write(text + "\n")
    print("EVENT note", text, flush=True)
    return f"noted {text}"


async def lookup(query: str) -> str:
    """Look something up."""
    print("EVENT lookup", query, flush=True)
    if os.environ.get("HANG_IN_LOOKUP") == "1":
        await asyncio.Event().wait()
    return f"found {query}"


def remove(name: str) -> str:
    """Remove a file (it waits for a person's approval first)."""
    with Path(os.environ["SIDE_EFFECTS"]).open("a", encoding="utf-8") as file:
        file.write(f"removed {name}\n")
    print("EVENT remove", name, flush=True)
    return f"removed {name}"


helper = openai_agent.fork(alias="HELPER", model="helper-model", stream=True)


@miniagent
async def ask_helper(ctx: InteractionContext, question: str) -> None:
    """Ask the helper a question (a nested agent: its calls are steps of the run too)."""
    ctx.reply(helper.inquire(question))


def removing(call: LLMCall) -> ScriptedReply:
    """The offline model (``OFFLINE=1``): remove ``a.txt``, then answer; each call printed."""
    print("MODEL", flush=True)
    if any(isinstance(message, ToolResultMessage) for message in call.messages):
        return "Removed it."
    return CallTool("remove", {"name": "a.txt"})


_tools: list[ToolLike] = [note, lookup, ask_helper, FunctionTool(remove, requires_approval=True)]
_system = os.environ.get("SYSTEM", "Be brief.")
main_agent = durable(
    offline_agent.fork(alias="MAIN", system=_system, tools=_tools, reply=removing, token_delay=0)
    if os.environ.get("OFFLINE") == "1"
    else openai_agent.fork(
        alias="MAIN",
        model="main-model",
        system=_system,
        tools=_tools,
        stream=True,
        stall_timeout=None,
    ),
    database_url=os.environ["DB_URL"],
)


def _answer(message: Message) -> None:
    """Print a request to approve a call, and approve it with ``APPROVE=1``."""
    if isinstance(message, ToolApprovalRequest):
        print("APPROVAL", message.call_id, message.pending, flush=True)
        if os.environ.get("APPROVE") == "1" and message.pending:
            message.approve()


if __name__ == "__main__":
    follow(main_agent, on_message=_answer)
