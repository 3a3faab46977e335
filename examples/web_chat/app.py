"""A web chat with an agent: tools, a sub-agent streaming inside the answer, approvals, resume.

``python examples/web_chat/app.py --serve`` serves the chat page beside this file
(``index.html``: one static HTML file with a small script, no build step) at
http://127.0.0.1:8000, with this assistant at ``/api/chat`` (the AI SDK's UI message
stream, ``ai_sdk_app``; ``web_chat_app`` puts the two together). Offline (no API key), the
offline model calls the tools by its rules: ask "What is the weather in Paris?", "Write a
poem about rivers" or "Delete notes.md" (that one waits for your approval: the page
answers as ``useChat`` does, sending the chat again with the approval). Reload the page
mid-answer: it resumes; reloaded while a call waits for your approval, it shows the call
with its Approve and Deny again (a question given in the address, ``/?ask=...``, is sent
once: the page takes it out of the address). An approval the app can no longer take (the
server restarted, or the run waited past ``keep_runs_for``) is shown as the app's error.

It is served for you alone, on this machine: ``authentication=NoAuthentication()`` (the app
knows nobody, by name) and the settings' default hosts (``localhost``, ``127.0.0.1``,
``[::1]``: a request for any other host name is refused). To let others use it, give it
their tokens instead (``authentication=BearerTokenAuth({token: name})``, as ``miniagents
web`` does) and the name they reach it by (``settings=WebSettings(allowed_hosts=[...])``).

Without ``--serve``, it asks the app one question in-process and prints what the page gets
(with the HTTP client ``httpx2``, which ``pip install -e ".[dev]"`` installs; ``--serve`` needs
only ``pip install "miniagents[web]"``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from miniagents import InteractionContext, miniagent
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import ToolRule
from miniagents.ext.tools import FunctionTool
from miniagents.ext.web import NoAuthentication, web_chat_app

PAGE = Path(__file__).with_name("index.html")
"""The chat page."""

LOCAL = NoAuthentication()
"""Who asks: nobody known, on purpose (you, on this machine)."""


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The city, e.g. "Paris".
    """
    return f"Sunny, 21 °C in {city}"


def delete_file(path: str) -> str:
    """Delete a file (pretend: nothing is deleted).

    Args:
        path: The file to delete.
    """
    return f"Deleted {path}"


@miniagent
async def poet(ctx: InteractionContext, subject: str) -> None:
    """Write a short poem about a subject.

    Args:
        ctx: The interaction.
        subject: What the poem is about.
    """
    writer = llm_agent_from_env(
        system="Write a poem of two short lines, and nothing else.",
        offline_reply=f"The {subject} run on, token by token; / each word arrives as it is spoken.",
        token_delay=0.05,
    )
    ctx.reply(writer.inquire(f"A poem about {subject}."))


assistant = llm_agent_from_env(
    system="You are a helpful assistant. Use the tools to answer.",
    tools=[get_weather, poet, FunctionTool(delete_file, requires_approval=True)],
    offline_tool_rules=[
        ToolRule(r"weather in (?P<city>[A-Z]\w+)", "get_weather"),
        ToolRule(r"poem about (?P<subject>\w+)", "POET"),
        ToolRule(r"[Dd]elete (?P<path>\S+)", "delete_file"),
    ],
    token_delay=0.02,
)


async def ask_once(question: str) -> None:
    """Ask the app one question in-process and print the parts the page would get."""
    import httpx2  # (an HTTP client for this in-process question only: --serve needs none)

    transport = httpx2.ASGITransport(app=web_chat_app(assistant, page=PAGE, authentication=LOCAL))
    async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as client:
        print("page:", (await client.get("/")).headers["content-type"])
        parts = [{"type": "text", "text": question}]
        chat = {"id": "example", "messages": [{"id": "1", "role": "user", "parts": parts}]}
        response = await client.post("/api/chat/", json=chat)
        texts: dict[str, str] = {}
        for line in response.text.splitlines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event["type"] == "tool-input-available":
                print(f"tool call: {event['toolName']} {json.dumps(event['input'])}")
            elif event["type"] == "data-tool-output-delta":
                call = event["data"]["toolCallId"]
                texts[call] = texts.get(call, "") + event["data"]["delta"]
            elif event["type"] == "tool-output-available":
                print(f"tool output (streamed): {texts.get(event['toolCallId'], '')}")
            elif event["type"] == "text-delta":
                print(event["delta"], end="")
        print()


if __name__ == "__main__":
    if "--serve" in sys.argv:
        import uvicorn

        from miniagents.ext.web.serving import server_config

        app = web_chat_app(assistant, page=PAGE, authentication=LOCAL)
        uvicorn.Server(server_config(app, port=8000)).run()  # (bounded: the apps' serving)
    else:
        asyncio.run(ask_once("Can you write a poem about rivers?"))
