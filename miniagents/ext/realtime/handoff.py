"""``Handoff``: a text agent that a realtime model can hand the conversation to, and take back.

::

    voice:     "...let me get our planner."  ToolCalled(transfer_to_planner, {request})
    planner:   inquired with the conversation so far (what the user said, what the model
               said as far as it was heard) and the request; its answer streams
    reply:     LLMToolCallMessage | HandoffResult (the planner's tokens, live) | ...
    voice:     the answer goes back as the call's output; the model speaks on from it

A realtime agent's ``handoffs=[agent, ...]`` makes one per agent (a tool named
``transfer_to_<alias>``); the conversation crosses both ways: the text agent reads the
whole spoken conversation, and its answer joins the realtime one (the model's context and
the session's record, which a later handoff reads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from miniagents.ext.llm.messages import UserMessage
from miniagents.ext.tools.agent_tool import AgentTool
from miniagents.messages.message import Message
from miniagents.miniagents.agent import InteractionContext, MiniAgent

__all__ = ["Handoff"]


class Handoff(AgentTool):
    """A text agent as a realtime model's tool ``transfer_to_<alias>`` (see the module).

    Args:
        agent: The text agent (any agent that takes the conversation as its input).
        conversation: What gives the conversation so far, when the model hands it over
            (the session's record).
        description: What the tool tells the model (default: when to hand over to the
            agent, from its description).

    Attributes:
        handed_to: The text agent's alias.
    """

    __slots__ = ("handed_to",)

    def __init__(
        self,
        agent: MiniAgent[..., Message],
        conversation: Callable[[], Sequence[Message]],
        *,
        description: str | None = None,
    ) -> None:
        async def transfer(ctx: InteractionContext, request: str = "") -> None:
            """Hand the conversation over.

            Args:
                ctx: The interaction.
                request: What the user wants of the agent, in a sentence.
            """
            messages = list(conversation())
            if request:
                messages.append(UserMessage(text=request))
            ctx.reply(agent.inquire(messages))

        name = f"transfer_to_{agent.alias.lower()}"
        about = agent.description or f"the agent {agent.alias}"
        told = description or (
            f"Hand the conversation to {agent.alias}, a text agent: {about.strip()} It gets "
            "the whole conversation so far, and its answer comes back to you: tell it to the "
            "user in your own voice."
        )
        super().__init__(MiniAgent(transfer, alias=name.upper()), name=name, description=told)
        self.handed_to = agent.alias
