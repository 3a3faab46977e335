"""Errors of the utilities; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = ["ChainDefinitionError"]


class ChainDefinitionError(MiniAgentsError, ValueError):
    """A loop got agents it cannot run.

    ``achain_loop`` got a list it cannot run (no agent, no ``AWAIT``, a foreign value, an
    agent alone), or ``adialog_loop`` something that is not an agent.
    """
