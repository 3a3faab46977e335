"""A small research team, to record, watch and fork in the studio (see docs/studio.md).

Run it as it is (``python examples/research_team.py``), or recorded::

    miniagents run examples/research_team.py

An editor asks three researchers at once, each about one city; a researcher looks its city
up with a tool (the lookup of a city it does not know fails, and the model reads the error),
then a writer makes one paragraph of their notes. Offline (no API key) the models are the
offline model, scripted below; with ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY`` or
``ANTHROPIC_AUTH_TOKEN``) set, real models do the work.
"""

from __future__ import annotations

import asyncio

from miniagents import InteractionContext, MiniAgents, miniagent
from miniagents.ext.llm import ToolResultMessage
from miniagents.ext.llm.from_env import llm_agent_from_env
from miniagents.ext.llm.offline import ToolRule
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools import ToolCallError

POPULATIONS = {"Paris": "2.1 million", "Rome": "2.8 million"}


def lookup(city: str) -> str:
    """Look up how many people live in a city.

    Args:
        city: The city, e.g. "Paris".
    """
    if city not in POPULATIONS:
        raise ToolCallError(f"No figures for {city}.")
    return f"{city} has about {POPULATIONS[city]} people."


def _note(call: LLMCall) -> str:
    """The offline researcher's note: what its lookup answered."""
    results = [item for item in call.messages if isinstance(item, ToolResultMessage)]
    return results[-1].text or "" if results else "I found nothing."


def _paragraph(call: LLMCall) -> str:
    """The offline writer's paragraph: the notes, one after the other."""
    notes = (call.messages[-1].text or "").splitlines()[1:]
    return "Our findings: " + " ".join(note.strip() for note in notes if note.strip())


researcher = llm_agent_from_env(
    system="Look the city up with the lookup tool, then say what you found in one sentence.",
    tools=[lookup],
    offline_tool_rules=[ToolRule(r"about (?P<city>[A-Z]\w+)", "lookup")],
    offline_reply=_note,
    token_delay=0.01,
).fork(alias="RESEARCHER")
writer = llm_agent_from_env(
    system="Write one short paragraph from the notes you are given.",
    offline_reply=_paragraph,
    token_delay=0.01,
).fork(alias="WRITER")


@miniagent
async def editor(ctx: InteractionContext, cities: list[str]) -> None:
    """Ask a researcher about each city at once, then have the writer sum their notes up.

    Args:
        ctx: The interaction.
        cities: The cities to research.
    """
    asked = [researcher.inquire(f"Tell me about {city}.") for city in cities]
    notes = [str((await reply)[-1]) for reply in asked]  # each researcher's answer
    ctx.reply(writer.inquire("Notes:\n" + "\n".join(notes)))


async def main() -> None:
    """Run the team on three cities and print the paragraph as it streams."""
    async with MiniAgents():
        async for message in editor.inquire(cities=["Paris", "Rome", "Atlantis"]):
            async for token in message:
                print(token, end="", flush=True)
            print()


if __name__ == "__main__":
    asyncio.run(main())
