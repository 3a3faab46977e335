"""A durable agent's resume sent before its run paused (run by ``test_durable.py``'s test).

``python durable_resume_race.py`` in a folder of its own (its SQLite database is there),
with ``PROTOCOL`` (``ag-ui`` or ``ai-sdk``). DBOS is launched once a process, so this runs
in a child: the app of a durable offline agent under uvicorn on 127.0.0.1, whose one round
of calls is ``hold`` (it returns when this program lets it) and ``remove`` (it needs
approval). The client reads the first run up to where the call that waits is known (the AI
SDK's ``tool-approval-request``; AG-UI's second ``TOOL_CALL_END``), sends the resume while
``hold`` still runs, and lets ``hold`` return only once the resume waits in the run
manager's lookup. It prints what the test asserts, one fact a line: the resume's status,
the tools' and the model's runs, the outputs, whether the manager ended empty.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.responses import Response

from miniagents.ext.dbos import durable
from miniagents.ext.llm.offline import CallTool, ScriptedReply, offline_agent, one_per_call
from miniagents.ext.llm.offline_script import model_turns
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, agui_app, ai_sdk_app
from miniagents.ext.web.lowlevel import Job, RunManager
from tests.ext.web.serving import (
    SSEReader,
    agui_input,
    answered_chat,
    chat_request,
    post_events,
    served,
)

released = asyncio.Event()
ran: list[str] = []
turns: list[int] = []


async def hold() -> str:
    """Hold the round until the program lets it go."""
    ran.append("hold")
    await released.wait()
    return "held"


def remove(name: str) -> str:
    """Remove a file (it waits for a person's approval first)."""
    ran.append(f"remove {name}")
    return f"removed {name}"


_SCRIPT = one_per_call([CallTool("hold", {}), CallTool("remove", {"name": "a.txt"})], "Done.")


def _reply(call: LLMCall) -> ScriptedReply:
    turns.append(model_turns(call.messages))
    return _SCRIPT(call)


assistant = durable(
    offline_agent.fork(
        alias="RACED",
        tools=[hold, FunctionTool(remove, requires_approval=True)],
        reply=_reply,
        token_delay=0,
    ),
    database_url="sqlite:///runs.sqlite",
)

entered = asyncio.Event()
_lookup = RunManager.apaused_here


async def _noted(self: RunManager, *args: Any, **kwargs: Any) -> Job | Response | None:
    entered.set()  # (before the lookup: once the client wakes on it, the lookup waits)
    return await _lookup(self, *args, **kwargs)


RunManager.apaused_here = _noted  # type: ignore[method-assign]


async def main() -> None:
    ai_sdk = os.environ["PROTOCOL"] == "ai-sdk"
    app = (ai_sdk_app if ai_sdk else agui_app)(assistant, authentication=NoAuthentication())
    body = chat_request("c1", text="Go") if ai_sdk else agui_input("r1", text="Go")
    async with served(app) as client, client.stream("POST", "/", json=body) as response:
        reader = SSEReader(response)
        if ai_sdk:
            first = await reader.until("tool-approval-request")
            again = answered_chat(first, {"approved": True}, text="Go")
        else:
            first = await reader.until("TOOL_CALL_END")
            first += await reader.until("TOOL_CALL_END")
            [call_id] = [
                e.json["toolCallId"]
                for e in first
                if e.type == "TOOL_CALL_START" and e.json["toolCallName"] == "remove"
            ]
            entry = {"interruptId": call_id, "status": "resolved", "payload": {"approved": True}}
            again = agui_input("r2", text="Go", resume=[entry])
        manager: RunManager = app.state.runs
        print("paused before:", manager.paused("c1" if ai_sdk else "t1") is not None)
        resume = asyncio.ensure_future(post_events(client, again))
        await entered.wait()
        print("resume answered before the pause:", resume.done())
        released.set()
        first += await reader.rest()
        resumed, second = await resume
        print("status:", resumed.status_code)
        for _ in range(1000):  # bounded: the jobs end within the loop's next steps
            if manager.live == 0:
                break
            await asyncio.sleep(0)
        print("live:", manager.live)
    kind = "tool-output-available" if ai_sdk else "TOOL_CALL_RESULT"
    field = "output" if ai_sdk else "content"
    print("first outputs:", [e.json[field] for e in first if e.type == kind])
    print("second outputs:", [e.json[field] for e in second if e.type == kind])
    texts = [  # (the model's: not a tool's output, which AG-UI streams as a nested run's)
        e.json["delta"]
        for e in second
        if e.type in ("text-delta", "TEXT_MESSAGE_CONTENT") and "subagentRunId" not in e.json
    ]
    print("text:", "".join(texts))
    print("ran:", ran)
    print("turns:", turns)


asyncio.run(main())
