"""The agents the evals' tests run: an orchestrator with a tool and sub-agents, offline.

Every model is the offline one (or the testing kit's scripted ones), so the tests need no
key and no network; with ``token_delay`` on a virtual clock, their times are exact.
"""

from __future__ import annotations

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.ext.llm.offline import ToolRule, offline_agent
from miniagents.ext.tools import as_tool

DELAY = 0.1
"""Seconds before each token of the offline models below (virtual seconds in the tests)."""


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


poet = offline_agent.fork(alias="POET", reply="Rivers run on.", token_delay=DELAY)
"""Replies with three tokens ("Rivers ", "run ", "on."), one every DELAY seconds."""

forecaster = offline_agent.fork(
    alias="FORECASTER",
    tool_rules=[ToolRule(r"weather in (?P<city>\w+)", "get_weather")],
    tools=[get_weather],
    reply="It is sunny.",
    token_delay=DELAY,
)
"""Calls get_weather for "weather in <city>", then answers "It is sunny." (3 tokens)."""


@miniagent
async def editor(ctx: InteractionContext) -> None:
    """Replies with a line of its own, then the poet's reply, then the forecaster's."""
    ctx.reply("A poem:")
    ctx.reply(poet.inquire(ctx.message_promises))
    ctx.reply(forecaster.inquire("What is the weather in Paris?"))


@miniagent(alias="POEM")
async def poem(ctx: InteractionContext, topic: str) -> None:
    """Write a poem about a topic.

    Args:
        topic: What the poem is about.
    """
    ctx.reply(poet.inquire(f"A poem about {topic}, please."))


librarian: MiniAgent[..., Message] = offline_agent.fork(
    alias="LIBRARIAN",
    tool_rules=[ToolRule(r"poem about (?P<topic>\w+)", "POEM")],
    tools=[as_tool(poem)],
    reply="Here it is.",
    token_delay=DELAY,
)
"""Calls the POEM tool (an agent: its interaction nests under the tool call), then answers."""

LIBRARIAN_SPANS = [
    "invoke_agent LIBRARIAN",
    "  chat offline",
    "  execute_tool POEM",
    "    invoke_agent POEM",
    "      invoke_agent POET",
    "        chat offline",
    "  chat offline",
]
"""The spans of one interaction of the librarian, instrumented, as ``Traces.tree()`` draws them."""
