"""Errors of the stream operators; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError

__all__ = ["OperatorArgumentError"]


class OperatorArgumentError(MiniAgentsError, ValueError):
    """An operator was given an argument it cannot work with (e.g. an empty delimiter)."""
