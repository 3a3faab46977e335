"""Agents: ``@miniagent`` functions run in a ``MiniAgents`` context.

An agent is an async function that gets an :class:`InteractionContext` (its input
messages and a way to reply) and any keyword arguments. ``agent.inquire(messages)``
starts it in the background and returns its replies as a ``MessageSequencePromise``.
Extensions use the hooks of :mod:`miniagents.miniagents.lowlevel`.
"""

from miniagents.miniagents._limiter import ConcurrencyLimit as ConcurrencyLimit
from miniagents.miniagents.agent import AgentCall as AgentCall
from miniagents.miniagents.agent import AgentFunction as AgentFunction
from miniagents.miniagents.agent import InteractionContext as InteractionContext
from miniagents.miniagents.agent import MiniAgent as MiniAgent
from miniagents.miniagents.agent import miniagent as miniagent
from miniagents.miniagents.context import MessageHandler as MessageHandler
from miniagents.miniagents.context import MiniAgents as MiniAgents

__all__ = [
    "AgentCall",
    "AgentFunction",
    "ConcurrencyLimit",
    "InteractionContext",
    "MessageHandler",
    "MiniAgent",
    "MiniAgents",
    "miniagent",
]
