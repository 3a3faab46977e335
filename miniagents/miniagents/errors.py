"""Errors of the agents layer; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = [
    "AgentArgumentError",
    "AgentDefinitionError",
    "AgentFinishedError",
    "NoActiveContextError",
]


class NoActiveContextError(MiniAgentsError, RuntimeError):
    """An agent was used outside ``async with MiniAgents():`` (or ``MiniAgents().run(...)``)."""


class AgentDefinitionError(MiniAgentsError, TypeError):
    """``@miniagent`` was put on something that is not an ``async def`` agent function."""


class AgentArgumentError(MiniAgentsError, TypeError):
    """An agent got an argument it does not take, or lacks one it needs."""


class AgentFinishedError(MiniAgentsError, RuntimeError):
    """An agent replied (or a caller sent it a message) after its interaction had finished."""
