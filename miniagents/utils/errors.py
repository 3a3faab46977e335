"""Errors of the utilities; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = ["ChainDefinitionError"]


class ChainDefinitionError(MiniAgentsError, ValueError):
    """``achain_loop`` got a list it cannot run (no agent, no ``AWAIT``, or a foreign value)."""
