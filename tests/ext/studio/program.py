"""A three-level program for the studio's tests: a fan-out, tools, an error, a writer.

::

    ORCHESTRATOR
    ├── RESEARCHER (Paris)   call: LIBRARIAN, then an answer
    │   └── tool LIBRARIAN
    │       └── LIBRARIAN
    ├── RESEARCHER (Rome)    the same
    │   └── tool LIBRARIAN
    │       └── LIBRARIAN
    ├── CRITIC               fails (ValueError), which the orchestrator catches
    └── WRITER               the researchers' answers, echoed by the fake server

Its models are OpenAI's SDK against the fake LLM server (``OPENAI_BASE_URL``), one model
per agent, so that a test scripts each agent's replies (``for_model``) whatever order the
requests come in: :func:`script` does. Run in-process (``amain``) or as a program, by
``miniagents run`` (``python -m miniagents run program.py``).
"""

from __future__ import annotations

import asyncio
import contextlib

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.llm.openai import openai_agent
from miniagents.testing import FakeLLMServer, ToolCall

CITIES = ("Paris", "Rome")
FACTS = {"Paris": "2.1 million people", "Rome": "2.8 million people"}
AGENT_CALLS = 7
"""The interactions of one run: the orchestrator, 2 researchers, 2 librarians, the critic, the
writer."""


@miniagent
async def librarian(ctx: InteractionContext, city: str) -> None:
    """Look a city up in the library.

    Args:
        ctx: The interaction.
        city: The city.
    """
    ctx.reply(f"{city} has {FACTS[city]}.")


@miniagent
async def critic(ctx: InteractionContext) -> None:
    """Fail, always."""
    raise ValueError("The critic has nothing to say.")


def researcher(city: str) -> object:
    """The researcher of a city: its own model, the librarian as its tool."""
    return openai_agent.fork(
        alias="RESEARCHER", model=f"{city.lower()}-model", tools=[librarian], max_retries=0
    )


writer = openai_agent.fork(alias="WRITER", model="gpt-4o-mini", max_retries=0)


@miniagent
async def orchestrator(ctx: InteractionContext) -> None:
    """Ask the researchers at once, the critic, then the writer with the researchers' notes."""
    asked = [researcher(city).inquire(f"Tell me about {city}.") for city in CITIES]  # type: ignore[attr-defined]
    notes = [str((await reply)[-1]) for reply in asked]
    with contextlib.suppress(ValueError):  # (the critic's branch shows its error)
        await critic.inquire()
    ctx.reply(writer.inquire("Notes: " + " ".join(notes)))


def script(server: FakeLLMServer, *, paused_writer: bool = False) -> None:
    """Script the researchers' replies: a call of the librarian, then their answer.

    The writer gets no script: the fake server echoes its prompt, word by word (so a fork
    that changes a note changes its reply). ``paused_writer``: the writer's reply pauses
    after its first two tokens (``wait_paused``, then ``resume()``).
    """
    for city in CITIES:
        model = f"{city.lower()}-model"
        call = ToolCall("LIBRARIAN", {"city": city}, id=f"call_{city.lower()}")
        server.reply(tool_calls=[call], for_model=model, usage=(20, 5))
        server.reply(
            tokens=[f"{city} ", "has ", f"{FACTS[city].split()[0]} ", "million ", "people."],
            for_model=model,
            usage=(40, 5),
        )
    if paused_writer:
        server.reply(
            tokens=["Notes ", "so ", "far, ", "then ", "more."],
            for_model="gpt-4o-mini",
            pause_after=2,
        )


async def amain() -> str:
    """Run the program; the writer's text."""
    async with MiniAgents():
        return str((await orchestrator.inquire())[-1])


if __name__ == "__main__":
    print(asyncio.run(amain()))
