"""``InteractionContext`` and ``AgentCall``, where they were before they joined the agents.

A compatibility module: both classes are defined in :mod:`miniagents.miniagents.agent`
(an agent, the context its function gets and running an interaction are one idea) and
re-exported here, so that ``from miniagents.miniagents.interaction import
InteractionContext`` keeps working. New code imports them from ``miniagents`` or
``miniagents.miniagents``.
"""

from __future__ import annotations

from miniagents.miniagents.agent import AgentCall as AgentCall
from miniagents.miniagents.agent import InteractionContext as InteractionContext

__all__ = ["AgentCall", "InteractionContext"]
