"""Errors of the frozen values; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.root_error import MiniAgentsError

__all__ = ["FrozenFieldError", "FrozenInstanceError", "HashKeyError"]


class FrozenInstanceError(MiniAgentsError, TypeError):
    """Something tried to mutate a frozen container inside a ``Frozen`` model."""


class FrozenFieldError(MiniAgentsError, TypeError):
    """A ``Frozen`` model declares a field whose type is a mutable container (or model)."""


class HashKeyError(MiniAgentsError, TypeError):
    """A ``Frozen`` model holds a value that its ``hash_key`` cannot encode."""
