"""A researcher served over A2A, for agents of other services to call (see ``orchestrator.py``).

``python examples/a2a/researcher.py --port 8001`` serves it at http://127.0.0.1:8001 (its card
at ``/.well-known/agent-card.json``); ``--port 0`` picks a free port. It prints the URL it
serves at (flushed) before it serves. Without ``--port``, it serves itself on a free port,
asks itself one question over A2A, prints the answer as it streams, and stops.

Who asks: a caller sends the bearer token of ``RESEARCHER_TOKEN`` (by default
``demo-token-change-me``); a request without it is refused (401), and each caller's tasks
are its own.

Offline (no API key) its model is the offline one, which streams its scripted answer token
by token (set ``OPENAI_API_KEY``, or ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN``, for a
real model).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import uvicorn

from miniagents import MiniAgents
from miniagents.ext.a2a import A2ASkill, a2a_agent, a2a_app
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.web import BearerTokenAuth
from miniagents.ext.web.serving import server_config

TOKEN = os.environ.get("RESEARCHER_TOKEN", "demo-token-change-me")
"""The bearer token callers send (``Authorization: Bearer <token>``)."""

researcher = llm_agent_from_env(
    system="You are a researcher: answer in two short sentences, with the key facts.",
    offline_reply=(
        "Rivers meander because faster water on the outside of a bend erodes the bank, while "
        "slower water on the inside drops sediment. Each bend grows until the river cuts it off."
    ),
    token_delay=0.01,
).fork(alias="RESEARCHER", description="Researches a question and answers with the key facts.")

skills = [
    A2ASkill(
        "research",
        "Research",
        "Answers a question with the key facts, in two sentences.",
        tags=("research", "facts"),
        examples=("Why do rivers meander?",),
    )
]


def listening(port: int) -> socket.socket:
    """A socket of 127.0.0.1 that listens on ``port`` (0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def server(sock: socket.socket) -> tuple[uvicorn.Server, str]:
    """The researcher's A2A app under uvicorn, on ``sock``; and its URL."""
    app = a2a_app(researcher, skills=skills, authentication=BearerTokenAuth({TOKEN: "caller"}))
    config = server_config(app)  # (bounded: connections, the time headers take)
    return uvicorn.Server(config), f"http://127.0.0.1:{sock.getsockname()[1]}/"


async def ask_myself() -> None:
    """Serve on a free port, ask one question over A2A, print the answer as it streams."""
    sock = listening(0)
    served, url = server(sock)
    serving = asyncio.create_task(served.serve(sockets=[sock]))
    try:
        async with MiniAgents():
            remote = a2a_agent(url, headers={"Authorization": f"Bearer {TOKEN}"})
            async for message in remote.inquire("Why do rivers meander?"):
                async for token in message:
                    print(token, end="", flush=True)
            print()
    finally:
        served.should_exit = True
        await serving
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="A researcher served over A2A.")
    parser.add_argument("--port", type=int, help="serve on this port (0: a free one)")
    port = parser.parse_args().port
    if port is None:
        asyncio.run(ask_myself())
        return
    sock = listening(port)
    served, url = server(sock)
    print(f"RESEARCHER serves A2A at {url}", flush=True)
    served.run(sockets=[sock])


if __name__ == "__main__":
    main()
